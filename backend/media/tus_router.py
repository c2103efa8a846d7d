"""The tus 1.0 endpoints (https://tus.io/protocols/resumable-upload), under /api/v1/uploads."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import Response

from backend.accounts.deps import (
    BearerCredentials,
    CurrentPrincipal,
    Principal,
    resolve_principal,
)
from backend.core.db import transaction
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.errors import UnsupportedMediaType
from backend.core.problems import PROBLEM_RESPONSES, problem_response, problem_responses
from backend.core.routing import OneThreadRoute
from backend.core.streams import SpooledBody, spool_request
from backend.media import tus
from backend.media.errors import TusVersionUnsupported
from backend.media.models import PhotoUpload

# Success answers carry no body (the tus headers say it all); errors are problem documents.
TUS_PROBLEMS = {
    **PROBLEM_RESPONSES,
    **problem_responses(
        {
            410: "The upload expired or was terminated (upload_gone)",
            412: "Tus-Resumable: 1.0.0 is required (tus_version_unsupported)",
            415: "PATCH needs application/offset+octet-stream; not a photo type",
            460: "Upload-Checksum does not match the chunk (upload_checksum_mismatch)",
        }
    ),
}
router = APIRouter(
    route_class=OneThreadRoute,
    prefix="/api/v1/uploads",
    tags=["uploads (tus)"],
    responses=TUS_PROBLEMS,
    default_response_class=Response,
)
UploadIdPath = Annotated[str, Path(min_length=36, max_length=36)]
OFFSET_TYPE = "application/offset+octet-stream"


async def tus_version(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    if tus_resumable != tus.TUS_VERSION:
        raise TusVersionUnsupported(
            f"send Tus-Resumable: {tus.TUS_VERSION}", headers={"Tus-Version": tus.TUS_VERSION}
        )


TusVersion = Annotated[None, Depends(tus_version)]


def _headers(upload: PhotoUpload) -> dict[str, str]:
    return {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": format_datetime(upload.expires_at, usegmt=True),
        "Cache-Control": "no-store",
    }


@router.options(
    "",
    operation_id="tusOptions",
    status_code=204,
    responses={204: {"description": "tus capabilities"}},
)
def options(runtime: RuntimeDep) -> Response:
    """What this tus server supports."""
    return Response(
        status_code=204,
        headers={
            "Tus-Version": tus.TUS_VERSION,
            "Tus-Extension": tus.EXTENSIONS,
            "Tus-Max-Size": str(runtime.settings.photo_max_bytes),
            "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUMS),
        },
    )


@router.post(
    "",
    operation_id="tusCreate",
    status_code=201,
    responses={201: {"description": "Created; `Location` is the upload URL"}},
)
def create(
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    _version: TusVersion,
    upload_length: Annotated[int, Header(ge=0)],
    upload_metadata: Annotated[str | None, Header()] = None,
) -> Response:
    """Start (or find again) the upload of a photo a report declared: metadata `photo_id`."""
    upload = tus.create(
        session,
        runtime,
        principal.user,
        principal.device.id if principal.device else None,
        upload_length,
        tus.parse_metadata(upload_metadata),
    )
    location = str(request.url_for("tusHead", upload_id=upload.id))
    return Response(status_code=201, headers={"Location": location, **_headers(upload)})


@router.head(
    "/{upload_id}",
    operation_id="tusHead",
    name="tusHead",
    responses={200: {"description": "`Upload-Offset`, `Upload-Length`, `Upload-Expires`"}},
)
def head(
    upload_id: UploadIdPath, session: SessionDep, principal: CurrentPrincipal, _version: TusVersion
) -> Response:
    """How many bytes of this upload the server has (resume from there)."""
    upload = tus.get(session, principal.user, upload_id)
    return Response(status_code=200, headers=_headers(upload))


@dataclass(frozen=True)
class _Planned:
    principal: Principal
    plan: tus.PatchPlan


def _plan(
    upload_id: UploadIdPath,
    runtime: RuntimeDep,
    credentials: BearerCredentials,
    _version: TusVersion,
    upload_offset: Annotated[int, Header(ge=0)],
    content_length: Annotated[int | None, Header(ge=0)] = None,
) -> _Planned:
    # Authentication and the upload's state in one short read transaction, before a byte of
    # the body is read (and no transaction stays open while it arrives).
    with transaction(runtime.read_sessions) as session:
        principal = resolve_principal(session, runtime.settings, credentials)
        plan = tus.plan_patch(session, principal.user, upload_id, upload_offset, content_length)
    return _Planned(principal, plan)


Planned = Annotated[_Planned, Depends(_plan)]


async def _chunk(request: Request, runtime: RuntimeDep, _planned: Planned) -> SpooledBody:
    if request.headers.get("content-type", "").split(";")[0].strip() != OFFSET_TYPE:
        raise UnsupportedMediaType(f"PATCH bodies must be {OFFSET_TYPE}")
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    algorithms = (checksum.algorithm,) if checksum else ()
    return await spool_request(request, runtime.settings.photo_max_bytes, algorithms)


@router.patch(
    "/{upload_id}",
    operation_id="tusPatch",
    status_code=204,
    responses={204: {"description": "Appended; `Upload-Offset` is the new offset"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {OFFSET_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def patch(
    request: Request,
    runtime: RuntimeDep,
    planned: Planned,
    body: Annotated[SpooledBody, Depends(_chunk)],
    upload_offset: Annotated[int, Header(ge=0)],
) -> Response:
    """Append bytes at Upload-Offset; the last chunk verifies and stores the photo."""
    try:
        done = tus.patch(
            runtime,
            planned.principal.user,
            planned.plan,
            upload_offset,
            body,
            tus.parse_checksum(request.headers.get("upload-checksum")),
        )
    finally:
        body.close()
    if done.refused is not None:
        # Returned, not raised: the upload was terminated, and the answer says why.
        error = done.refused
        return problem_response(error.status, error.code, error.title, error.detail, **error.extra)
    if done.upload.completed_at is not None:
        runtime.wake_worker()
    return Response(status_code=204, headers=_headers(done.upload))


@router.delete(
    "/{upload_id}",
    operation_id="tusTerminate",
    status_code=204,
    responses={204: {"description": "Terminated"}},
)
def terminate(
    upload_id: UploadIdPath,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
    _version: TusVersion,
) -> Response:
    """Abandon an upload; its bytes are deleted."""
    tus.terminate(runtime, principal.user, upload_id)
    return Response(status_code=204)
