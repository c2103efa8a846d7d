"""RFC 9457 problem documents as the sync client reads them.

Problems are open-ended (any extension member may appear; proxies may even answer with HTML),
so this parser keeps unknown members in ``members`` (the sync responses merely ignore theirs). It
does check the members the protocol gives meaning to (``code``, ``expected_id`` of
``mutation_gap``, ``supported`` of ``unsupported_protocol``, ``directives``), because the
client acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from sync_protocol._decode import check_int
from sync_protocol._wire import CODE_RE
from sync_protocol.directives import Directive, directives_from_json
from sync_protocol.errors import InvalidMessage, ProtocolError


@dataclass(frozen=True)
class Problem:
    """An error answer; ``members`` is the whole document, for round trips and display."""

    status: int
    code: str
    detail: str | None = None
    expected_id: int | None = None
    supported: tuple[int, ...] | None = None
    directives: tuple[Directive, ...] = ()
    members: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, obj: object) -> Self:
        if not isinstance(obj, dict):
            raise InvalidMessage("problem: expected an object")
        code, status = obj.get("code"), obj.get("status")
        if not isinstance(code, str) or CODE_RE.fullmatch(code) is None:
            raise InvalidMessage("problem.code: expected a snake_case code")
        status = check_int(status, "problem.status", InvalidMessage, 400, 599)
        detail = obj.get("detail")
        expected = obj.get("expected_id")
        supported = obj.get("supported")
        if supported is not None and not (
            isinstance(supported, list) and all(type(v) is int for v in supported)
        ):
            raise InvalidMessage("problem.supported: expected a list of integers")
        return cls(
            status=status,
            code=code,
            detail=detail if isinstance(detail, str) else None,
            expected_id=None
            if expected is None
            else check_int(expected, "problem.expected_id", InvalidMessage, 1, 2**53 - 1),
            supported=None if supported is None else tuple(supported),
            directives=tuple(directives_from_json(obj.get("directives", []), "directives")),
            members=dict(obj),
        )

    def to_json(self) -> dict[str, object]:
        if self.members:
            return dict(self.members)
        out: dict[str, object] = {"status": self.status, "code": self.code}
        if self.detail is not None:
            out["detail"] = self.detail
        if self.expected_id is not None:
            out["expected_id"] = self.expected_id
        if self.supported is not None:
            out["supported"] = list(self.supported)
        if self.directives:
            out["directives"] = [d.to_json() for d in self.directives]
        return out


def problem_document(error: ProtocolError, status: int | None = None) -> dict[str, object]:
    """A minimal problem document for ``error`` (servers usually add ``request_id`` etc.)."""
    code_status = status or error.status_hint or 400
    return {
        "type": f"https://xuncha.example/problems/{error.code}",
        "title": error.code.replace("_", " "),
        "status": code_status,
        "detail": error.message,
        "code": error.code,
        **error.extra,
    }
