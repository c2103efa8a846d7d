"""Errors of the cases domain (stable codes; see docs/api-errors.md)."""

from backend.core.errors import Conflict, Forbidden, InvalidInput, NotFound


class CaseNotFound(NotFound):
    code = "case_not_found"


class DepartmentNotFound(NotFound):
    code = "department_not_found"


class IllegalTransition(Conflict):
    """The action does not apply to the case in its current status."""

    code = "illegal_transition"
    title = "This action does not apply to the case in its current status"


class StaleCase(Conflict):
    """The caller acted on an older version of the case (someone else acted first)."""

    code = "case_changed"
    title = "The case changed since you read it"


class CaseOutOfScope(Forbidden):
    code = "case_out_of_scope"


class ActionNotAllowed(Forbidden):
    code = "action_not_allowed"


class CommentRequired(InvalidInput):
    code = "comment_required"


class EvidenceMissing(Conflict):
    """E.g. confirming an on-the-spot fix without both before and after photos stored."""

    code = "evidence_missing"


class CaseInputInvalid(InvalidInput):
    code = "case_input_invalid"
