"""Locust users for the shift-change load test (run by scripts/load/run_load.py).

* ``Inspector`` (500): an enrolled phone running the reference client (sync_protocol) over
  locust's HTTP session, so every protocol request is timed: at start it exchanges its device
  secret for a token and syncs a backlog (a few reports made offline, with photos); then it
  patrols — report a violation with a photo (push, upload by presigned PUT, complete), pull,
  and complete the verification tasks (核查) that reach it, with an after-photo.
* ``Coordinator`` (10): a command-centre user reading the case list (filters, pages), case
  details and case/grid vector tiles.

Credentials come from the file in ``XUNCHA_LOAD_SEED`` (written by the seeding step).
Request names group what is reported: ``push``, ``pull``, ``token``, ``photo upload-target``,
``photo complete``, ``s3 PUT`` (the object store, not us), ``cases list`` …
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.exception import StopUser
from PIL import Image

from sync_protocol.client import SyncClient
from sync_protocol.transport import Response, TransportError

SEED = json.loads(Path(os.environ["XUNCHA_LOAD_SEED"]).read_text())
PHONES = iter(SEED["phones"])
COORDINATORS = itertools.cycle(SEED["coordinators"])
STORE_DIR = Path(tempfile.mkdtemp(prefix="xuncha-load-phones-"))
APP_VERSION = "1.4.2"
BACKLOG = (2, 5)  # reports each phone made offline before the shift change


class LocustTransport:
    """The reference client's transport over locust's session: each request is timed."""

    def __init__(self, user: HttpUser) -> None:
        self.user = user

    def request(
        self, method: str, path: str, body: dict[str, object] | None, headers: dict[str, str]
    ) -> Response:
        name = path.rsplit("/", 1)[-1] if path.startswith("/api/v1/sync/") else path
        name = "token" if path == "/api/v1/devices/token" else name
        try:
            answer = self.user.client.request(
                method, path, json=body, headers=headers, name=name, timeout=60
            )
        except OSError as exc:  # the session already recorded the failure
            raise TransportError(str(exc)) from exc
        lowered = {k.lower(): v for k, v in answer.headers.items()}
        data: object = None
        if answer.content:
            try:
                data = answer.json()
            except ValueError:
                data = answer.text
        return Response(answer.status_code, lowered, data)


def photo_bytes(rng: random.Random) -> bytes:
    """A small, unique JPEG (a real phone's is ~3 MB; the upload path is what is measured)."""
    img = Image.new("RGB", (320, 240), tuple(rng.randrange(256) for _ in range(3)))
    for _ in range(20):
        x, y = rng.randrange(300), rng.randrange(220)
        img.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + 20, y + 20))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def declaration(data: bytes) -> dict[str, Any]:
    return {
        "photo_id": str(uuid.uuid4()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "content_type": "image/jpeg",
    }


class Inspector(HttpUser):
    fixed_count = int(os.environ.get("XUNCHA_LOAD_INSPECTORS", "500"))
    # A phone on patrol syncs about every half minute; about one action in three is a new
    # report (a busy inspector files one every minute or two, 20-40 a shift).
    wait_time = between(20, 40)

    def on_start(self) -> None:
        try:
            phone = next(PHONES)
        except StopIteration:
            raise StopUser() from None
        self.rng = random.Random(phone["device_id"])
        self.location = phone["location"]
        self.client_ = SyncClient(
            STORE_DIR / f"{phone['device_id']}.sqlite3", LocustTransport(self), APP_VERSION
        )
        # Enrolled during seeding; no token yet: the first request exchanges the secret.
        self.client_._store.adopt_device(
            phone["device_id"], phone["secret"], phone["user_id"], phone["username"], "",
            "1970-01-01T00:00:00Z",
        )  # fmt: skip
        self.pending: list[tuple[dict[str, Any], bytes]] = []
        for _ in range(self.rng.randint(*BACKLOG)):
            self._new_report()
        self._sync()

    def _new_report(self) -> None:
        data = photo_bytes(self.rng)
        photo = declaration(data)
        self.client_.create_report(
            self.rng.choice(["0504", "0501", "0201", "0102", "0510"]),
            "店外经营：占用人行道", "文三路", self.location, photos=[photo],
        )  # fmt: skip
        self.pending.append((photo, data))

    def _sync(self) -> None:
        pushed = self.client_.push()
        failed = [r for r in pushed.results if r.status.value not in ("applied",)]
        for result in failed:
            # A mutation not applied is an error of the run, even inside a 200 push.
            events.request.fire(  # type: ignore[no-untyped-call]
                request_type="SYNC", name=f"mutation {result.status.value}", response_time=0,
                response_length=0, exception=RuntimeError(result.code or result.status.value),
            )  # fmt: skip
        for photo, data in list(self.pending):
            if self._upload(photo, data):
                self.pending.remove((photo, data))
        self.client_.pull()

    def _upload(self, photo: dict[str, Any], data: bytes) -> bool:
        credentials = self.client_._store.credentials()
        if credentials is None or not credentials.access_token:
            return False  # no token yet (the push that gets one failed): next round
        auth = {"Authorization": f"Bearer {credentials.access_token}"}
        body = {k: photo[k] for k in ("sha256", "size", "content_type")}
        target = self.client.post(
            f"/api/v1/photos/{photo['photo_id']}/upload-target", json=body, headers=auth,
            name="photo upload-target",
        )  # fmt: skip
        if target.status_code != 200:
            return False
        answer = target.json()
        if answer["state"] == "declared":
            put = self.client.put(
                answer["url"], data=data, headers=answer["headers"], name="s3 PUT"
            )
            if put.status_code not in (200, 204):
                return False
        done = self.client.post(
            f"/api/v1/photos/{photo['photo_id']}/complete", headers=auth, name="photo complete"
        )
        return done.status_code == 200

    @task(3)
    def report_a_violation(self) -> None:
        self._new_report()
        self._sync()

    @task(6)
    def pull(self) -> None:
        self.client_.pull()

    @task(1)
    def verify_a_fix(self) -> None:
        open_tasks = [t for t in self.client_.records("task").values() if t.get("kind") == "verify"]
        if not open_tasks:
            return
        data = photo_bytes(self.rng)
        photo = declaration(data)
        self.client_.complete_task(
            str(open_tasks[0]["id"]), self.rng.choice(["fixed", "fixed", "not_fixed"]),
            self.location, [photo], comment="已复核",
        )  # fmt: skip
        self.pending.append((photo, data))
        self._sync()


class Coordinator(HttpUser):
    fixed_count = int(os.environ.get("XUNCHA_LOAD_COORDINATORS", "10"))
    wait_time = between(2, 6)  # reading, clicking

    def on_start(self) -> None:
        who = next(COORDINATORS)
        token = self.client.post(
            "/api/v1/auth/token", json={"username": who["username"], "password": who["password"]},
            name="login",
        ).json()["access_token"]  # fmt: skip
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.rng = random.Random(who["username"])
        self.tiles = SEED["tiles"]

    @task(4)
    def case_list(self) -> None:
        params: dict[str, str] = self.rng.choice(
            [{}, {"status": "reported"}, {"category": "05"}, {"overdue": "true"},
             {"status": "handled", "sort": "step_deadline"}]
        )  # fmt: skip
        page = self.client.get("/api/v1/cases", params=params, name="cases list")
        if page.status_code == 200 and (items := page.json()["items"]):
            case_id = self.rng.choice(items)["id"]
            self.client.get(f"/api/v1/cases/{case_id}", name="case detail")

    @task(2)
    def map_tiles(self) -> None:
        z, x, y = self.rng.choice(self.tiles)
        self.client.get(f"/api/v1/tiles/cases/{z}/{x}/{y}.mvt", name="case tile")
        self.client.get(f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", name="grid tile")
