"""The process's current :class:`GridIndex`, swapped atomically when the active version changes.

Each worker process keeps its own index. Before matching, callers ask for the index of the
version the database says is active (one indexed query per request), so an activation done by
another process or the CLI is picked up on the next request, never half-way through one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlalchemy.orm import Session

from backend.grids import repository
from backend.grids.matcher import GridIndex


class GridIndexRegistry:
    def __init__(self, tolerance_m: float) -> None:
        self.tolerance_m = tolerance_m
        # Two entries: the active version and one other (a version being inspected before
        # activation), so looking at a candidate never evicts the index every report needs.
        self._cache: OrderedDict[int, GridIndex] = OrderedDict()
        self._lock = threading.Lock()

    def for_version(self, session: Session, version_id: int) -> GridIndex:
        """The index for ``version_id``, built from the database if it is not cached."""
        cached = self._cache.get(version_id)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(version_id)
            if cached is not None:
                return cached
            codes, geoms = repository.load_cell_geometries(session, version_id)
            built = GridIndex(version_id, codes, geoms, tolerance_m=self.tolerance_m)
            # Readers get a finished index or none: it is published only once fully built.
            self._cache[version_id] = built
            while len(self._cache) > 2:
                self._cache.popitem(last=False)
            return built

    def cached_versions(self) -> list[int]:
        """Version ids whose index is built, least recently used first."""
        return list(self._cache)

    def active(self, session: Session) -> GridIndex | None:
        version_id = repository.active_version_id(session)
        if version_id is None:
            return None
        index = self.for_version(session, version_id)
        with self._lock:
            if version_id in self._cache:
                self._cache.move_to_end(version_id)
        return index
