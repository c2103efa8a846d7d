"""Micro-benchmark of the image core (not a test): ``python -m backend.media.bench``.

CPU time (``time.process_time``, all threads), median of ``--rounds`` runs, on a synthetic
4000×3000 "photo" — a colour gradient with Gaussian noise, JPEG quality 90 — whose noise
level sets how compressible it is, and so how long the entropy decoding takes (about 4 MB
at the default, like a 12-megapixel phone JPEG).
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
from PIL import Image

from backend.media.inspect import inspect_photo
from backend.media.renditions import make_renditions, perceptual_hash


def synthetic_photo(width: int, height: int, noise: float, seed: int = 12) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.ogrid[0:height, 0:width]
    gradients = [x / width * 255, y / height * 255, (x + y) / (width + height) * 255]
    arr = np.empty((height, width, 3), np.uint8)
    for i, gradient in enumerate(gradients):
        noisy = gradient + rng.normal(0, noise, (height, width)).astype(np.float32)
        arr[..., i] = np.clip(noisy, 0, 255)
    return Image.fromarray(arr)


def cpu_ms(fn: Callable[[], object], rounds: int) -> float:
    fn()  # warm caches and lazy imports
    times = []
    for _ in range(rounds):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000


def report(path: Path, content_type: str, rounds: int) -> None:
    size = path.stat().st_size / 1e6

    def full_decode() -> None:
        with Image.open(path) as im:
            im.load()

    print(f"{content_type}, {size:.2f} MB")
    for name, fn in {
        "reference: full decode": full_decode,
        "make_renditions": lambda: make_renditions(path, content_type),
        "inspect_photo": lambda: inspect_photo(path),
        "perceptual_hash(path)": lambda: perceptual_hash(path),
    }.items():
        print(f"  {name:<24} {cpu_ms(fn, rounds):7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--noise", type=float, nargs="+", default=[12.0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--heic", action="store_true", help="also time a HEIC of the same")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for noise in args.noise:
            img = synthetic_photo(4000, 3000, noise)
            print(f"4000x3000, noise sigma {noise}:")
            jpeg = Path(tmp) / f"photo-{noise}.jpg"
            img.save(jpeg, "JPEG", quality=90)
            report(jpeg, "image/jpeg", args.rounds)
            if args.heic:
                heic = Path(tmp) / f"photo-{noise}.heic"
                buffer = io.BytesIO()
                img.save(buffer, "HEIF", quality=50)
                heic.write_bytes(buffer.getvalue())
                report(heic, "image/heic", max(3, args.rounds // 5))


if __name__ == "__main__":
    main()
