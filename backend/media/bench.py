"""Micro-benchmark of the image core (not a test): ``python -m backend.media.bench``.

CPU time (``time.process_time``: all threads, user and system — page faults count), median of
``--rounds`` runs, for :func:`make_renditions` and, on the same file in the same run, the
naive way (full-size decode, ``exif_transpose``, Pillow's default BICUBIC resize of the full
picture to 1280 and to 320, both encoded), because the absolute figures depend on the image:
the entropy decoding that no reduced decode can skip grows with the file's size.

The images are synthetic, made here (nothing is downloaded), 4000 × 3000, JPEG quality 90:

* ``photo``: :func:`photo_like` — a scene with a natural (1/f) spectrum, hard edges, lens
  blur, phone-style sharpening and mild sensor noise: 2.7 MB (``detail`` 0.5) and 3.3 MB
  (``detail`` 1), the range of a real 12-megapixel phone JPEG;
* ``noisy``: :func:`synthetic_photo` — a colour gradient under Gaussian noise (sigma 12,
  4.2 MB). Pure noise is the worst case for the entropy decoder, not a photograph.

For each it also prints where the time goes (the floor — the whole file entropy-decoded at
1/8 scale, as :func:`inspect_photo` does — then the scaled decode, the resize and the
encoding) and the preview's PSNR against a Lanczos resize of the fully decoded picture,
before JPEG encoding.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from backend.media.inspect import inspect_photo
from backend.media.renditions import (
    PREVIEW_MAX_SIDE,
    THUMBNAIL_MAX_SIDE,
    _draft,
    decode_upright,
    make_renditions,
    perceptual_hash,
)


def synthetic_photo(width: int, height: int, noise: float, seed: int = 12) -> Image.Image:
    """A colour gradient with Gaussian noise: ``noise`` sets the size of the JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[0:height, 0:width]
    gradients = [x / width * 255, y / height * 255, (x + y) / (width + height) * 255]
    arr = np.empty((height, width, 3), np.uint8)
    for i, gradient in enumerate(gradients):
        noisy = gradient + rng.normal(0, noise, (height, width)).astype(np.float32)
        arr[..., i] = np.clip(noisy, 0, 255)
    return Image.fromarray(arr)


def _pink(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Noise with a 1/f amplitude spectrum, as natural scenes have; unit variance."""
    fy = np.fft.fftfreq(height).astype(np.float32)[:, None] * height
    fx = np.fft.rfftfreq(width).astype(np.float32)[None, :] * width
    amplitude = 1 / np.maximum(np.hypot(fx, fy * (width / height)), 2.0)
    spectrum = amplitude * (
        rng.standard_normal(amplitude.shape, np.float32)
        + 1j * rng.standard_normal(amplitude.shape, np.float32)
    )
    field: np.ndarray = np.fft.irfft2(spectrum, s=(height, width)).astype(np.float32)
    field /= field.std()
    return field


def photo_like(width: int, height: int, *, seed: int = 5, detail: float = 1.0) -> Image.Image:
    """A photograph-like RGB scene: 1/f texture, objects with hard edges, optics, noise.

    Luminance texture with the 1/f spectrum of natural images (``detail`` scales it: at
    4000 × 3000 and quality 90, 0.5 gives a 2.7 MB JPEG and 1 a 3.3 MB one), smoother colour,
    60 boxes, wires and rows of "windows", then a 1 px Gaussian blur (lens, demosaicing), an
    unsharp mask (the phone's sharpening) and sensor noise (sigma 1.5 luma, 0.75 chroma).
    """
    rng = np.random.default_rng(seed)
    lum = _pink(rng, height, width) * (40 * detail) + 120
    quarter = (max(1, height // 4), max(1, width // 4))
    cb, cr = (
        np.asarray(
            Image.fromarray(_pink(rng, *quarter), "F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        * scale
        for scale in (18, 14)
    )
    arr = np.stack([lum + cb, lum - 0.5 * cb + 0.3 * cr, lum - cr], -1)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    unit = max(width, height) / 4000
    for _ in range(60):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        colour = tuple(int(v) for v in rng.integers(20, 235, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            w, h = (int(v * unit) for v in rng.integers(50, 700, 2))
            draw.rectangle((x, y, x + w, y + h), fill=colour)
        elif kind == 1:
            dx, dy = int(rng.integers(-1500, 1500) * unit), int(rng.integers(-300, 300) * unit)
            thick = max(1, int(rng.integers(2, 12) * unit))
            draw.line(((x, y), (x + dx, y + dy)), fill=colour, width=thick)
        else:
            for i in range(12):
                left = x + int(i * 28 * unit)
                draw.rectangle((left, y, left + int(18 * unit), y + int(30 * unit)), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.0)).filter(ImageFilter.UnsharpMask(2, 60, 2))
    pixels = np.asarray(img, np.float32)
    pixels = pixels + rng.standard_normal((height, width, 1), np.float32) * 1.5
    pixels += rng.standard_normal((height, width, 3), np.float32) * 0.75
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def cpu_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches and lazy imports
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def psnr(a: Image.Image, b: Image.Image) -> float:
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    mse = max(float(np.mean(diff * diff)), 1e-12)
    return float(10 * np.log10(255**2 / mse))


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def naive(path: Path) -> tuple[bytes, bytes]:
    """What one would write first: decode everything, then resize twice with the default."""
    with Image.open(path) as im:
        im.load()
        upright = ImageOps.exif_transpose(im)
    out = []
    for side, quality in ((PREVIEW_MAX_SIDE, 82), (THUMBNAIL_MAX_SIDE, 75)):
        buffer = io.BytesIO()
        upright.resize(_fit(upright.size, side)).save(buffer, "JPEG", quality=quality)
        out.append(buffer.getvalue())
    return out[0], out[1]


def _jpeg_stages(path: Path, rounds: int) -> dict[str, float]:
    """Where make_renditions' time goes for a JPEG (each stage timed on its own)."""

    def decode(scale: int | None) -> Image.Image:
        with Image.open(path) as im:
            if scale is None:  # what make_renditions asks for
                _draft(im, _fit(im.size, PREVIEW_MAX_SIDE))
            else:
                im.draft("RGB", (im.width // scale, im.height // scale))
            im.load()
            return im.copy()

    decoded = decode(None)
    preview = decode_upright(path, "image/jpeg", PREVIEW_MAX_SIDE)

    def encode() -> None:
        make = io.BytesIO()
        preview.save(make, "JPEG", quality=82)

    return {
        f"floor: entropy decoding (1/8 scale, {decode(8).width} px wide)": cpu_ms(
            lambda: decode(8), rounds
        ),
        f"decode at {decoded.width} x {decoded.height}": cpu_ms(lambda: decode(None), rounds),
        f"resize to {preview.width} x {preview.height} (BICUBIC)": cpu_ms(
            lambda: decoded.resize(preview.size, Image.Resampling.BICUBIC), rounds
        ),
        "encode the preview (baseline q82)": cpu_ms(encode, rounds),
    }


def report(path: Path, content_type: str, rounds: int) -> None:
    size = path.stat().st_size / 1e6
    print(f"  {content_type}, {size:.2f} MB")
    timings = {
        "naive (full decode, BICUBIC x2)": lambda: naive(path),
        "make_renditions": lambda: make_renditions(path, content_type),
        "inspect_photo": lambda: inspect_photo(path),
        "perceptual_hash(path)": lambda: perceptual_hash(path),
    }
    for name, fn in timings.items():
        print(f"    {name:<52} {cpu_ms(fn, rounds):7.1f} ms")
    if content_type == "image/jpeg":
        for name, ms in _jpeg_stages(path, rounds).items():
            print(f"      {name:<50} {ms:7.1f} ms")
    with Image.open(path) as im:
        im.load()
        full = ImageOps.exif_transpose(im).convert("RGB")
    preview = decode_upright(path, content_type, PREVIEW_MAX_SIDE).convert("RGB")
    reference = full.resize(preview.size, Image.Resampling.LANCZOS)
    naive_preview = Image.open(io.BytesIO(naive(path)[0])).convert("RGB")
    ours = Image.open(io.BytesIO(make_renditions(path, content_type).preview)).convert("RGB")
    print(
        f"    preview vs Lanczos of the full picture: {psnr(preview, reference):.1f} dB"
        f" (after JPEG q82: ours {psnr(ours, reference):.1f} dB,"
        f" naive {psnr(naive_preview, reference):.1f} dB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detail", type=float, nargs="*", default=[0.5, 1.0])
    parser.add_argument("--noise", type=float, nargs="*", default=[12.0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--heic", action="store_true", help="also time a HEIC of the same")
    args = parser.parse_args()
    images = [(f"photo-like, detail {d}", photo_like(4000, 3000, detail=d)) for d in args.detail]
    images += [(f"noise sigma {n}", synthetic_photo(4000, 3000, n)) for n in args.noise]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, img) in enumerate(images):
            print(f"4000x3000, {name}:")
            jpeg = Path(tmp) / f"{i}.jpg"
            img.save(jpeg, "JPEG", quality=90)
            report(jpeg, "image/jpeg", args.rounds)
            if args.heic:
                heic = Path(tmp) / f"{i}.heic"
                buffer = io.BytesIO()
                img.save(buffer, "HEIF", quality=50)
                heic.write_bytes(buffer.getvalue())
                report(heic, "image/heic", max(3, args.rounds // 5))


if __name__ == "__main__":
    main()
