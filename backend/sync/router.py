"""The sync endpoints phones call: push mutations, pull changes (docs/sync-protocol.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from backend.accounts.deps import CurrentDevice
from backend.core.db import transaction
from backend.core.deps import RuntimeDep, SessionDep, SnapshotSessionDep
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.reports.service import Locator
from backend.sync import pull as pull_service
from backend.sync import push as push_service
from backend.sync import scope as scope_store
from backend.sync.scope import Scope
from sync_protocol import schemas
from sync_protocol.cursor import CursorCodec
from sync_protocol.errors import InvalidMessage, ProtocolError
from sync_protocol.messages import MAX_BATCH_BYTES, PullRequest, PushRequest
from sync_protocol.versions import AppVersionPolicy, check_protocol

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1/sync", tags=["sync"], responses=PROBLEM_RESPONSES
)


async def json_body(request: Request) -> Any:
    """The raw JSON body: sync messages are validated by the protocol package, not pydantic."""
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise ProtocolError(
            "batch_too_large", f"sync requests are limited to {MAX_BATCH_BYTES} bytes"
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidMessage("the body is not valid JSON (or nested too deeply)") from None


JsonBody = Annotated[Any, Depends(json_body)]


def _body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _ok(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"schema": schema}}, "description": "OK"}}


async def cursor_codec(runtime: RuntimeDep) -> CursorCodec:
    # A key of its own, derived from the service secret: cursors and tokens never share one.
    secret = runtime.settings.secret_key.get_secret_value().encode()
    return CursorCodec(hmac.new(secret, b"xuncha sync cursor v1", hashlib.sha256).digest())


async def version_policy(runtime: RuntimeDep) -> AppVersionPolicy:
    s = runtime.settings
    return AppVersionPolicy(s.sync_min_app_version, s.sync_recommended_app_version)


@router.post(
    "/push",
    operation_id="syncPush",
    openapi_extra=_body_schema(schemas.PUSH_REQUEST),
    responses=_ok(schemas.PUSH_RESPONSE),
    response_class=JSONResponse,
)
def push(
    body: JsonBody,
    runtime: RuntimeDep,
    session: SessionDep,
    principal: CurrentDevice,
    policy: Annotated[AppVersionPolicy, Depends(version_policy)],
) -> JSONResponse:
    """Apply a device's numbered mutations exactly once, in order; one result per mutation."""
    request = PushRequest.from_json(body)
    check_protocol(request.protocol_version)
    directives = policy.enforce(request.app_version, is_push=True)
    assert principal.device is not None
    locator = Locator(
        runtime.grid_indexes.active(session), runtime.settings.location_poor_accuracy_m
    )
    response = push_service.push(
        session,
        device_id=principal.device.id,
        user=principal.user,
        request=request,
        locator=locator,
        directives=directives,
    )
    return JSONResponse(response.to_json())


@router.post(
    "/pull",
    operation_id="syncPull",
    openapi_extra=_body_schema(schemas.PULL_REQUEST),
    responses=_ok(schemas.PULL_RESPONSE),
    response_class=JSONResponse,
)
def pull(
    body: JsonBody,
    runtime: RuntimeDep,
    snapshot: SnapshotSessionDep,
    principal: CurrentDevice,
    codec: Annotated[CursorCodec, Depends(cursor_codec)],
    policy: Annotated[AppVersionPolicy, Depends(version_policy)],
) -> JSONResponse:
    """Changes in the device's scope since its cursor (first call: cursor null)."""
    request = PullRequest.from_json(body)
    check_protocol(request.protocol_version)
    directives = policy.enforce(request.app_version, is_push=False)
    assert principal.device is not None
    if request.device_id != principal.device.id:
        raise push_service.DeviceMismatch("device_id does not match the device of the token")
    context = pull_service.PullContext(
        user_id=principal.user.id,
        username=principal.user.username,
        user=principal.user,
        device_id=principal.device.id,
        last_mutation_id=principal.device.last_mutation_id,
        codec=codec,
        today=runtime.settings.today(),
        directives=directives,
    )

    def remember(scope: Scope) -> None:
        with transaction(runtime.sessions) as writer:
            scope_store.remember(writer, scope)

    return JSONResponse(pull_service.pull(snapshot, context, request, remember).to_json())
