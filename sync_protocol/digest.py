"""The scope digest of docs/sync-protocol.md section 5.

After a pull that brings the device fully up to date, the server sends a digest of everything
in the device's scope; the device compares it with a digest of what it holds. A mismatch means
the two have diverged (a bug, a restored backup, a lost tombstone) and the device resets
instead of drifting silently.

XOR of per-record hashes: independent of order, and the server can maintain it incrementally
(remove the old version's hash, add the new one). 128 bits keep accidental collisions out of
reach. XOR cancels pairs, so callers must add each (entity, id) at most once, which holds for a
set of records keyed by (entity, id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

EMPTY_DIGEST = "0" * 32


def record_hash(entity: str, id: str, version: int) -> int:
    """First 16 bytes of sha256("<entity>:<id>:<version>") (UTF-8), as a big-endian integer."""
    data = f"{entity}:{id}:{version}".encode()
    return int.from_bytes(hashlib.sha256(data).digest()[:16], "big")


class Digest:
    """A mutable accumulator: add and remove records in any order."""

    def __init__(self) -> None:
        self._value = 0
        self._count = 0

    def add(self, entity: str, id: str, version: int) -> None:
        self._value ^= record_hash(entity, id, version)
        self._count += 1

    def remove(self, entity: str, id: str, version: int) -> None:
        if self._count == 0:
            raise ValueError("remove from an empty digest")
        self._value ^= record_hash(entity, id, version)
        self._count -= 1

    def replace(self, entity: str, id: str, old_version: int, new_version: int) -> None:
        self.remove(entity, id, old_version)
        self.add(entity, id, new_version)

    @property
    def value(self) -> str:
        return f"{self._value:032x}"

    @property
    def count(self) -> int:
        return self._count


def digest_of(records: Iterable[tuple[str, str, int]]) -> tuple[str, int]:
    """(digest, record_count) of ``(entity, id, version)`` triples."""
    digest = Digest()
    for entity, id, version in records:
        digest.add(entity, id, version)
    return digest.value, digest.count
