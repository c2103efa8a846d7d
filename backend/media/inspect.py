"""Validate an uploaded original and read what it says about itself.

The original photo is the evidence, so it is kept byte for byte — but only once it has been
shown to be what it claims: one of the four image types phones produce, a complete image
that decodes to the end, of a sane size. Nothing the client said about the file (headers,
names, the declared content type) is trusted; the type comes from the magic bytes and the
decoder is then restricted to exactly that type, so a polyglot file is judged as the type
its first bytes declare and must decode completely as that type (bytes after the end of the
image, like the MP4 of a "motion photo" or an appended ZIP, are ignored, as every viewer
does).

Refusals are cheap and bounded: the pixel count is checked from the header before anything
is decoded (a 30,000 × 30,000 PNG bomb costs a few hundred bytes of reading), and whether
the file is complete is judged from its structure (:mod:`backend.media.structure`: markers
and scans to the end-of-image marker, chunk CRCs, container sizes) in about a millisecond,
not by decoding it — on the upload path that would cost 20–35 ms of CPU per 12-megapixel
JPEG and ~300 ms per HEIC. ``decode=True`` also decodes (a JPEG at 1/8 scale: the whole
entropy-coded stream is still read); the worker decodes every photo anyway for its
renditions and flags one that fails there. One gap remains either way: libjpeg treats scan
data that stops early *at an end-of-image marker* as a warning and fills the rest with
grey, so a JPEG cut short and then re-terminated is accepted (the grey band is visible in
every rendition). A file that simply stops — an interrupted upload — is refused.

Metadata is read with :mod:`backend.media.exif`, which never fails: bad EXIF makes fields
missing, never the upload.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Final, Literal, get_args

import pillow_heif
from PIL import Image

from backend.core.errors import InvalidInput, UnsupportedMediaType
from backend.media.exif import ExifData, parse_exif
from backend.media.structure import Incomplete, check_complete, png_exif

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ContentType",
    "PhotoCorrupt",
    "PhotoInfo",
    "PhotoTooLarge",
    "PhotoTypeUnsupported",
    "decode_errors",
    "inspect_photo",
    "is_heif",
    "open_photo",
    "read_exif",
    "sniff",
    "sniff_bytes",
]

log = logging.getLogger(__name__)

# Once per process: Pillow opens HEIC/HEIF through pillow-heif (format id "HEIF").
pillow_heif.register_heif_opener()

ContentType = Literal["image/jpeg", "image/heic", "image/heif", "image/png", "image/webp"]
CONTENT_TYPES: Final = frozenset(get_args(ContentType))
DEFAULT_MAX_PIXELS: Final = 60_000_000
SNIFF_BYTES: Final = 1024  # enough for any real ftyp box's brand list

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_AV1_BRANDS = {b"avif", b"avis"}  # AVIF shares HEIF's container but not its codec
# Content type -> (the one Pillow plugin allowed to open it, formats it may report).
_PLUGIN: Final[dict[str, tuple[str, frozenset[str]]]] = {
    "image/jpeg": ("JPEG", frozenset({"JPEG", "MPO"})),  # MPO: JPEG + depth/gain-map frames
    "image/png": ("PNG", frozenset({"PNG"})),
    "image/webp": ("WEBP", frozenset({"WEBP"})),
    "image/heic": ("HEIF", frozenset({"HEIF"})),
    "image/heif": ("HEIF", frozenset({"HEIF"})),
}
# What decoders raise on damaged or hostile input. Errors of this service (XunchaError) are
# deliberately not in the list; MemoryError is not either: that is a server problem.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    RuntimeError,
)


class PhotoTypeUnsupported(UnsupportedMediaType):
    """The bytes are not JPEG, HEIC/HEIF, PNG or WebP (whatever the header or name said)."""

    code = "photo_type_unsupported"
    title = "The photo is not a JPEG, HEIC/HEIF, PNG or WebP image"


class PhotoTooLarge(InvalidInput):
    """More pixels than allowed: a decompression bomb or an absurd camera, refused unread."""

    code = "photo_too_many_pixels"
    title = "The photo has too many pixels"


class PhotoCorrupt(InvalidInput):
    """The image does not decode completely and consistently (truncated, damaged, forged)."""

    code = "photo_corrupt"
    title = "The photo is damaged or incomplete"


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What an accepted original is.

    ``width`` and ``height`` are as displayed, i.e. with the orientation applied (a portrait
    photo is taller than wide whether the camera rotated the pixels or only wrote
    Orientation=6), so they match the renditions.
    """

    content_type: ContentType
    width: int
    height: int
    exif: ExifData


def sniff_bytes(head: bytes) -> ContentType:
    """The content type from a file's first bytes (:data:`SNIFF_BYTES` are enough)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(_PNG_SIGNATURE):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    found = _iso_bmff(head)
    if found is not None:
        return found
    raise PhotoTypeUnsupported("the file is not a JPEG, HEIC/HEIF, PNG or WebP image")


def sniff(path: str | os.PathLike[str]) -> ContentType:
    """The content type of the file at ``path``, from its magic bytes only."""
    with open(path, "rb") as handle:
        return sniff_bytes(handle.read(SNIFF_BYTES))


def _iso_bmff(head: bytes) -> ContentType | None:
    """HEIC/HEIF from the ``ftyp`` box: the major brand decides, compatible brands refine.

    iPhones write major ``heic``; some Android phones write major ``mif1`` and list ``heic``
    among the compatible brands, which is still HEVC-coded HEIC. A ``mif1`` file listing an
    AV1 brand is AVIF, which is not accepted.
    """
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    size, start = int.from_bytes(head[:4], "big"), 8
    if size == 1:  # 64-bit box size follows the type
        size, start = int.from_bytes(head[8:16], "big"), 16
    if size < start + 8:
        return None
    major = head[start : start + 4]
    end = min(size, len(head))
    compatible = {head[i : i + 4] for i in range(start + 8, end - 3, 4)}
    if major in _HEIC_BRANDS:
        return "image/heic"
    if major in _HEIF_BRANDS and not compatible & _AV1_BRANDS:
        return "image/heic" if compatible & _HEIC_BRANDS else "image/heif"
    return None


def is_heif(content_type: str) -> bool:
    """HEIC/HEIF decoders apply the container's rotation themselves (EXIF must not re-apply)."""
    return content_type in ("image/heic", "image/heif")


@contextmanager
def decode_errors() -> Iterator[None]:
    """Turn whatever a decoder raises on hostile input into this module's 4xx errors."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (2× MAX_IMAGE_PIXELS, or 1× when warnings are errors).
        raise PhotoTooLarge("the photo has too many pixels to be decoded safely") from exc
    except _DECODE_ERRORS as exc:
        # The decoder's message may name temp files; it goes to the log, not to the client.
        log.info("photo does not decode: %s: %s", type(exc).__name__, exc)
        raise PhotoCorrupt("the photo is truncated or damaged and does not decode") from exc


@contextmanager
def open_photo(
    path: str | os.PathLike[str],
    content_type: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[Image.Image]:
    """Open with the one plugin for ``content_type``, refusing too many pixels before decoding.

    Only the header has been read when this yields; the caller decodes (inside
    :func:`decode_errors`, which this also wraps around its own body).
    """
    if content_type not in _PLUGIN:
        raise PhotoTypeUnsupported(f"{content_type!r} is not a photo type this service accepts")
    plugin, reported = _PLUGIN[content_type]
    with decode_errors(), Image.open(path, formats=[plugin]) as img:
        if img.format not in reported:
            raise PhotoCorrupt(f"the photo is not a consistent {content_type} image")
        width, height = img.size
        if width <= 0 or height <= 0:
            raise PhotoCorrupt("the photo has no pixels")
        if width * height > max_pixels:
            raise PhotoTooLarge(
                f"the photo has {width * height} pixels; at most {max_pixels} are accepted",
                width=width,
                height=height,
                max_pixels=max_pixels,
            )
        yield img


def read_exif(img: Image.Image, content_type: str) -> ExifData:
    """The EXIF of an opened (for PNG: loaded — eXIf may follow the pixels) image."""
    raw = img.info.get("exif")
    exif = parse_exif(raw if isinstance(raw, bytes) else None)
    if is_heif(content_type):
        # pillow-heif rewrites EXIF Orientation to 1 (libheif already rotated the pixels by
        # the container's irot/imir) and keeps the camera's value here; record that one.
        original = img.info.get("original_orientation")
        if isinstance(original, int) and 1 <= original <= 8:
            exif = replace(exif, orientation=original)
    return exif


def inspect_photo(
    path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = False
) -> PhotoInfo:
    """Check that ``path`` is a complete photo of an accepted type and read its metadata.

    Raises :class:`PhotoTypeUnsupported` (415), :class:`PhotoTooLarge` or
    :class:`PhotoCorrupt` (422). The structure check maps the file; the decoders read it
    (pillow-heif and libwebp take the whole file in memory: bounded by the upload size
    limit).
    """
    content_type = sniff(path)
    try:
        check_complete(path, content_type)
    except Incomplete as exc:
        raise PhotoCorrupt(f"the photo is truncated or damaged: {exc}") from None
    with open_photo(path, content_type, max_pixels=max_pixels) as img:
        width, height = img.size
        if decode:
            if img.format in ("JPEG", "MPO"):
                img.draft(None, (1, 1))  # 1/8 scale: every coefficient is still decoded
            expected = img.size
            img.load()
            if img.size != expected or img.size[0] * img.size[1] > max_pixels:
                # pillow-heif lets decoding change the size; an image that is not what its
                # header said is not evidence.
                raise PhotoCorrupt("the decoded photo does not match its header")
        exif = read_exif(img, content_type)
        if content_type == "image/png" and "exif" not in img.info:
            exif = parse_exif(png_exif(path))  # an eXIf chunk after the image data
    if not is_heif(content_type) and exif.orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoInfo(content_type, width, height, exif)
