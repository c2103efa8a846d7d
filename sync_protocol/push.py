"""Push messages (docs/sync-protocol.md 4.2): the mutation batch and its per-mutation results.

See :mod:`sync_protocol.messages` for the conventions every message follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Self

from sync_protocol._decode import Fail, Fields
from sync_protocol._wire import (
    CODE_RE,
    ENTITIES,
    MAX_BATCH_MUTATIONS,
    MAX_RECORD_ID_LENGTH,
    check_envelope,
    server_time,
)
from sync_protocol._wire import invalid as _invalid
from sync_protocol.directives import Directive, directives_from_json
from sync_protocol.errors import InvalidMessage, ProtocolError


@dataclass(frozen=True)
class Mutation:
    """One user action, numbered by the device (section 4.1).

    ``args`` are checked here only for being an object; their content is validated per
    mutation (:func:`sync_protocol.mutations.validate_mutation`) so a bad one is *rejected*
    alone instead of failing the whole batch. ``client_time`` is the device clock, kept for
    display; it is not parsed here for the same reason (it never decides anything).
    """

    id: int
    name: str
    args: dict[str, object]
    client_time: str | None = None

    @classmethod
    def from_json(cls, obj: object, path: str = "", fail: Fail = _invalid) -> Self:
        fields = Fields(obj, path, fail)
        mutation = cls(
            id=fields.integer("id", lo=1),
            name=fields.text("name", min_len=1, max_len=64),
            args=fields.obj("args"),
            client_time=fields.opt_text("client_time", max_len=64),
        )
        fields.finish()
        return mutation

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "name": self.name, "args": self.args}
        if self.client_time is not None:
            out["client_time"] = self.client_time
        return out


def _too_large(count: int) -> ProtocolError:
    return ProtocolError(
        "batch_too_large", f"{count} mutations in one request; at most {MAX_BATCH_MUTATIONS}"
    )


def check_batch(mutations: Sequence[Mutation]) -> None:
    """Section 4.2 limits that need no server state: count and consecutive ids."""
    if len(mutations) > MAX_BATCH_MUTATIONS:
        raise _too_large(len(mutations))
    for previous, current in pairwise(mutations):
        if current.id != previous.id + 1:
            raise ProtocolError(
                "invalid_batch",
                f"mutation ids must be consecutive: {current.id} follows {previous.id}",
            )


@dataclass(frozen=True)
class PushRequest:
    """``POST /api/v1/sync/push``. An empty ``mutations`` list is allowed (a no-op probe)."""

    protocol_version: int
    app_version: str
    device_id: str
    mutations: Sequence[Mutation]

    def __post_init__(self) -> None:
        # Lists are accepted for convenience and frozen into tuples, so equality and hashing
        # do not depend on what the caller passed.
        object.__setattr__(self, "mutations", tuple(self.mutations))
        check_batch(self.mutations)

    @classmethod
    def from_json(cls, obj: object) -> Self:
        fields = Fields(obj, "", _invalid)
        version, app_version = check_envelope(fields)
        device_id = fields.uuid("device_id")
        raw = fields.raw("mutations")
        # Count before parsing: a 10,000-item body is refused without looking at the items.
        if isinstance(raw, list) and len(raw) > MAX_BATCH_MUTATIONS:
            raise _too_large(len(raw))
        items = fields.array("mutations", max_items=MAX_BATCH_MUTATIONS)
        mutations = tuple(
            Mutation.from_json(item, f"mutations[{i}]") for i, item in enumerate(items)
        )
        fields.finish()
        return cls(version, app_version, device_id, mutations)

    def to_json(self) -> dict[str, object]:
        return {
            "protocol_version": self.protocol_version,
            "app_version": self.app_version,
            "device_id": self.device_id,
            "mutations": [m.to_json() for m in self.mutations],
        }


@dataclass(frozen=True)
class RecordRef:
    """The record a mutation touched and its version after the mutation."""

    entity: str
    id: str
    version: int

    @classmethod
    def from_json(cls, obj: object, path: str = "", fail: Fail = _invalid) -> Self:
        fields = Fields(obj, path, fail, unknown="ignore")  # server -> phone
        ref = cls(
            entity=fields.choice("entity", ENTITIES),
            id=fields.text("id", min_len=1, max_len=MAX_RECORD_ID_LENGTH),
            version=fields.integer("version", lo=1),
        )
        fields.finish()
        return ref

    def to_json(self) -> dict[str, object]:
        return {"entity": self.entity, "id": self.id, "version": self.version}


class ResultStatus(StrEnum):
    applied = "applied"
    rejected = "rejected"
    conflict = "conflict"
    gone = "gone"
    locked = "locked"
    retry = "retry"


RESULT_STATUSES = tuple(s.value for s in ResultStatus)
# The members each status may carry beyond id/status/record/code/message/replayed; anything
# else is a server bug that the client would otherwise misread.
_ONLY_WITH = {
    "fields": ResultStatus.conflict,
    "server": ResultStatus.conflict,
    "ignored_fields": ResultStatus.applied,
    "retry_after": ResultStatus.retry,
}


@dataclass(frozen=True, kw_only=True)
class MutationResult:
    """The outcome of one mutation (section 4.2 table)."""

    id: int
    status: ResultStatus
    record: RecordRef | None = None
    code: str | None = None
    message: str | None = None
    fields: tuple[str, ...] | None = None
    server: dict[str, object] | None = None
    ignored_fields: tuple[str, ...] | None = None
    retry_after: int | None = None
    replayed: bool = False

    def __post_init__(self) -> None:
        # Accept the plain string too ("applied"), as builders often have one.
        try:
            object.__setattr__(self, "status", ResultStatus(self.status))
        except ValueError:
            raise InvalidMessage(f"result {self.id}: unknown status {self.status!r}") from None
        status = self.status
        for name, allowed in _ONLY_WITH.items():
            if getattr(self, name) is not None and status != allowed:
                raise InvalidMessage(f"result {self.id}: '{name}' only goes with {allowed}")
        if status in (ResultStatus.applied, ResultStatus.conflict) and self.record is None:
            raise InvalidMessage(f"result {self.id}: {status} needs 'record'")
        if status == ResultStatus.rejected and self.code is None:
            raise InvalidMessage(f"result {self.id}: rejected needs 'code'")
        if status == ResultStatus.retry and self.retry_after is None:
            raise InvalidMessage(f"result {self.id}: retry needs 'retry_after'")
        if status == ResultStatus.conflict and (
            not self.fields or self.server is None or not set(self.fields) <= set(self.server)
        ):
            raise InvalidMessage(
                f"result {self.id}: conflict needs 'fields' and their values in 'server'"
            )
        if self.code is not None and CODE_RE.fullmatch(self.code) is None:
            raise InvalidMessage(f"result {self.id}: code must be snake_case")

    @classmethod
    def from_json(cls, obj: object, path: str = "", fail: Fail = _invalid) -> Self:
        f = Fields(obj, path, fail, unknown="ignore")  # server -> phone
        record = f.opt_obj("record")
        result = cls(
            id=f.integer("id", lo=1),
            status=ResultStatus(f.choice("status", RESULT_STATUSES)),
            record=None if record is None else RecordRef.from_json(record, f.path("record")),
            code=f.opt_text("code", min_len=1, max_len=64),
            message=f.opt_text("message", max_len=2000),
            fields=f.text_list("fields", max_items=50, max_len=64),
            server=f.opt_obj("server"),
            ignored_fields=f.text_list("ignored_fields", max_items=50, max_len=64),
            retry_after=f.opt_integer("retry_after", lo=0, hi=86_400),
            replayed=f.flag("replayed", default=False),
        )
        f.finish()
        return result

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "status": self.status.value}
        if self.record is not None:
            out["record"] = self.record.to_json()
        for name in ("code", "message", "server", "retry_after"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        for name in ("fields", "ignored_fields"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.replayed:
            out["replayed"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class PushResponse:
    """The answer to a push: results in order, stopping after the first ``retry``."""

    results: Sequence[MutationResult]
    last_mutation_id: int
    directives: Sequence[Directive] = ()
    server_time: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "results", tuple(self.results))
        object.__setattr__(self, "directives", tuple(self.directives))
        for previous, current in pairwise(self.results):
            if current.id != previous.id + 1:
                raise InvalidMessage("results must be consecutive, in mutation order")
            if previous.status == ResultStatus.retry:
                raise InvalidMessage("nothing may follow a 'retry' result")
        for result in self.results:
            # Every result but retry is processed, so it cannot be above last_mutation_id. (A
            # retry may be at or below it: a racing duplicate request may have processed that
            # mutation meanwhile; the app re-sends it and gets the stored result as a replay.)
            if result.status != ResultStatus.retry and result.id > self.last_mutation_id:
                raise InvalidMessage(f"result {result.id} is above last_mutation_id")

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", _invalid, unknown="ignore")  # server -> phone
        items = f.array("results", max_items=MAX_BATCH_MUTATIONS)
        response = cls(
            results=tuple(
                MutationResult.from_json(item, f"results[{i}]") for i, item in enumerate(items)
            ),
            last_mutation_id=f.integer("last_mutation_id", lo=0),
            directives=tuple(directives_from_json(f.raw("directives"), "directives")),
            server_time=server_time(f),
        )
        f.finish()
        return response

    def to_json(self) -> dict[str, object]:
        return {
            "results": [r.to_json() for r in self.results],
            "last_mutation_id": self.last_mutation_id,
            "directives": [d.to_json() for d in self.directives],
            "server_time": self.server_time,
        }
