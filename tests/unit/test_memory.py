"""The API worker caps glibc's malloc arenas (backend/core/memory.py)."""

from __future__ import annotations

import ctypes.util
import platform

import pytest

from backend.core.memory import limit_malloc_arenas
from backend.core.settings import load_settings


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_arenas_are_capped_on_glibc() -> None:
    assert ctypes.util.find_library("c")
    assert limit_malloc_arenas(2) is True


def test_zero_leaves_the_default_and_two_is_the_setting() -> None:
    assert limit_malloc_arenas(0) is False
    assert load_settings().malloc_arenas == 2
