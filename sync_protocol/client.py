"""The reference client: what a phone app does, in Python, against docs/sync-protocol.md.

It exists so the protocol is exercised end to end by something other than the server's own
tests, and as executable documentation for the phone teams. Its promises:

* Never lose a mutation: it enters the outbox before ``create_report`` & co. return, and
  leaves only in the transaction that records its result (:mod:`sync_protocol.store`).
* Never renumber one: a re-send carries the same id and content, so the server can replay.
* Survive anything the network does: a failed request changes nothing locally; sending it
  again is always safe because the server deduplicates by mutation id.
* Converge: pull pages apply atomically with their cursor, and a digest mismatch or a reset
  drops the records (never the outbox) and pulls from scratch.

The device clock is used only for what the user sees (``captured_at``, ``client_time``) and to
guess when the access token expires; a wrong guess costs one 401 and one refresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from sync_protocol._session import Halt, Session, problem_of
from sync_protocol.batching import request_size, take_batch
from sync_protocol.enrollment import EnrollRequest, EnrollResponse
from sync_protocol.errors import ProtocolError
from sync_protocol.messages import (
    DEFAULT_PULL_LIMIT,
    MAX_BATCH_BYTES,
    MAX_BATCH_MUTATIONS,
    Directive,
    DirectiveType,
    PullRequest,
    PullResponse,
    PushResponse,
    ResultStatus,
)
from sync_protocol.mutations import REGISTRY, validate_mutation
from sync_protocol.outcomes import PullOutcome, PushOutcome, SyncOutcome, SyncState
from sync_protocol.store import ConflictEntry, Credentials, LoggedResult, OutboxEntry, Store
from sync_protocol.timefmt import format_rfc3339
from sync_protocol.transport import Response, Transport
from sync_protocol.versions import PROTOCOL_VERSION, parse_semver

ENROLL_PATH = "/api/v1/devices/enroll"
PUSH_PATH = "/api/v1/sync/push"
PULL_PATH = "/api/v1/sync/pull"
# Bounds on loops the server drives, so a misbehaving server cannot spin the client forever.
_MAX_GAP_RECOVERIES = 3
_MAX_RESETS_PER_PULL = 2
_MAX_PAGES_PER_PULL = 10_000
_ENTITY_OF = {name: spec.entity for name, spec in REGISTRY.items()}


def now() -> datetime:
    """The device clock, in the device's zone (so ``captured_at`` keeps the local offset)."""
    return datetime.now().astimezone()


class EnrollmentError(Exception):
    """Enrollment refused (``enrollment_code_invalid``, …); ``code`` is the problem code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SyncClient:
    """One device's sync state and the operations of sections 2, 4 and 5."""

    def __init__(
        self,
        store_path: str | Path,
        transport: Transport,
        app_version: str,
        *,
        clock: Callable[[], datetime] = now,
        pull_limit: int = DEFAULT_PULL_LIMIT,
        max_batch: int = MAX_BATCH_MUTATIONS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        parse_semver(app_version)
        self._transport = transport
        self._app_version = app_version
        self._clock = clock
        self._pull_limit = pull_limit
        self._max_batch = min(max_batch, MAX_BATCH_MUTATIONS)
        self._max_bytes = min(max_batch_bytes, MAX_BATCH_BYTES)
        self._store = Store(store_path)
        self._session = Session(self._store, transport, app_version, clock)

    @classmethod
    def enroll(
        cls,
        store_path: str | Path,
        transport: Transport,
        code: str,
        device_name: str,
        platform: str,
        app_version: str,
        *,
        clock: Callable[[], datetime] = now,
    ) -> Self:
        """Exchange an enrollment code for device credentials (section 2) and store them.

        Enrolling again into an existing store (reinstall, revoked device) keeps the outbox and
        renumbers it from 1 for the new device; it refuses when the store holds unsent work of
        a different user, which must never be pushed under someone else's name.
        """
        client = cls(store_path, transport, app_version, clock=clock)
        try:
            client._enroll(code, device_name, platform)
        except BaseException:
            client.close()
            raise
        return client

    def _enroll(self, code: str, device_name: str, platform: str) -> None:
        body = EnrollRequest(code, device_name, platform, self._app_version, PROTOCOL_VERSION)
        response = self._transport.request(
            "POST", ENROLL_PATH, body.to_json(), self._session.headers()
        )
        if response.status not in (200, 201):
            problem = problem_of(response)
            raise EnrollmentError(
                problem.code if problem else f"http_{response.status}",
                (problem.detail if problem else None) or "enrollment refused",
            )
        try:
            enrolled = EnrollResponse.from_json(response.body)
        except ProtocolError as exc:
            # Nothing is stored yet: the old credentials and the outbox stay as they were.
            raise EnrollmentError("invalid_response", exc.message) from None
        old = self._store.credentials()
        if old is not None and old.user_id != enrolled.user.id and self._store.outbox(limit=1):
            raise EnrollmentError(
                "outbox_of_another_user", "this store holds unsent work of another user"
            )
        self._store.adopt_device(
            enrolled.device_id,
            enrolled.device_secret,
            enrolled.user.id,
            enrolled.user.username,
            enrolled.access_token,
            self._session.expiry(enrolled.expires_in),
        )

    # -- local operations (work offline) ----------------------------------------------------

    def create_report(
        self,
        category_code: str,
        description: str,
        address: str,
        location: Mapping[str, object],
        photos: Sequence[Mapping[str, object]] = (),
        report_id: str | None = None,
    ) -> str:
        """Queue ``report.create``; returns the report id (made here, on the device)."""
        report_id = report_id or str(uuid.uuid4())
        self._enqueue(
            "report.create",
            {
                "report_id": report_id,
                "category_code": category_code,
                "description": description,
                "address": address,
                "location": dict(location),
                "captured_at": format_rfc3339(self._clock()),
                "photos": [dict(photo) for photo in photos],
            },
        )
        return report_id

    def update_report(self, report_id: str, changes: Mapping[str, object]) -> None:
        """Queue ``report.update`` on the version this device last confirmed."""
        base = self._base_version(report_id)
        self._enqueue(
            "report.update",
            {"report_id": report_id, "base_version": base, "changes": dict(changes)},
        )

    def delete_report(self, report_id: str) -> None:
        base = self._base_version(report_id)
        self._enqueue("report.delete", {"report_id": report_id, "base_version": base})

    def add_photos(
        self, report_id: str, photos: Sequence[Mapping[str, object]], role: str = "after"
    ) -> None:
        """Queue ``report.add_photos`` (e.g. 整改后 photos of an on-the-spot fix)."""
        self._enqueue(
            "report.add_photos",
            {"report_id": report_id, "role": role, "photos": [dict(p) for p in photos]},
        )

    def complete_task(
        self,
        task_id: str,
        outcome: str,
        location: Mapping[str, object],
        photos: Sequence[Mapping[str, object]],
        comment: str = "",
        report_id: str | None = None,
    ) -> str:
        """Queue ``task.complete`` for a task received by pull (处理反馈 ``done``, 核查
        ``fixed``/``not_fixed``) with its after-photos; returns the evidence report's id."""
        report_id = report_id or str(uuid.uuid4())
        self._enqueue(
            "task.complete",
            {
                "task_id": task_id,
                "outcome": outcome,
                "comment": comment,
                "report_id": report_id,
                "location": dict(location),
                "captured_at": format_rfc3339(self._clock()),
                "photos": [dict(photo) for photo in photos],
            },
        )
        return report_id

    def _base_version(self, report_id: str) -> int:
        """The confirmed local version, or 1 for a report whose create is still pending (the
        create makes version 1). Unknown reports are refused before anything is queued."""
        version = self._store.record_version("report", report_id)
        if version is not None:
            return version
        for entry in self._store.outbox():
            if entry.name == "report.create" and entry.args.get("report_id") == report_id:
                return 1
        raise KeyError(f"unknown report {report_id}")

    def _enqueue(self, name: str, args: dict[str, object]) -> int:
        # Validate with the server's own rules: the user hears about a bad value now, not
        # after the next sync. Raises MutationArgsError.
        validate_mutation(name, args)
        client_time = format_rfc3339(self._clock())
        wire = {
            "id": self._store.next_mutation_id(),
            "name": name,
            "args": args,
            "client_time": client_time,
        }
        # Sized with a stand-in device id of the same length: enrollment may come later.
        envelope = self._session.envelope(str(uuid.UUID(int=0)))
        if request_size(envelope, [wire]) > self._max_bytes:
            raise ValueError("this mutation alone exceeds the request size limit")
        return self._store.enqueue(name, args, client_time, client_time)

    # -- push (section 4) -------------------------------------------------------------------

    def push(self) -> PushOutcome:
        """Send the outbox in order until it is empty or the server says stop."""
        outcome = PushOutcome(SyncState.ok)
        try:
            self._push(outcome)
        except Halt as halt:
            outcome.state, outcome.error = halt.state, halt.error
            outcome.retry_after = halt.retry_after
        outcome.remaining = len(self._store.outbox())
        outcome.directives = list(self._session.directives)
        return outcome

    def _push(self, outcome: PushOutcome) -> None:
        credentials = self._session.credentials()
        max_count, gaps = self._max_batch, 0
        while entries := self._store.outbox(limit=max_count):
            envelope = self._session.envelope(credentials.device_id)
            wires = [entry.wire() for entry in entries]
            count = take_batch(wires, envelope, max_count=max_count, max_bytes=self._max_bytes)
            batch = entries[:count]
            response = self._session.send(PUSH_PATH, {**envelope, "mutations": wires[:count]})
            outcome.requests += 1
            if response.status == 200:
                self._apply_push_response(credentials, batch, response, outcome)
                continue
            problem = problem_of(response)
            if response.status == 409 and problem and problem.code == "mutation_gap":
                gaps += 1
                if gaps > _MAX_GAP_RECOVERIES or problem.expected_id is None:
                    raise Halt(SyncState.failed, "mutation_gap")
                self._recover_gap(credentials.device_id, problem.expected_id, batch[0].id)
                continue
            if response.status == 413 and len(batch) > 1:
                max_count = max(1, len(batch) // 2)  # the server's limit is lower than ours
                continue
            self._session.halt_for(response, problem)

    def _apply_push_response(
        self,
        credentials: Credentials,
        batch: list[OutboxEntry],
        response: Response,
        outcome: PushOutcome,
    ) -> None:
        try:
            answer = PushResponse.from_json(response.body)
        except ProtocolError:
            # Unknown members are ignored, but an unknown *value* of a known one (a future
            # result status or directive type) is refused: we cannot tell what it asks for.
            # Nothing is recorded before this point, so it is a failed step that keeps the whole
            # batch in the outbox; the next push re-sends it with the same ids and the server
            # replays the stored results (which an upgraded app understands).
            raise Halt(SyncState.failed, "invalid_response") from None
        results = answer.results
        # Results must match the batch one to one, in order, and may stop early only at a
        # retry; anything else means we cannot tell which answer belongs to which mutation.
        aligned = len(results) <= len(batch) and all(
            r.id == e.id for r, e in zip(results, batch, strict=False)
        )
        complete = len(results) == len(batch) or (
            bool(results) and results[-1].status == ResultStatus.retry
        )
        if not (aligned and complete):
            raise Halt(SyncState.failed, "invalid_response")
        self._store.record_results(
            credentials.device_id,
            list(zip(batch, results, strict=False)),
            _ENTITY_OF,
            answer.last_mutation_id,
            format_rfc3339(self._clock()),
        )
        outcome.results.extend(results)
        self._session.note_directives(answer.directives)
        if results and results[-1].status == ResultStatus.retry:
            raise Halt(SyncState.retry_later, retry_after=results[-1].retry_after)

    def _recover_gap(self, device_id: str, expected: int, head: int) -> None:
        """``409 mutation_gap``: re-send from ``expected_id`` (section 4.2).

        With batches always starting at the outbox head, a gap means the server lost
        mutations it had processed (``expected < head``, e.g. a restored backup). Their
        content is in the results log, so they go back into the outbox with the same ids.
        ``expected >= head`` cannot come from a correct server (ids up to its last processed
        one are replays, not gaps); nothing is dropped on such an answer.
        """
        if expected >= head:
            raise Halt(SyncState.failed, "mutation_gap")
        archived = self._store.archived(device_id, expected, head - 1)
        if archived is None:
            raise Halt(SyncState.failed, "mutation_gap_unrecoverable")
        self._store.requeue(archived)

    # -- pull (section 5) -------------------------------------------------------------------

    def pull(self) -> PullOutcome:
        """Pull until up to date (``has_more`` false) or the server says stop."""
        outcome = PullOutcome(SyncState.ok)
        try:
            self._pull(outcome)
        except Halt as halt:
            outcome.state, outcome.error = halt.state, halt.error
            outcome.retry_after = halt.retry_after
        outcome.directives = list(self._session.directives)
        return outcome

    def _pull(self, outcome: PullOutcome) -> None:
        credentials = self._session.credentials()
        resets = 0
        while outcome.pages < _MAX_PAGES_PER_PULL:
            request = PullRequest(
                PROTOCOL_VERSION,
                self._app_version,
                credentials.device_id,
                self._store.cursor(),
                self._pull_limit,
            )
            response = self._session.send(PULL_PATH, request.to_json())
            problem = None if response.status == 200 else problem_of(response)
            if problem is not None and problem.code == "invalid_cursor":
                resets = self._reset(resets, outcome)  # an error instead of reset: same thing
                continue
            if response.status != 200:
                self._session.halt_for(response, problem)
            try:
                page = PullResponse.from_json(response.body)
            except ProtocolError:
                # An unknown op, delete reason or directive type (see _apply_push_response):
                # the page is not applied and the cursor stays, so the next pull asks for the
                # same page again; the outbox is untouched and pushing goes on working.
                raise Halt(SyncState.failed, "invalid_response") from None
            outcome.pages += 1
            self._session.note_directives(page.directives, reset_records=False)
            if page.reset or any(d.type == DirectiveType.reset for d in page.directives):
                resets = self._reset(resets, outcome)
                continue
            self._store.apply_page(page.changes, page.cursor, page.last_mutation_id)
            outcome.changes += len(page.changes)
            if page.digest is not None:
                if self._store.digest() != (page.digest, page.record_count):
                    resets = self._reset(resets, outcome)  # diverged: start again
                    continue
                outcome.digest_verified = True
            if not page.has_more:
                return
        raise Halt(SyncState.failed, "too_many_pages")

    def _reset(self, resets: int, outcome: PullOutcome) -> int:
        """Drop records and cursor (never the outbox); give up after a few in one pull, but
        only after dropping: a copy known to have diverged is not worth keeping."""
        self._store.reset_records()
        outcome.resets += 1
        if resets >= _MAX_RESETS_PER_PULL:
            raise Halt(SyncState.failed, "reset_loop")
        return resets + 1

    def sync(self) -> SyncOutcome:
        """Push, then pull: the pull then already reflects this device's own changes."""
        pushed = self.push()
        if pushed.state in (SyncState.offline, SyncState.re_enroll, SyncState.not_enrolled):
            return SyncOutcome(pushed, None)
        return SyncOutcome(pushed, self.pull())

    # -- what the app shows -----------------------------------------------------------------

    @property
    def device_id(self) -> str | None:
        credentials = self._store.credentials()
        return None if credentials is None else credentials.device_id

    @property
    def directives(self) -> list[Directive]:
        """The directives of the last answer that carried any list of them."""
        return list(self._session.directives)

    def records(self, entity: str) -> dict[str, dict[str, object]]:
        return self._store.records(entity)

    def digest(self) -> tuple[str, int]:
        return self._store.digest()

    def pending(self) -> list[OutboxEntry]:
        return self._store.outbox()

    def results_log(self) -> list[LoggedResult]:
        return self._store.results_log()

    def conflicts(self) -> list[ConflictEntry]:
        return self._store.conflicts()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
