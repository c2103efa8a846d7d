"""What the reference client's store hands out: plain frozen rows, no SQLite attached.

Separate from :mod:`sync_protocol.store` so the app (and tests) can use these types without
opening a database, and so the store module is only about how state is kept durable.
"""

from __future__ import annotations

from dataclasses import dataclass

from sync_protocol.messages import MutationResult


@dataclass(frozen=True)
class Credentials:
    device_id: str
    device_secret: str
    user_id: int
    username: str
    access_token: str | None
    token_expires_at: str | None


@dataclass(frozen=True)
class OutboxEntry:
    """A mutation waiting for its result; ``id`` is its number on the wire."""

    id: int
    name: str
    args: dict[str, object]
    client_time: str | None
    created_at: str

    def wire(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "name": self.name, "args": self.args}
        if self.client_time is not None:
            out["client_time"] = self.client_time
        return out


@dataclass(frozen=True)
class LoggedResult:
    """A result as the UI shows it: the mutation and what the server said about it."""

    mutation_id: int
    name: str
    args: dict[str, object]
    status: str
    code: str | None
    message: str | None
    result: MutationResult
    received_at: str


@dataclass(frozen=True)
class ConflictEntry:
    mutation_id: int
    entity: str
    record_id: str
    fields: list[str]
    server: dict[str, object]
    mine: dict[str, object]
    created_at: str
