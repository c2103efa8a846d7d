"""Is the file complete? Container walks for the four photo types, without decoding pixels.

Uploads are checked on the request path, where decoding every photo would cost 20–35 ms of
CPU per 12-megapixel JPEG and ~300 ms per HEIC. What a client can get wrong — a cut-off
upload, a different file behind the right magic bytes, damaged bytes — shows in the file's
structure, which these walks read in about a millisecond:

* JPEG: every marker segment in order, each scan's entropy-coded data up to the next marker
  (found with one C-level regex search per scan, not a Python loop), up to the end-of-image
  marker, with at least one frame and one scan before it;
* PNG: every chunk's length and CRC-32 (so damaged compressed data is caught too), IHDR
  first, IDAT present, up to IEND;
* WebP: the RIFF size fits the file and its chunks tile it, with VP8/VP8L image data;
* HEIC/HEIF (ISO BMFF): top-level boxes tile the file, ``ftyp`` first, ``meta`` and ``mdat``
  present.

Bytes after the end of the image (motion photos' MP4, an appended archive) are ignored, as
every viewer ignores them. What these walks cannot see — compressed data that is internally
wrong but structurally intact — is found when the worker decodes the photo for its
renditions, and flagged there (``photo_undecodable``); the bytes are still exactly what the
phone declared.
"""

from __future__ import annotations

import mmap
import os
import re
import zlib
from typing import Final

__all__ = ["Incomplete", "check_complete", "png_exif"]

# After a scan's data: the first 0xFF not followed by a stuffed 0x00, a restart marker
# (0xD0-0xD7) or a fill byte (0xFF) starts the next marker.
_SCAN_END: Final = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_FRAMES: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


class Incomplete(ValueError):
    """The file is not a complete, intact image of its type (the message says why)."""


def check_complete(path: str | os.PathLike[str], content_type: str) -> None:
    """Raise :class:`Incomplete` unless the file is a complete ``content_type`` image."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            raise Incomplete("the photo is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            view = memoryview(data)
            try:
                if content_type == "image/jpeg":
                    _jpeg(data)
                elif content_type == "image/png":
                    _png(view)
                elif content_type == "image/webp":
                    _webp(view)
                else:
                    _iso_bmff(view)
            finally:
                view.release()


def png_exif(path: str | os.PathLike[str]) -> bytes | None:
    """The eXIf chunk's payload (it may follow the image data, where Pillow's open stops)."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)
        try:
            return _png(view)
        finally:
            view.release()


def _corrupt(why: str) -> Incomplete:
    return Incomplete(why)


def _jpeg(data: mmap.mmap) -> None:
    n = len(data)
    if data[:2] != b"\xff\xd8":
        raise _corrupt("no JPEG start-of-image marker")
    pos, frames, scans = 2, 0, 0
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise _corrupt("it ends before its end-of-image marker" if pos >= n else "bad marker")
        while pos < n and data[pos] == 0xFF:  # fill bytes may precede a marker
            pos += 1
        if pos >= n:
            raise _corrupt("it ends inside a marker")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            if not frames or not scans:
                raise _corrupt("it has no image data")
            return
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue  # standalone markers: no length
        if marker == 0x00 or pos + 2 > n:
            raise _corrupt("bad marker")
        length = int.from_bytes(data[pos : pos + 2], "big")
        if length < 2 or pos + length > n:
            raise _corrupt("a segment runs past the end of the file")
        frames += marker in _JPEG_FRAMES
        pos += length
        if marker == 0xDA:
            scans += 1
            found = _SCAN_END.search(data, pos)
            if found is None:
                raise _corrupt("the image data is cut off")
            pos = found.start()


def _png(view: memoryview) -> bytes | None:
    n = len(view)
    if bytes(view[:8]) != _PNG_SIGNATURE:
        raise _corrupt("no PNG signature")
    pos, first, has_data, exif = 8, True, False, None
    while True:
        if pos + 12 > n:
            raise _corrupt("it ends before its IEND chunk")
        length = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8])
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > n:
            raise _corrupt(f"the {kind!r} chunk runs past the end of the file")
        if zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            raise _corrupt(f"the {kind!r} chunk fails its CRC")
        if first and kind != b"IHDR":
            raise _corrupt("IHDR is not the first chunk")
        first = False
        has_data = has_data or kind == b"IDAT"
        if kind == b"eXIf" and exif is None:
            exif = bytes(view[pos + 8 : end - 4])
        if kind == b"IEND":
            if not has_data:
                raise _corrupt("it has no image data")
            return exif
        pos = end


def _webp(view: memoryview) -> None:
    n = len(view)
    if n < 12 or bytes(view[:4]) != b"RIFF" or bytes(view[8:12]) != b"WEBP":
        raise _corrupt("no RIFF/WEBP header")
    total = int.from_bytes(view[4:8], "little") + 8
    if total > n or total % 2:
        raise _corrupt("the RIFF container runs past the end of the file")
    pos, has_image = 12, False
    while pos < total:
        if pos + 8 > total:
            raise _corrupt("a chunk header is cut off")
        kind = bytes(view[pos : pos + 4])
        end = pos + 8 + int.from_bytes(view[pos + 4 : pos + 8], "little")
        end += end % 2  # chunks are padded to even sizes
        if end > total:
            raise _corrupt(f"the {kind!r} chunk runs past the end of the container")
        has_image = has_image or kind in (b"VP8 ", b"VP8L", b"ANMF")
        pos = end
    if not has_image:
        raise _corrupt("it has no image data")


def _iso_bmff(view: memoryview) -> None:
    n = len(view)
    pos, kinds = 0, []
    while pos < n:
        if pos + 8 > n:
            raise _corrupt("a box header is cut off")
        size = int.from_bytes(view[pos : pos + 4], "big")
        kind = bytes(view[pos + 4 : pos + 8])
        header = 8
        if size == 1:
            if pos + 16 > n:
                raise _corrupt("a box header is cut off")
            size, header = int.from_bytes(view[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = n - pos  # the last box runs to the end of the file
        if size < header or pos + size > n:
            raise _corrupt(f"the {kind!r} box runs past the end of the file")
        kinds.append(kind)
        pos += size
    if not kinds or kinds[0] != b"ftyp" or b"meta" not in kinds or b"mdat" not in kinds:
        raise _corrupt("it lacks its ftyp, meta or mdat box")
