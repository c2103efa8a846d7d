"""Keeping a worker's resident memory flat under many threads (glibc only).

glibc gives threads their own malloc arenas, up to 8 per core, and memory freed in one
arena is not reused by another: with 40 request threads a worker's RSS grew with
concurrency rather than with live data (docs/benchmarks.md). Two arenas keep the growth
down at little cost, as the GIL lets only one thread allocate at a time anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("xuncha.memory")
_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas for this process; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None or count <= 0:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS: no mallopt, nothing to do
        return False
    ok = bool(mallopt(ctypes.c_int(_M_ARENA_MAX), ctypes.c_int(count)))
    if not ok:
        log.warning("mallopt(M_ARENA_MAX, %s) refused", count)
    return ok
