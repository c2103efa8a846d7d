"""Directives: instructions the server attaches to responses and problems (section 7).

They live apart from :mod:`sync_protocol.messages` because the version policy produces them and
the messages carry them; both import this module, neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from sync_protocol._decode import Fail, Fields
from sync_protocol.errors import InvalidMessage


class DirectiveType(StrEnum):
    upgrade_recommended = "upgrade_recommended"
    upgrade_required = "upgrade_required"
    # Drop local records, keep the outbox, pull from a null cursor.
    reset = "reset"
    # The device is revoked or its user inactive: enroll again, keep the outbox.
    re_enroll = "re_enroll"


DIRECTIVE_TYPES = tuple(t.value for t in DirectiveType)
MAX_DIRECTIVES = 10


@dataclass(frozen=True)
class Directive:
    """``{"type", "message", "min_app_version"?}``; ``min_app_version`` is omitted when None."""

    type: DirectiveType
    message: str
    min_app_version: str | None = None

    def __post_init__(self) -> None:
        try:  # accept the plain string ("reset") as well as the enum member
            object.__setattr__(self, "type", DirectiveType(self.type))
        except ValueError:
            raise InvalidMessage(f"unknown directive type {self.type!r}") from None

    @classmethod
    def from_json(cls, obj: object, path: str = "", fail: Fail = InvalidMessage) -> Self:
        fields = Fields(obj, path, fail, unknown="ignore")  # server -> phone
        directive = cls(
            type=DirectiveType(fields.choice("type", DIRECTIVE_TYPES)),
            message=fields.text("message", max_len=1000),
            min_app_version=fields.opt_text("min_app_version", min_len=1, max_len=64),
        )
        fields.finish()
        return directive

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type.value, "message": self.message}
        if self.min_app_version is not None:
            out["min_app_version"] = self.min_app_version
        return out


def directives_from_json(value: object, path: str, fail: Fail = InvalidMessage) -> list[Directive]:
    if not isinstance(value, list) or len(value) > MAX_DIRECTIVES:
        raise fail(f"{path}: expected an array of at most {MAX_DIRECTIVES} directives")
    return [Directive.from_json(item, f"{path}[{i}]", fail) for i, item in enumerate(value)]
