"""What a push or pull by the reference client achieved, for the app to show and schedule on.

An outcome is returned, never raised: being offline, being told to retry later or to upgrade
are normal states of a field app, not errors. ``error`` carries the problem code when the
state is ``failed`` (or the code that led to ``re_enroll``/``upgrade_required``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sync_protocol.messages import Directive, MutationResult


class SyncState(StrEnum):
    ok = "ok"  # everything sent / fully up to date
    offline = "offline"  # no answer (network); nothing lost, try again
    retry_later = "retry_later"  # the server asked to come back (retry result, 5xx)
    re_enroll = "re_enroll"  # device revoked or user inactive; the outbox is kept
    upgrade_required = "upgrade_required"  # this app version may no longer pull
    not_enrolled = "not_enrolled"  # no device credentials yet
    failed = "failed"  # the server or the client broke the protocol; see ``error``


@dataclass
class PushOutcome:
    state: SyncState
    results: list[MutationResult] = field(default_factory=list)
    requests: int = 0
    remaining: int = 0
    retry_after: int | None = None
    error: str | None = None
    directives: list[Directive] = field(default_factory=list)


@dataclass
class PullOutcome:
    state: SyncState
    pages: int = 0
    changes: int = 0
    resets: int = 0
    digest_verified: bool = False
    retry_after: int | None = None
    error: str | None = None
    directives: list[Directive] = field(default_factory=list)


@dataclass
class SyncOutcome:
    push: PushOutcome
    pull: PullOutcome | None
