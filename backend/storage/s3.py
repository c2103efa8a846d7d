"""Object store on any S3-compatible server, through boto3.

Only the S3 API subset that MinIO, AWS S3, Aliyun OSS and Tencent COS share is used: path-style
addressing, SigV4, single PUTs, multipart uploads, CopyObject, ListObjectsV2, DeleteObjects,
ListMultipartUploads and presigned URLs.

Compatibility notes:

* botocore ≥ 1.36 adds CRC32 checksums to every request that *supports* one and validates them
  on responses; several S3-compatible servers reject or mangle those. The client asks for
  checksums only where the API *requires* one (``when_required``) when the installed botocore
  knows the option, and DeleteObjects (which requires one) also gets the ``Content-MD5`` header
  that older servers insist on and botocore ≥ 1.36 no longer sends.
* No overwrite of evidence: a HEAD first (fast refusal), then the write itself carries
  ``If-None-Match: *`` (PutObject, CompleteMultipartUpload, CopyObject). AWS S3, recent MinIO
  and moto refuse it with 412 when the key exists, which closes the race between two writers.
  Whether the server refuses a PutObject so is probed once per store (a throwaway key written
  twice); where it does, a single PutObject skips the HEAD, which would only repeat the
  answer the write itself gives (one request fewer per stored photo).
  A server that ignores the header (older MinIO, some vendors; moto ignores it on CopyObject)
  leaves a window between the HEAD and the write in which a concurrent writer of the *same*
  key can be replaced; keys of evidence are unique per upload, so this needs two writers
  racing on one new key. A server that answers the header with 501 NotImplemented gets the
  write again without it (and no more conditional writes from this store).
* Uploads are buffered one part at a time (at most 8 MiB): bodies are then retryable and
  signable over plain HTTP (SigV4 hashes the payload when not on TLS), which a bare stream is
  not. Up to 8 MiB ``put_stream`` is one PutObject; beyond, a multipart upload that is aborted
  on any failure (``cleanup_stale`` catches what a crash leaves).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.core.errors import ServiceUnavailable
from backend.core.settings import Settings
from backend.storage.base import (
    CHUNK_BYTES,
    MAX_PART_BYTES,
    MIN_PART_BYTES,
    ByteStream,
    ObjectExists,
    ObjectNotFound,
    PresignedRequest,
    check_content_type,
    check_expires,
    check_key,
    check_length,
    check_sha256_hex,
    content_disposition,
    read_exactly,
)

log = logging.getLogger(__name__)

_MISSING = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_NOT_IMPLEMENTED = {"NotImplemented", "501"}
_DELETE_BATCH = 1000
_PROBE_PREFIX = "probes/"


def client_config() -> Config:
    """Path-style, SigV4, and checksums only where the S3 API requires them."""
    options: dict[str, Any] = {
        "signature_version": "s3v4",
        "retries": {"max_attempts": 3, "mode": "standard"},
        "connect_timeout": 5,
        "read_timeout": 30,
    }
    # botocore ≥ 1.36 (flexible checksums by default); older versions know neither option.
    if "request_checksum_calculation" in Config.OPTION_DEFAULTS:
        options["request_checksum_calculation"] = "when_required"
    if "response_checksum_validation" in Config.OPTION_DEFAULTS:
        options["response_checksum_validation"] = "when_required"
    return Config(**options)


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    """DeleteObjects: many S3-compatible servers demand Content-MD5, which new botocore omits."""
    headers = params.setdefault("headers", {})
    if any(name.lower() == "content-md5" for name in headers):
        return
    body = params.get("body", b"")
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        md5 = hashlib.md5(body, usedforsecurity=False).digest()
        headers["Content-MD5"] = base64.b64encode(md5).decode("ascii")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> str:
    return str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def _is(exc: ClientError, codes: set[str]) -> bool:
    return _code(exc) in codes or _status(exc) in codes


class S3ObjectStore:
    def __init__(
        self,
        settings: Settings,
        client: Any | None = None,
        *,
        part_size: int = MAX_PART_BYTES,
    ) -> None:
        if not MIN_PART_BYTES <= part_size <= MAX_PART_BYTES:
            raise ValueError(f"part_size must be within {MIN_PART_BYTES}..{MAX_PART_BYTES}")
        self.part_size = part_size
        self.bucket = settings.s3_bucket
        self.create_bucket = settings.s3_create_bucket
        self.description = (
            f"s3 {settings.s3_endpoint_url or 'default endpoint'} bucket {self.bucket}"
        )
        config = client_config().merge(
            Config(s3={"addressing_style": "path" if settings.s3_path_style else "virtual"})
        )
        self.client = client or boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=(
                settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
            ),
            config=config,
        )
        self.client.meta.events.register(
            "before-call.s3.DeleteObjects", _add_content_md5, unique_id="xuncha-delete-md5"
        )
        # Cleared when the server answers If-None-Match with 501 (see the module notes).
        self.conditional_writes = True
        # Whether a PutObject with If-None-Match is refused on an existing key: None until
        # probed (see refuses_overwriting_puts).
        self._put_refusal: bool | None = None
        self._probing = threading.Lock()

    def ping(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISSING and self.create_bucket:
                self._create_bucket()
                return
            raise ServiceUnavailable(f"{self.description}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable(f"{self.description}: {exc}") from exc

    def _create_bucket(self) -> None:
        try:
            self.client.create_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise ServiceUnavailable(f"cannot create bucket {self.bucket}: {exc}") from exc

    # ----------------------------------------------------------------------------------------
    # whole objects

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        body: bytes = self._get_object(key)["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def _head(self, key: str) -> dict[str, Any]:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(f"object {key} does not exist") from exc
            raise
        return head

    def _get_object(self, key: str) -> dict[str, Any]:
        try:
            response: dict[str, Any] = self.client.get_object(
                Bucket=self.bucket, Key=check_key(key)
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(f"object {key} does not exist") from exc
            raise
        return response

    def _refuse_existing(self, key: str) -> None:
        if self.exists(key):
            raise ObjectExists(f"object {key} already exists")

    # ----------------------------------------------------------------------------------------
    # streams

    def put_stream(
        self,
        key: str,
        stream: ByteStream,
        length: int,
        content_type: str,
        *,
        overwrite: bool = False,
    ) -> str:
        check_key(key)
        check_length(length)
        check_content_type(content_type)
        multipart = length > self.part_size
        if not overwrite and (multipart or not self.refuses_overwriting_puts()):
            self._refuse_existing(key)
        _size, digest = self._upload(
            key,
            read_exactly(stream, length),
            content_type,
            multipart=multipart,
            overwrite=overwrite,
        )
        return digest

    def refuses_overwriting_puts(self) -> bool:
        """Whether this server refuses a conditional PutObject on an existing key (412).

        Probed once with a throwaway key written twice. A server that ignores the header
        (or a probe that fails) keeps the HEAD before every write of evidence; a failed probe
        is tried again at the next write.
        """
        if self._put_refusal is not None:
            return self._put_refusal
        with self._probing:
            if self._put_refusal is None:
                try:
                    self._put_refusal = self._probe_put_refusal()
                except (ClientError, BotoCoreError):
                    log.warning("%s: If-None-Match probe failed; will probe again", self)
                    return False
        return self._put_refusal

    def _probe_put_refusal(self) -> bool:
        key = f"{_PROBE_PREFIX}if-none-match-{uuid.uuid4().hex}"
        params = {"Bucket": self.bucket, "Key": key, "Body": b"probe", "ContentType": "text/plain"}
        try:
            etag = hashlib.md5(b"probe", usedforsecurity=False).hexdigest()
            self._conditional(self.client.put_object, dict(params), key, own_etag=etag)
            if not self.conditional_writes:
                return False  # 501: the server does not implement the header at all
            try:
                self._conditional(self.client.put_object, dict(params), key)
            except ObjectExists:
                return True
            log.warning("%s ignores If-None-Match on PutObject: HEAD before each write", self)
            return False
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def put_file(self, key: str, path: Path, content_type: str) -> None:
        with path.open("rb") as handle:
            self.put_stream(key, handle, path.stat().st_size, content_type)

    def scratch_dir(self) -> Path | None:
        return None

    def open_stream(self, key: str, chunk_size: int = CHUNK_BYTES) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        body = self._get_object(key)["Body"]
        return _iter_body(body, chunk_size)

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def concat(
        self, final_key: str, part_keys: Sequence[str], content_type: str
    ) -> tuple[int, str]:
        check_key(final_key)
        check_content_type(content_type)
        if isinstance(part_keys, str) or not part_keys:
            raise ValueError("concat needs a non-empty sequence of part keys")
        for part in part_keys:
            check_key(part)
        total = sum(self.size(part) for part in part_keys)
        self._refuse_existing(final_key)

        def chunks() -> Iterator[bytes]:
            for part in part_keys:
                yield from self.open_stream(part)

        return self._upload(
            final_key, chunks(), content_type, multipart=total >= MIN_PART_BYTES, overwrite=False
        )

    def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side CopyObject (objects up to 5 GiB, far above any photo)."""
        check_key(src_key)
        check_key(dst_key)
        self._head(src_key)
        self._refuse_existing(dst_key)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dst_key,
            "CopySource": {"Bucket": self.bucket, "Key": src_key},
        }
        try:
            self._conditional(self.client.copy_object, params, dst_key)
        except ObjectExists:
            # Some servers apply If-None-Match to the *source* on a copy: tell the cases apart.
            if self.exists(dst_key):
                raise
            log.warning("%s: If-None-Match refused on CopyObject; copying unconditionally", self)
            self.client.copy_object(**params)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise ObjectNotFound(f"object {src_key} does not exist") from exc
            raise

    def list_keys(self, prefix: str) -> list[str]:
        check_key(prefix)
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        check_key(prefix)
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": _DELETE_BATCH}
        ):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            for start in range(0, len(keys), _DELETE_BATCH):
                batch = keys[start : start + _DELETE_BATCH]
                response = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )
                errors = response.get("Errors", [])
                if errors:
                    first = errors[0]
                    raise ServiceUnavailable(
                        f"{self.description}: could not delete {len(errors)} object(s) under "
                        f"{prefix}, e.g. {first.get('Key')}: {first.get('Code')}"
                    )
                count += len(batch)
        return count

    # ----------------------------------------------------------------------------------------
    # presigned URLs

    def presign_put(
        self,
        key: str,
        *,
        content_type: str,
        size: int,
        sha256_hex: str,
        expires_s: int,
        overwrite: bool = False,
    ) -> PresignedRequest:
        """A presigned PutObject whose signature covers type, length, checksum and no-overwrite.

        The client must send exactly ``headers``: a different Content-Type or Content-Length
        fails the signature; S3 (and MinIO) verify the body against ``x-amz-checksum-sha256``;
        ``If-None-Match: *`` makes the server refuse to replace an existing object.
        """
        check_key(key)
        check_content_type(content_type)
        check_length(size)
        digest = check_sha256_hex(sha256_hex)
        check_expires(expires_s)
        if not overwrite:
            self._refuse_existing(key)
        checksum = base64.b64encode(bytes.fromhex(digest)).decode("ascii")
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": content_type,
            "ContentLength": size,
            "ChecksumSHA256": checksum,
        }
        headers = {
            "Content-Type": content_type,
            "Content-Length": str(size),
            "x-amz-checksum-sha256": checksum,
        }
        if self.conditional_writes and not overwrite:
            params["IfNoneMatch"] = "*"
            headers["If-None-Match"] = "*"
        signed_at = datetime.now(UTC)
        url = self.client.generate_presigned_url(
            "put_object", Params=params, ExpiresIn=expires_s, HttpMethod="PUT"
        )
        return PresignedRequest(
            url=url,
            method="PUT",
            headers=headers,
            expires_at=signed_at + timedelta(seconds=expires_s),
        )

    def presign_get(self, key: str, *, expires_s: int, filename: str | None = None) -> str:
        check_key(key)
        check_expires(expires_s)
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        url: str = self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_s
        )
        return url

    # ----------------------------------------------------------------------------------------
    # hygiene

    def abort_stale_multipart_uploads(self, older_than: timedelta, prefix: str = "") -> int:
        """Abort multipart uploads initiated before now - older_than (by the server's clock
        as reported in ``Initiated``, compared with ours: keep ``older_than`` generous)."""
        if prefix:
            check_key(prefix)
        cutoff = datetime.now(UTC) - older_than
        count = 0
        paginator = self.client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                if not isinstance(initiated, datetime) or initiated > cutoff:
                    continue
                try:
                    self.client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if _code(exc) == "NoSuchUpload":  # completed or aborted meanwhile
                        continue
                    raise
                count += 1
        return count

    def cleanup_stale(self, older_than: timedelta) -> int:
        return self.abort_stale_multipart_uploads(older_than)

    # ----------------------------------------------------------------------------------------
    # writing

    def _conditional(
        self, call: Any, params: dict[str, Any], key: str, *, own_etag: str | None = None
    ) -> Any:
        """``call(**params)`` with If-None-Match: * when the server takes it; 412 → ObjectExists.

        Unless the object there is the one this call wrote (``own_etag``): botocore retries a
        request whose response was lost, and the retry of a write that did land gets 412.
        """
        if self.conditional_writes:
            try:
                return call(**params, IfNoneMatch="*")
            except ClientError as exc:
                if _is(exc, _PRECONDITION):
                    if own_etag is not None and self._etag(key) == own_etag:
                        log.info("%s: %s was written by an earlier attempt of this call", self, key)
                        return None
                    raise ObjectExists(f"object {key} already exists") from exc
                if not _is(exc, _NOT_IMPLEMENTED):
                    raise
                log.warning("%s does not implement If-None-Match; writes are unconditional", self)
                self.conditional_writes = False
        return call(**params)

    def _upload(
        self,
        key: str,
        chunks: Iterable[bytes],
        content_type: str,
        *,
        multipart: bool,
        overwrite: bool,
    ) -> tuple[int, str]:
        """Upload ``chunks``: one PutObject, or a multipart upload of ``part_size`` parts."""
        digest = hashlib.sha256()
        size = 0
        if not multipart:
            buffer = bytearray()
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
            params = {
                "Bucket": self.bucket,
                "Key": key,
                "Body": buffer,
                "ContentLength": size,
                "ContentType": content_type,
            }
            if overwrite:
                self.client.put_object(**params)
            else:
                etag = hashlib.md5(buffer, usedforsecurity=False).hexdigest()
                self._conditional(self.client.put_object, params, key, own_etag=etag)
            return size, digest.hexdigest()

        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            part = bytearray()
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    take = min(len(view), self.part_size - len(part))
                    part += view[:take]
                    view = view[take:]
                    if len(part) == self.part_size:
                        parts.append(self._upload_part(key, upload_id, len(parts) + 1, part))
                        part = bytearray()
            if part or not parts:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, part))
            del part
            complete = {
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "MultipartUpload": {"Parts": parts},
            }
            if overwrite:
                self.client.complete_multipart_upload(**complete)
            else:
                self._conditional(
                    self.client.complete_multipart_upload,
                    complete,
                    key,
                    own_etag=_multipart_etag(parts),
                )
        except BaseException:
            self._abort(key, upload_id)
            raise
        return size, digest.hexdigest()

    def _etag(self, key: str) -> str | None:
        try:
            return str(self._head(key).get("ETag", "")).strip('"') or None
        except ObjectNotFound:
            return None

    def _upload_part(
        self, key: str, upload_id: str, number: int, data: bytearray
    ) -> dict[str, Any]:
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ContentLength=len(data),
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:  # cleanup_stale will get it later
            log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, exc)

    def __str__(self) -> str:
        return self.description


def _multipart_etag(parts: list[dict[str, Any]]) -> str:
    """The ETag S3 (and MinIO, moto) give a multipart object: MD5 of the part MD5s, "-N"."""
    try:
        md5s = b"".join(bytes.fromhex(str(part["ETag"]).strip('"')) for part in parts)
    except ValueError:  # not MD5-based (e.g. SSE-KMS): no way to recognise our own write
        return ""
    return f"{hashlib.md5(md5s, usedforsecurity=False).hexdigest()}-{len(parts)}"


def _iter_body(body: Any, chunk_size: int) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(chunk_size)
    finally:
        body.close()
