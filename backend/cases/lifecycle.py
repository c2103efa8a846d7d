"""The case state machine (GB/T 30428 flow), as data: which action moves which status where,
who may take it, and what it needs. Pure; backend.cases.service applies it.

    reported ─accept→ accepted ─file→ filed ─dispatch→ dispatched ─handle→ handled
       │  └──────────file──────────↗   ↑  └─redispatch─↺   │  ↖return (unit: not ours)
       ├─decline→ declined             │                   │
       ├─void (duplicate)→ voided      └────────rework─────┤   handled ─verify→ verified
       ├─confirm_fix (当场整改)→ closed                          verified ─close→ closed
       └─withdraw (the reporter deletes the report before intake)→ declined
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from backend.accounts.models import Role
from backend.cases.models import CaseStatus, Step

S = CaseStatus
INTAKE: Final = frozenset({Role.intake_operator, Role.shift_lead, Role.admin})
DISPATCH: Final = frozenset({Role.dispatcher, Role.shift_lead, Role.admin})
SUPERVISE: Final = frozenset({Role.intake_operator, Role.dispatcher, Role.shift_lead, Role.admin})
DEPARTMENT: Final = frozenset({Role.department_handler})
FIELD: Final = frozenset({Role.inspector})


@dataclass(frozen=True)
class Action:
    name: str
    sources: frozenset[CaseStatus]
    target: CaseStatus
    roles: frozenset[Role]
    needs_comment: bool = False
    # The timed step this action ends (if it is running) and the one it starts.
    ends: frozenset[Step] = frozenset()
    starts: Step | None = None
    # Only through a phone's mutation (task.complete carries the after-photos; withdraw is
    # the reporter deleting the report before intake).
    by_phone: bool = False


def _action(
    name: str,
    sources: set[CaseStatus],
    target: CaseStatus,
    roles: frozenset[Role],
    *,
    needs_comment: bool = False,
    ends: set[Step] | None = None,
    starts: Step | None = None,
    by_phone: bool = False,
) -> Action:
    return Action(
        name, frozenset(sources), target, roles, needs_comment, frozenset(ends or ()), starts,
        by_phone,
    )  # fmt: skip


ACTIONS: Final[dict[str, Action]] = {
    a.name: a
    for a in (
        _action("accept", {S.reported}, S.accepted, INTAKE),
        _action("file", {S.reported, S.accepted}, S.filed, INTAKE,
                ends={Step.accept}, starts=Step.dispatch),
        _action("decline", {S.reported, S.accepted}, S.declined, INTAKE,
                needs_comment=True, ends={Step.accept}),
        _action("void", {S.reported, S.accepted, S.filed}, S.voided, INTAKE,
                ends={Step.accept, Step.dispatch}),
        _action("confirm_fix", {S.reported, S.accepted}, S.closed, INTAKE, ends={Step.accept}),
        _action("dispatch", {S.filed}, S.dispatched, DISPATCH,
                ends={Step.dispatch}, starts=Step.handle),
        _action("redispatch", {S.dispatched}, S.dispatched, DISPATCH,
                needs_comment=True, ends={Step.handle}, starts=Step.handle),
        _action("return", {S.dispatched}, S.filed, DEPARTMENT,
                needs_comment=True, ends={Step.handle}, starts=Step.dispatch),
        _action("handle", {S.dispatched}, S.handled, DEPARTMENT,
                ends={Step.handle}, starts=Step.check, by_phone=True),
        _action("verify", {S.handled}, S.verified, FIELD, ends={Step.check}, by_phone=True),
        _action("withdraw", {S.reported}, S.declined, FIELD, ends={Step.accept}, by_phone=True),
        _action("close", {S.verified}, S.closed, INTAKE),
        _action("rework", {S.handled, S.verified}, S.dispatched, SUPERVISE,
                needs_comment=True, ends={Step.check}, starts=Step.handle),
    )
}  # fmt: skip

# What the reports of a case show phones while the case is in each status.
REPORT_STATUS: Final[dict[CaseStatus, str]] = {
    S.reported: "submitted",
    S.accepted: "accepted",
    S.filed: "accepted",
    S.dispatched: "accepted",
    S.handled: "accepted",
    S.verified: "accepted",
    S.declined: "declined",
    S.voided: "merged",
    S.closed: "closed",
}


def allowed_actions(status: CaseStatus, role: Role) -> list[str]:
    """The actions a user with ``role`` could take on a case in ``status`` (for the UI)."""
    return [
        a.name
        for a in ACTIONS.values()
        if status in a.sources and role in a.roles and not a.by_phone
    ]
