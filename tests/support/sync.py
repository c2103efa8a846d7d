"""Running reference clients against the real app: an in-process transport and fault injection.

``AppTransport`` carries the client's requests to the ASGI app through Starlette's test
client (the real service, database and all). ``FlakyTransport`` plays a bad mobile network:
it can drop a request before it reaches the server, drop the answer after the server acted,
or deliver a request twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fastapi.testclient import TestClient

from sync_protocol.client import SyncClient
from sync_protocol.transport import Response, Transport, TransportError


class AppTransport:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        answer = self.client.request(method, path, json=body, headers=headers)
        content_type = answer.headers.get("content-type", "")
        decoded: object = None
        if answer.content:
            decoded = answer.json() if "json" in content_type else answer.text
        return Response(
            answer.status_code, {k.lower(): v for k, v in answer.headers.items()}, decoded
        )


@dataclass
class FlakyTransport:
    """Wraps a transport with a seeded, bad network; ``offline`` refuses everything."""

    inner: Transport
    rng: random.Random
    drop_request: float = 0.0
    drop_response: float = 0.0
    duplicate: float = 0.0
    offline: bool = False
    log: list[str] = field(default_factory=list)

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        if self.offline:
            raise TransportError("no signal")
        if self.rng.random() < self.drop_request:
            self.log.append(f"dropped request {path}")
            raise TransportError("connection reset before sending")
        answer = self.inner.request(method, path, body, headers)
        if self.rng.random() < self.duplicate:
            self.log.append(f"duplicated {path}")
            answer = self.inner.request(method, path, body, headers)
        if self.rng.random() < self.drop_response:
            self.log.append(f"dropped response {path}")
            raise TransportError("connection reset while reading the answer")
        return answer


def device_headers(phone: SyncClient) -> dict[str, str]:
    """The phone's current access token as headers, for hand-made requests in tests."""
    credentials = phone._store.credentials()  # tests reach into the client on purpose
    assert credentials is not None and credentials.access_token
    return {"Authorization": f"Bearer {credentials.access_token}"}


@dataclass(frozen=True)
class Settled:
    resets: int
    digest_verified: bool


def settled_pull(phone: SyncClient, attempts: int = 40) -> Settled:
    """Pull until the server says the phone is up to date (as an app does, periodically).

    On PostgreSQL a transaction running anywhere in the cluster (another test's database,
    under xdist) holds back the changes a pull may deliver and the moment it may declare a
    device caught up: the newest changes and the digest come a pull later. One pull is
    usually enough.
    """
    import time

    resets = 0
    for _ in range(attempts):
        outcome = phone.pull()
        resets += outcome.resets
        if outcome.digest_verified:
            return Settled(resets, True)
        time.sleep(0.05)
    return Settled(resets, False)
