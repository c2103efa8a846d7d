"""A synthetic demo city (演示区): a few thousand unit grids with a realistic hierarchy.

The grids are quadrilaterals on a jittered lattice, so neighbours share exact edges and the
set tiles without gaps or overlaps, like a well-made city grid file. The district code 990101
is deliberately not a real GB/T 2260 code.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DISTRICT_CODE = "990101"
DISTRICT_NAME = "演示区"
STREET_NAMES = ("东湖", "南山", "西园", "北塘", "青石", "柳岸", "桂花", "石桥")
COMMUNITY_NAMES = ("梧桐", "枫林", "银杏", "竹园", "荷花", "松柏", "海棠", "丁香", "玉兰")

# Lattice: 60 × 48 cells of ~100 m; streets are 15 × 24 blocks, communities 5 × 8 blocks.
COLS, ROWS = 60, 48
STREET_COLS, STREET_ROWS = 15, 24
COMMUNITY_COLS, COMMUNITY_ROWS = 5, 8
CELL_M = 100.0
JITTER_M = 12.0


@dataclass(frozen=True)
class DemoCity:
    origin_lon: float = 120.10
    origin_lat: float = 30.25
    seed: int = 20261123

    @property
    def grid_count(self) -> int:
        return COLS * ROWS

    def features(self) -> list[dict[str, Any]]:
        lattice = jittered_lattice(
            self.origin_lon, self.origin_lat, COLS, ROWS, CELL_M, JITTER_M, self.seed
        )
        return [self._feature(col, row, lattice) for row in range(ROWS) for col in range(COLS)]

    def write_geojson(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        collection = {"type": "FeatureCollection", "features": self.features()}
        path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
        return path

    def centre(self) -> tuple[float, float]:
        dlon, dlat = _degrees_per_metre(self.origin_lat)
        return (
            self.origin_lon + COLS * CELL_M / 2 * dlon,
            self.origin_lat + ROWS * CELL_M / 2 * dlat,
        )

    def _feature(self, col: int, row: int, lattice: Lattice) -> dict[str, Any]:
        street_index = (row // STREET_ROWS) * (COLS // STREET_COLS) + col // STREET_COLS
        local_col, local_row = col % STREET_COLS, row % STREET_ROWS
        community_index = (local_row // COMMUNITY_ROWS) * (
            STREET_COLS // COMMUNITY_COLS
        ) + local_col // COMMUNITY_COLS
        sequence = (local_row % COMMUNITY_ROWS) * COMMUNITY_COLS + local_col % COMMUNITY_COLS + 1
        street_name = f"{STREET_NAMES[street_index]}街道"
        community_name = f"{STREET_NAMES[street_index]}{COMMUNITY_NAMES[community_index]}社区"
        code = f"{DISTRICT_CODE}{street_index + 1:03d}{community_index + 1:03d}{sequence:02d}"
        ring = lattice_ring(lattice, col, row)
        return {
            "type": "Feature",
            "properties": {
                "网格编码": code,
                "网格名称": f"{community_name}第{sequence:02d}网格",
                "区": DISTRICT_NAME,
                "街道": street_name,
                "社区": community_name,
                "管控等级": _zone_tier(col, row),
            },
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }


Lattice = list[list[tuple[float, float]]]


def jittered_lattice(
    origin_lon: float,
    origin_lat: float,
    cols: int,
    rows: int,
    cell_m: float,
    jitter_m: float,
    seed: int,
) -> Lattice:
    """Vertices of a ``cols`` × ``rows`` lattice, interior vertices jittered by ``jitter_m``.

    Cells built from shared vertices tile exactly: every edge belongs to two neighbours.
    """
    rng = random.Random(seed)
    dlon, dlat = _degrees_per_metre(origin_lat)
    points = []
    for row in range(rows + 1):
        line = []
        for col in range(cols + 1):
            # Border vertices stay straight so the outline is a clean rectangle.
            jx = 0.0 if col in (0, cols) else rng.uniform(-jitter_m, jitter_m)
            jy = 0.0 if row in (0, rows) else rng.uniform(-jitter_m, jitter_m)
            line.append(
                (
                    round(origin_lon + (col * cell_m + jx) * dlon, 8),
                    round(origin_lat + (row * cell_m + jy) * dlat, 8),
                )
            )
        points.append(line)
    return points


def lattice_ring(lattice: Lattice, col: int, row: int) -> list[tuple[float, float]]:
    """The closed ring of cell (col, row), counter-clockwise."""
    return [
        lattice[row][col],
        lattice[row][col + 1],
        lattice[row + 1][col + 1],
        lattice[row + 1][col],
        lattice[row][col],
    ]


def _zone_tier(col: int, row: int) -> str:
    """Two main roads cross the city: strict along them, controlled beside them."""
    distance = min(abs(row - ROWS // 2), abs(col - COLS // 2))
    if distance == 0:
        return "严管"
    if distance <= 2:
        return "控制"
    return "一般"


def _degrees_per_metre(lat: float) -> tuple[float, float]:
    metres_per_degree_lat = 111_320.0
    return 1 / (metres_per_degree_lat * math.cos(math.radians(lat))), 1 / metres_per_degree_lat
