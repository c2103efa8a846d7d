"""Photo endpoints: direct upload (target, complete), reading a photo, local signed URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse, Response

from backend.accounts.deps import CurrentPrincipal, CurrentUser
from backend.core.deps import RuntimeDep, SessionDep
from backend.core.errors import NotFound
from backend.core.problems import PROBLEM_RESPONSES
from backend.core.routing import OneThreadRoute
from backend.core.runtime import Runtime
from backend.core.streams import SpooledBody, spool_request
from backend.media import service
from backend.media.errors import PhotoHashMismatch
from backend.media.schemas import PhotoOut, UploadTargetIn, UploadTargetOut
from backend.storage.local import LocalObjectStore

router = APIRouter(
    route_class=OneThreadRoute, prefix="/api/v1", tags=["photos"], responses=PROBLEM_RESPONSES
)
PhotoIdPath = Annotated[str, Path(min_length=36, max_length=36)]


@router.post("/photos/{photo_id}/upload-target", operation_id="photoUploadTarget")
def upload_target(
    photo_id: PhotoIdPath,
    body: UploadTargetIn,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
) -> UploadTargetOut:
    """A short-lived URL to PUT a declared photo's bytes to; then call complete."""
    target = service.direct_target(
        session,
        runtime,
        principal.user,
        principal.device.id if principal.device else None,
        photo_id,
        body.sha256,
        body.size,
        body.content_type,
        str(request.base_url),
    )
    if target.request is None:
        return UploadTargetOut(photo_id=photo_id, state="stored")
    return UploadTargetOut(
        photo_id=photo_id,
        state="declared",
        method="PUT",
        url=target.request.url,
        headers=target.request.headers,
        expires_at=target.request.expires_at,
    )


@router.post("/photos/{photo_id}/complete", operation_id="photoUploadComplete")
def complete(
    photo_id: PhotoIdPath,
    request: Request,
    runtime: RuntimeDep,
    principal: CurrentPrincipal,
) -> PhotoOut:
    """Verify the uploaded bytes (size, SHA-256, image) and keep them as the original."""
    view = service.direct_complete(runtime, principal.user, photo_id, str(request.base_url))
    runtime.wake_worker()
    return _photo_out(view)


@router.get("/photos/{photo_id}", operation_id="getPhoto")
def get_photo(
    photo_id: PhotoIdPath,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    user: CurrentUser,
) -> PhotoOut:
    """A photo's metadata, EXIF, evidence flags and links (valid at most 15 minutes)."""
    return _photo_out(service.view(session, runtime, user, photo_id, str(request.base_url)))


def _photo_out(view: service.PhotoView) -> PhotoOut:
    p = view.photo
    return PhotoOut(
        photo_id=p.photo_id,
        report_id=p.report_id,
        role=p.role,
        state=p.state,
        sha256=p.sha256,
        size=p.size,
        content_type=p.content_type,
        detected_type=p.detected_type,
        width=p.width,
        height=p.height,
        stored_at=p.stored_at,
        uploaded_via=p.uploaded_via,
        exif=p.exif,
        flags=list(p.flags or []),
        evidence=p.evidence,
        renditions_ready=p.preview_key is not None,
        links=view.links,
        links_expire_at=view.links_expire_at,
    )


# -- the local store's signed URLs (embedded profile; S3 serves its own) --------------------


async def _direct_body(request: Request, runtime: RuntimeDep) -> SpooledBody:
    return await spool_request(request, runtime.settings.photo_max_bytes, ("sha256",))


@router.put(
    "/media/direct/{token}",
    operation_id="localDirectUpload",
    status_code=204,
    include_in_schema=False,
)
def local_direct_upload(
    token: str,
    request: Request,
    runtime: RuntimeDep,
    body: Annotated[SpooledBody, Depends(_direct_body)],
) -> Response:
    """The embedded profile's stand-in for a presigned S3 PUT: the token is the signature."""
    store = _local_store(runtime)
    grant = store.verify_grant(token, kind="put")
    try:
        grant.check_request(request.headers.get("content-type", ""), body.length)
        if body.digests["sha256"].hex() != grant.sha256_hex:
            raise PhotoHashMismatch("the body does not match the signed x-amz-checksum-sha256")
        content_type = grant.content_type or "application/octet-stream"
        store.put_stream(grant.key, body.file, body.length, content_type, overwrite=grant.overwrite)
    finally:
        body.close()
    return Response(status_code=204)


@router.get("/media/signed/{token}", operation_id="localSignedDownload", include_in_schema=False)
def local_signed_download(token: str, runtime: RuntimeDep) -> FileResponse:
    """The embedded profile's stand-in for a presigned S3 GET."""
    store = _local_store(runtime)
    grant = store.verify_grant(token, kind="get")
    return FileResponse(
        store.path_of(grant.key),
        media_type=grant.content_type or "application/octet-stream",
        filename=grant.filename,
        headers={"Cache-Control": "private, max-age=60"},
    )


def _local_store(runtime: Runtime) -> LocalObjectStore:
    store = runtime.object_store
    if not isinstance(store, LocalObjectStore):  # S3 signs its own URLs; these do not exist
        raise NotFound("no such media URL on this server")
    return store
