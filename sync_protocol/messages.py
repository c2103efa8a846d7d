"""The push and pull messages of docs/sync-protocol.md sections 4.2 and 5, as frozen dataclasses.

Every message has a strict ``from_json`` (wrong types and broken invariants raise
:class:`ProtocolError`, with the field path in the message) and a ``to_json`` that produces the
exact wire form, so server, reference client and golden examples share one definition.

Unknown members are refused in requests (``PushRequest``, ``PullRequest``, ``Mutation``: the
server must refuse typos) and ignored in responses (``PushResponse``, ``MutationResult``,
``RecordRef``, ``PullResponse``, ``Change``, ``Directive``): servers may add members, and
phones cannot be upgraded in lockstep (docs/sync-protocol.md section 1). ``to_json`` of a parsed
response therefore holds only the members this version knows. Unknown *values* of known
members (a future ``status``, ``op`` or directive ``type``) remain errors.

Optional members whose value is None (and ``replayed`` when false) are *omitted* by
``to_json`` rather than sent as null: a push answer for 200 mutations should carry what happened,
not 1,400 nulls. ``from_json`` accepts null and absence alike for them.
"""

from __future__ import annotations

from sync_protocol._wire import (
    CODE_RE,
    DEFAULT_PULL_LIMIT,
    DIGEST_RE,
    ENTITIES,
    MAX_BATCH_BYTES,
    MAX_BATCH_MUTATIONS,
    MAX_CURSOR_LENGTH,
    MAX_PULL_LIMIT,
    MAX_RECORD_ID_LENGTH,
    encode_json,
)
from sync_protocol.directives import Directive, DirectiveType
from sync_protocol.pull import Change, ChangeOp, DeleteReason, PullRequest, PullResponse
from sync_protocol.push import (
    RESULT_STATUSES,
    Mutation,
    MutationResult,
    PushRequest,
    PushResponse,
    RecordRef,
    ResultStatus,
    check_batch,
)

__all__ = [
    "CODE_RE", "DEFAULT_PULL_LIMIT", "DIGEST_RE", "ENTITIES", "MAX_BATCH_BYTES",
    "MAX_BATCH_MUTATIONS", "MAX_CURSOR_LENGTH", "MAX_PULL_LIMIT", "MAX_RECORD_ID_LENGTH",
    "RESULT_STATUSES", "Change", "ChangeOp", "DeleteReason", "Directive", "DirectiveType",
    "Mutation", "MutationResult", "PullRequest", "PullResponse", "PushRequest", "PushResponse",
    "RecordRef", "ResultStatus", "check_batch", "encode_json",
]  # fmt: skip
