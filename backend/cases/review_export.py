"""The case export as streamed GeoJSON: Points in WGS-84 lon/lat, one case per feature."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from backend.cases.review import summary

CHUNK_FEATURES = 500


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):  # UTC from the column type; 'Z' like the JSON API
        return value.isoformat().replace("+00:00", "Z")
    return value


def feature(row: Row[Any], now: datetime) -> dict[str, Any]:
    props = {k: _json_value(v) for k, v in summary(row, now).items()}
    lon, lat = round(props.pop("lon"), 7), round(props.pop("lat"), 7)
    return {
        "type": "Feature",
        "id": props["id"],
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": props,
    }


def geojson_chunks(rows: Iterable[Row[Any]], now: datetime) -> Iterator[bytes]:
    """A FeatureCollection, a few hundred features per chunk (never the whole in memory)."""
    yield b'{"type":"FeatureCollection","features":['
    batch: list[str] = []
    first = True
    for row in rows:
        batch.append(json.dumps(feature(row, now), ensure_ascii=False, separators=(",", ":")))
        if len(batch) >= CHUNK_FEATURES:
            yield (("" if first else ",") + ",".join(batch)).encode()
            batch, first = [], False
    if batch:
        yield (("" if first else ",") + ",".join(batch)).encode()
    yield b"]}\n"
