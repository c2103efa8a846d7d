"""Pull messages (docs/sync-protocol.md 5): the cursor request and its pages of changes.

See :mod:`sync_protocol.messages` for the conventions every message follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

from sync_protocol._decode import MAX_SAFE_INT, Fail, Fields
from sync_protocol._wire import (
    DEFAULT_PULL_LIMIT,
    DIGEST_RE,
    ENTITIES,
    MAX_CURSOR_LENGTH,
    MAX_PULL_LIMIT,
    MAX_RECORD_ID_LENGTH,
    check_envelope,
    server_time,
)
from sync_protocol._wire import invalid as _invalid
from sync_protocol.directives import Directive, directives_from_json
from sync_protocol.errors import InvalidMessage


@dataclass(frozen=True)
class PullRequest:
    """``POST /api/v1/sync/pull``; ``cursor`` absent or null starts from a snapshot."""

    protocol_version: int
    app_version: str
    device_id: str
    cursor: str | None = None
    limit: int = DEFAULT_PULL_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_PULL_LIMIT:
            raise InvalidMessage(f"limit: must be between 1 and {MAX_PULL_LIMIT}")

    @classmethod
    def from_json(cls, obj: object) -> Self:
        fields = Fields(obj, "", _invalid)
        version, app_version = check_envelope(fields)
        request = cls(
            protocol_version=version,
            app_version=app_version,
            device_id=fields.uuid("device_id"),
            cursor=fields.opt_text("cursor", min_len=1, max_len=MAX_CURSOR_LENGTH),
            limit=fields.opt_integer("limit", lo=1, hi=MAX_PULL_LIMIT) or DEFAULT_PULL_LIMIT,
        )
        fields.finish()
        return request

    def to_json(self) -> dict[str, object]:
        return {
            "protocol_version": self.protocol_version,
            "app_version": self.app_version,
            "device_id": self.device_id,
            "cursor": self.cursor,
            "limit": self.limit,
        }


ChangeOp = Literal["put", "delete"]
DeleteReason = Literal["deleted", "out_of_scope"]
CHANGE_OPS: tuple[ChangeOp, ...] = ("put", "delete")
DELETE_REASONS: tuple[DeleteReason, ...] = ("deleted", "out_of_scope")


def _op(value: str) -> ChangeOp:
    return "put" if value == "put" else "delete"


def _reason(value: str) -> DeleteReason:
    return "deleted" if value == "deleted" else "out_of_scope"


@dataclass(frozen=True, kw_only=True)
class Change:
    """One record entering, changing in or leaving the device's scope.

    A ``put`` carries the record (``data``); a ``delete`` carries only why (``reason``).
    """

    entity: str
    id: str
    op: ChangeOp
    version: int
    data: dict[str, object] | None = None
    reason: DeleteReason | None = None

    def __post_init__(self) -> None:
        # Checked here too, not only in from_json: the server builds these, and a bad change
        # must fail on the server rather than in every phone that receives it.
        if self.op not in CHANGE_OPS or (
            self.reason is not None and self.reason not in DELETE_REASONS
        ):
            raise InvalidMessage(f"change {self.entity}/{self.id}: op or reason unknown")
        if isinstance(self.version, bool) or not 1 <= self.version <= MAX_SAFE_INT:
            raise InvalidMessage(f"change {self.entity}/{self.id}: version must be at least 1")
        if self.op == "put" and (self.data is None or self.reason is not None):
            raise InvalidMessage(f"change {self.entity}/{self.id}: put needs data, no reason")
        if self.op == "delete" and (self.data is not None or self.reason is None):
            raise InvalidMessage(f"change {self.entity}/{self.id}: delete needs reason, no data")

    @classmethod
    def from_json(cls, obj: object, path: str = "", fail: Fail = _invalid) -> Self:
        f = Fields(obj, path, fail, unknown="ignore")  # server -> phone
        reason = f.raw("reason", required=False)
        change = cls(
            entity=f.choice("entity", ENTITIES),
            id=f.text("id", min_len=1, max_len=MAX_RECORD_ID_LENGTH),
            op=_op(f.choice("op", CHANGE_OPS)),
            version=f.integer("version", lo=1),
            data=f.opt_obj("data"),
            reason=None if reason is None else _reason(f.choice("reason", DELETE_REASONS)),
        )
        f.finish()
        return change

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "entity": self.entity,
            "id": self.id,
            "op": self.op,
            "version": self.version,
        }
        if self.data is not None:
            out["data"] = self.data
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, kw_only=True)
class PullResponse:
    """A page of changes (section 5). ``digest``/``record_count`` only when fully up to date."""

    changes: Sequence[Change]
    cursor: str | None
    has_more: bool
    reset: bool = False
    digest: str | None = None
    record_count: int | None = None
    last_mutation_id: int
    directives: Sequence[Directive] = ()
    server_time: str

    def __post_init__(self) -> None:
        # Lists are accepted and frozen into tuples (see PushResponse).
        object.__setattr__(self, "changes", tuple(self.changes))
        object.__setattr__(self, "directives", tuple(self.directives))
        if len(self.changes) > MAX_PULL_LIMIT:
            raise InvalidMessage(f"changes: more than {MAX_PULL_LIMIT}")
        if (self.digest is None) != (self.record_count is None):
            raise InvalidMessage("digest and record_count come together")
        if self.digest is not None and (self.has_more or DIGEST_RE.fullmatch(self.digest) is None):
            raise InvalidMessage("digest: 32 lower-case hex digits, only when has_more is false")
        if self.reset and (self.changes or self.digest is not None or self.cursor is not None):
            raise InvalidMessage("a reset carries no changes, no digest and a null cursor")
        if not self.reset and self.cursor is None:
            raise InvalidMessage("cursor: required unless reset")

    @classmethod
    def from_json(cls, obj: object) -> Self:
        f = Fields(obj, "", _invalid, unknown="ignore")  # server -> phone
        items = f.array("changes", max_items=MAX_PULL_LIMIT)
        digest = f.opt_text("digest", max_len=32)
        response = cls(
            changes=tuple(Change.from_json(c, f"changes[{i}]") for i, c in enumerate(items)),
            cursor=f.opt_text("cursor", min_len=1, max_len=MAX_CURSOR_LENGTH),
            has_more=f.flag("has_more"),
            reset=f.flag("reset"),
            digest=digest,
            record_count=f.opt_integer("record_count", lo=0),
            last_mutation_id=f.integer("last_mutation_id", lo=0),
            directives=tuple(directives_from_json(f.raw("directives"), "directives")),
            server_time=server_time(f),
        )
        f.finish()
        return response

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "changes": [c.to_json() for c in self.changes],
            "cursor": self.cursor,
            "has_more": self.has_more,
            "reset": self.reset,
        }
        if self.digest is not None:
            out["digest"] = self.digest
            out["record_count"] = self.record_count
        out["last_mutation_id"] = self.last_mutation_id
        out["directives"] = [d.to_json() for d in self.directives]
        out["server_time"] = self.server_time
        return out
