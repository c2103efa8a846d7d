"""Preview and thumbnail JPEGs, and the perceptual hash, of an accepted original.

Renditions are what coordinators, handlers and — through case exports — the public see, so
they carry no EXIF, XMP or comments (no GPS position, no device serial); only the colour
profile survives, because without it a Display-P3 phone photo looks washed out. They are
derived data: the original stays the evidence and renditions can always be made again.

Speed matters because every photo gets both. CPU time per 4000 × 3000 JPEG on the 2-core
development VM (``python -m backend.media.bench`` times these against the naive way):

* Decode. libjpeg-turbo's scaled inverse DCTs decode straight to M/8 of the size. Pillow's
  ``draft`` offers 1/8, 1/4 and 1/2; 1/4 of 4000 px is too small for the 1280 px preview and
  1/2 is 2000 × 1500, so :func:`_draft` asks for 3/8 (1500 × 1125): its IDCT is a little
  dearer, but 44% fewer pixels are resized, ~4.5 ms less per photo than 1/2.
* Resize. BICUBIC, ~16 ms from 1500 × 1125 to 1280 × 960: the cheapest Pillow filter whose
  preview stays >= 40 dB PSNR from a Lanczos resize of the fully decoded photo on photo-like
  images (40.6-45.3 dB). At this small ratio BOX (8 ms) gives 32-36 dB and BILINEAR (11 ms)
  35-41 dB. Other formats are decoded in full, whole pixel blocks are averaged (``reduce``)
  down to 1.5-3 times the target, and BICUBIC does the rest (41-46 dB).
* Thumbnail. Made from the preview, not the original: 4 × 4 area averages, 0.6 ms.
* Encode. Baseline, standard Huffman tables, 4:2:0 chroma: 3 ms for the preview. Progressive
  coding took 15-17 ms for a 6-7% smaller file; optimised Huffman tables 6-7 ms for 1.5%.
* The floor. The entropy decoding of the whole file cannot be skipped by any reduced decode:
  ~20 ms for a 2.7 MB phone-like JPEG, ~24 ms for 3.4 MB, ~34 ms for 4.2 MB of pure noise;
  the 3/8 IDCT and colour conversion add ~8 ms. In all, 47-57 ms for a 2.7-3.7 MB photo
  (the naive way, full decode and two BICUBIC resizes: 170-230 ms; the full decode alone is
  50-70 ms). 30 ms is out of reach for such files: decoding alone is 28-35 ms, and Pillow's
  resize has no SIMD (pillow-simd's BICUBIC takes 2 ms, not 16).
* Memory. A process whose malloc has not yet freed a bigger buffer gives the ~17 MB of image
  buffers back to the system after every call and page-faults them in again next time
  (~4,000 faults, 6-9 ms of system time per photo here); ``MALLOC_TOP_PAD_=33554432`` in the
  worker's environment keeps them.

The perceptual hash is computed on the thumbnail image before it is encoded, so
:func:`perceptual_hash` on a path and :attr:`Renditions.phash` agree bit for bit — a hash
is only comparable with hashes made by the same pipeline (those of the earlier pipeline,
BOX from a 1/2-scale decode, differ by 0-2 bits on photographs).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Final

import imagehash
from PIL import Image, ImageFile, features

from backend.media.inspect import (
    DEFAULT_MAX_PIXELS,
    is_heif,
    open_photo,
    read_exif,
    sniff,
)

__all__ = [
    "PREVIEW_MAX_SIDE",
    "THUMBNAIL_MAX_SIDE",
    "Renditions",
    "decode_upright",
    "hamming",
    "make_renditions",
    "perceptual_hash",
    "phash_bands",
]

PREVIEW_MAX_SIDE: Final = 1280
THUMBNAIL_MAX_SIDE: Final = 320
PREVIEW_QUALITY: Final = 82
THUMBNAIL_QUALITY: Final = 75
_MAX_ICC_BYTES: Final = 65_000  # one APP2 segment; bigger profiles are dropped, not split
_MASK64: Final = (1 << 64) - 1
# The preview's filter: the cheapest of Pillow's that stays >= 40 dB from a Lanczos resize of
# the full picture on photographs (BOX and BILINEAR/HAMMING fall to 32-40 dB; see above).
_PREVIEW_FILTER: Final = Image.Resampling.BICUBIC
# Above this ratio, whole blocks are averaged first (Image.reduce) and BICUBIC does the rest.
_REDUCING_GAP: Final = 1.5
# libjpeg-turbo's scaled inverse DCTs decode at any M/8; libjpeg 6b/8/9 round 1/3 to 1/2.
_DCT_3_8: Final = bool(features.check_feature("libjpeg_turbo"))

# EXIF Orientation -> the transposition that makes the picture upright (the same table as
# PIL.ImageOps.exif_transpose; applied to the small image, after resizing, because it is
# cheaper there and commutes with fitting into a square box).
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True, slots=True)
class Renditions:
    """Two JPEGs (no metadata but the colour profile) and the 64-bit pHash of the picture."""

    preview: bytes
    preview_size: tuple[int, int]
    thumbnail: bytes
    thumbnail_size: tuple[int, int]
    phash: int
    content_type: str = "image/jpeg"


def make_renditions(
    path: str | os.PathLike[str],
    content_type: str,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Renditions:
    """The upright preview (longer side 1280 px) and thumbnail (320 px), never upscaled."""
    preview = decode_upright(path, content_type, PREVIEW_MAX_SIDE, max_pixels=max_pixels)
    thumbnail = _thumbnail(preview)
    return Renditions(
        preview=_jpeg(preview, PREVIEW_QUALITY),
        preview_size=preview.size,
        thumbnail=_jpeg(thumbnail, THUMBNAIL_QUALITY),
        thumbnail_size=thumbnail.size,
        phash=_phash(thumbnail),
    )


def decode_upright(
    path: str | os.PathLike[str],
    content_type: str,
    max_side: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """The picture as displayed, fitted into ``max_side`` × ``max_side``, in RGB or L.

    Its ``info`` holds at most the ICC profile: nothing else may leak into a rendition.
    """
    with open_photo(path, content_type, max_pixels=max_pixels) as img:
        target = _fit_size(img.size, max_side)
        if img.format in ("JPEG", "MPO") and isinstance(img, ImageFile.ImageFile):
            _draft(img, target)
        img.load()
        exif = read_exif(img, content_type)
        icc = img.info.get("icc_profile")
        picture = _resize(_display_mode(img), target)
        if picture is img:
            picture = img.copy()  # closing the file would take the pixels with it
    upright = None if is_heif(content_type) else _UPRIGHT.get(exif.orientation or 1)
    if upright is not None:
        picture = picture.transpose(upright)
    picture.info = {}
    if isinstance(icc, bytes) and 0 < len(icc) <= _MAX_ICC_BYTES:
        picture.info["icc_profile"] = icc
    return picture


def perceptual_hash(source: str | os.PathLike[str] | Image.Image) -> int:
    """The 64-bit pHash (imagehash, DCT of a 32×32 grey image) as an unsigned int.

    For a path, the picture goes through exactly the rendition pipeline (upright, fitted to
    the preview, then to the thumbnail) and the result equals :attr:`Renditions.phash`;
    prefer that attribute, which costs nothing extra. For an image, it is hashed as given
    (make it upright first; hashes of different pipelines may differ by a bit or two).
    """
    if isinstance(source, Image.Image):
        return _phash(source)
    preview = decode_upright(source, sniff(source), PREVIEW_MAX_SIDE)
    return _phash(_thumbnail(preview))


def hamming(a: int, b: int) -> int:
    """Differing bits of two 64-bit hashes (signed storage, as in a BIGINT column, is fine)."""
    return ((a ^ b) & _MASK64).bit_count()


def phash_bands(h: int) -> tuple[int, int, int, int]:
    """The hash cut into four 16-bit bands, most significant first, for an indexed lookup.

    Pigeonhole: hashes within Hamming distance d differ in at most d bands, so for d <= 3 at
    least one of the four bands is equal. Looking up candidates by "any band equal" (four
    indexed equality lookups) and then checking :func:`hamming` finds *every* near-duplicate
    within 3 bits without a full scan; at distance 4 or more it may miss some.
    """
    h &= _MASK64
    return (h >> 48) & 0xFFFF, (h >> 32) & 0xFFFF, (h >> 16) & 0xFFFF, h & 0xFFFF


def _phash(img: Image.Image) -> int:
    return int(str(imagehash.phash(img)), 16)


def _fit_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _draft(img: ImageFile.ImageFile, target: tuple[int, int]) -> None:
    """Have libjpeg decode at the smallest DCT scale whose output still covers ``target``.

    Pillow's ``draft`` offers 1/2, 1/4 and 1/8. For a 12-megapixel photo that is 1/2 (2000 ×
    1500 for a 1280 × 960 preview), but libjpeg-turbo can also decode at 3/8 (1500 × 1125):
    asked for 1/3 it rounds up to the next M/8. That makes the decode output, and the resize
    after it, 44% smaller. Pillow's ``draft`` does the bookkeeping for 1/2; this narrows it to
    3/8 with the same formula libjpeg-turbo uses (``ceil(side * 3 / 8)``), so the decoder
    writes exactly the rows and columns allocated for it. Anything unexpected (another JPEG
    library, a Pillow that lays the tile out differently) keeps Pillow's own choice.
    """
    width, height = img.size
    img.draft("RGB", target)
    if not _DCT_3_8 or len(img.tile) != 1 or img.decoderconfig != (2, 0):
        return
    tile = img.tile[0]
    narrow = (-(-width * 3 // 8), -(-height * 3 // 8))
    if narrow[0] < target[0] or narrow[1] < target[1]:
        return
    if getattr(tile, "extents", None) != (0, 0, *img.size):  # not the tile Pillow 11+ makes
        return
    img.tile = [tile._replace(extents=(0, 0, *narrow))]
    img._size = narrow
    img.decoderconfig = (3, 0)  # scale_denom 3: libjpeg-turbo picks M = ceil(8 / 3) = 3


def _thumbnail(preview: Image.Image) -> Image.Image:
    """The thumbnail: area averages of the preview (Image.reduce when the ratio is whole)."""
    size = _fit_size(preview.size, THUMBNAIL_MAX_SIDE)
    factor = preview.width // size[0]
    if size == preview.size:
        return preview
    if (size[0] * factor, size[1] * factor) == preview.size:
        thumbnail = preview.reduce(factor)  # 1280 × 960 -> 320 × 240: 4 × 4 pixel blocks
    else:
        thumbnail = preview.resize(size, Image.Resampling.BOX)
    thumbnail.info = dict(preview.info)
    return thumbnail


def _resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    return img.resize(size, _PREVIEW_FILTER, reducing_gap=_REDUCING_GAP)


def _display_mode(img: Image.Image) -> Image.Image:
    """RGB or L, what a JPEG can hold: alpha over white, 16-bit grey scaled to 8 bits."""
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode == "1":
        return img.convert("L")
    if "A" in img.getbands() or "transparency" in img.info:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        return white.convert("RGB")
    return img.convert("RGB")


def _jpeg(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # Only the ICC profile is passed on; EXIF/XMP are not copied by Pillow unless given, and
    # the comment it would copy from ``info`` was cleared in decode_upright.
    icc = img.info.get("icc_profile")
    extra = {"icc_profile": icc} if icc else {}
    # Baseline, Huffman tables not optimised, 4:2:0 (libjpeg's default): progressive coding
    # would make the preview ~7% smaller but costs 5x as much CPU (15 ms instead of 3 ms).
    img.save(out, "JPEG", quality=quality, **extra)
    return out.getvalue()
