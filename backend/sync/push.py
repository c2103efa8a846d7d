"""Push: apply a device's numbered mutations exactly once, in order (docs/sync-protocol.md §4).

The device row is locked for the whole push, so two pushes of one device (a retry racing
the original) run one after the other and the second sees the first's bookkeeping. Each
mutation runs in a savepoint; its effects, its stored result and the device's
``last_mutation_id`` commit together with the request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.accounts.models import User
from backend.audit import service as audit
from backend.core.errors import Conflict, Forbidden
from backend.core.problems import TRANSIENT_DATABASE_ERRORS
from backend.devices import repository as devices
from backend.devices import service as devices_service
from backend.devices.models import Device
from backend.reports.service import Locator
from backend.sync import repository
from backend.sync.handlers import Applied, MutationContext, apply_mutation
from sync_protocol.directives import Directive
from sync_protocol.messages import MutationResult, PushRequest, PushResponse, ResultStatus
from sync_protocol.timefmt import format_rfc3339

log = logging.getLogger("xuncha.sync")
RETRY_AFTER_S = 2
RETRYABLE: tuple[type[Exception], ...] = (*TRANSIENT_DATABASE_ERRORS, IntegrityError)
# Results that leave no effects behind: their savepoint is rolled back even if a handler
# wrote something before deciding.
_NO_EFFECT = {ResultStatus.rejected, ResultStatus.conflict, ResultStatus.gone, ResultStatus.locked}


class MutationGap(Conflict):
    code = "mutation_gap"
    title = "Mutations must follow the last one processed"


class DeviceMismatch(Forbidden):
    code = "device_mismatch"


def push(
    session: Session,
    *,
    device_id: str,
    user: User,
    request: PushRequest,
    locator: Locator,
    directives: list[Directive],
) -> PushResponse:
    if request.device_id != device_id:
        raise DeviceMismatch("device_id does not match the device of the access token")
    # The caller was read in a short transaction of its own (accounts.deps): read the device
    # again under its lock, so a revocation committed since then refuses this push too.
    device = devices_service.usable_device(devices.get_for_update(session, device_id), user.id)
    last = device.last_mutation_id
    if request.mutations and request.mutations[0].id > last + 1:
        raise MutationGap(
            f"the next mutation must be {last + 1}, got {request.mutations[0].id}",
            expected_id=last + 1,
            last_mutation_id=last,
        )
    context = MutationContext(user_id=user.id, device_id=device_id, locator=locator, user=user)
    results: list[MutationResult] = []
    for mutation in request.mutations:
        if mutation.id <= device.last_mutation_id:
            results.append(repository.replayed_result(session, device_id, mutation.id))
            continue
        result = _apply_one(session, context, device, mutation.id, mutation.name, mutation.args)
        results.append(result)
        if result.status is ResultStatus.retry:
            break
    device.last_seen_at = datetime.now(UTC)
    device.app_version = request.app_version
    return PushResponse(
        results=results,
        last_mutation_id=device.last_mutation_id,
        directives=directives,
        server_time=format_rfc3339(datetime.now(UTC)),
    )


def _apply_one(
    session: Session,
    context: MutationContext,
    device: Device,
    mutation_id: int,
    name: str,
    args: dict[str, object],
) -> MutationResult:
    savepoint = session.begin_nested()
    audit_mark = audit.pending_mark(session)
    try:
        applied = apply_mutation(session, context, mutation_id, name, dict(args))
        if applied.result.status in _NO_EFFECT:
            savepoint.rollback()
            audit.discard_after(session, audit_mark)
        else:
            savepoint.commit()
    except RETRYABLE:
        # Lock timeout, deadlock, lost connection, or a concurrent writer taking the same
        # report/photo id first: nothing of this mutation stays and it is not counted; the
        # device sends it (and everything after it) again, and then it replays or resolves.
        savepoint.rollback()
        audit.discard_after(session, audit_mark)
        log.warning(
            "mutation %s of device %s will be retried", mutation_id, device.id, exc_info=True
        )
        return MutationResult(
            id=mutation_id,
            status=ResultStatus.retry,
            code="temporary_failure",
            message="the server could not apply this mutation now; push it again",
            retry_after=RETRY_AFTER_S,
        )
    except Exception:
        # A server bug must not block this device's queue for ever (every retry would hit it
        # again): the mutation is answered as rejected and the error is logged loudly.
        savepoint.rollback()
        audit.discard_after(session, audit_mark)
        log.exception("mutation %s of device %s failed", mutation_id, device.id)
        applied = Applied(
            MutationResult(
                id=mutation_id,
                status=ResultStatus.rejected,
                code="internal_error",
                message="the server failed to apply this mutation; it has been logged",
            )
        )
    repository.store_result(
        session, device.id, mutation_id, name, applied.result, applied.produced_version
    )
    device.last_mutation_id = mutation_id
    return applied.result
