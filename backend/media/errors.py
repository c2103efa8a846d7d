"""Errors of the media domain (stable codes; docs/api-errors.md)."""

from backend.core.errors import Conflict, NotFound, PayloadTooLarge, XunchaError


class PhotoNotDeclared(NotFound):
    code = "photo_not_declared"
    title = "No report of yours declares this photo"


class PhotoDeclarationMismatch(Conflict):
    code = "photo_declaration_mismatch"
    title = "The upload does not match what the report declared"


class PhotoHashMismatch(Conflict):
    code = "photo_hash_mismatch"
    title = "The bytes received do not have the declared SHA-256"


class PhotoTooBig(PayloadTooLarge):
    code = "photo_too_large"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class UploadOffsetMismatch(Conflict):
    code = "upload_offset_mismatch"
    title = "Upload-Offset does not match the upload's current offset"


class UploadGone(XunchaError):
    status = 410
    code = "upload_gone"
    title = "The upload expired or was terminated"


class UploadChecksumMismatch(XunchaError):
    status = 460  # tus checksum extension
    code = "upload_checksum_mismatch"
    title = "Upload-Checksum does not match the chunk"


class DirectUploadMissing(Conflict):
    code = "direct_upload_missing"
    title = "Nothing was uploaded to the target yet"


class TusVersionUnsupported(XunchaError):
    status = 412
    code = "tus_version_unsupported"
    title = "Only tus 1.0.0 is supported"
