"""From a grid file's attribute table to our grid fields.

Real files name their columns in many ways (``code``, ``WGBM``, ``网格编码`` ...). Known aliases
are recognised case-insensitively; ``field_map`` (``--field code=WGBM`` on the CLI) overrides
them. Values are validated here, feature by feature, and every problem is collected so a user
fixes a file in one round instead of one error at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.grids.codes import GridCodeScheme
from backend.grids.models import ZoneTier

FIELDS = (
    "code",
    "name",
    "district_code",
    "street_code",
    "community_code",
    "district_name",
    "street_name",
    "community_name",
    "zone_tier",
)

ALIASES: dict[str, tuple[str, ...]] = {
    "code": (
        "code",
        "grid_code",
        "gridcode",
        "grid_id",
        "wgbm",
        "wgdm",
        "网格编码",
        "网格代码",
        "编码",
    ),
    "name": ("name", "grid_name", "gridname", "wgmc", "网格名称", "名称"),
    "district_code": ("district_code", "qxdm", "区县代码", "区代码"),
    "street_code": ("street_code", "jddm", "街道代码", "乡镇代码"),
    "community_code": ("community_code", "sqdm", "社区代码", "村代码"),
    "district_name": ("district", "district_name", "qxmc", "区县", "区", "区名"),
    "street_name": ("street", "street_name", "jdmc", "街道", "街道名称", "乡镇"),
    "community_name": ("community", "community_name", "sqmc", "社区", "社区名称", "村"),
    "zone_tier": ("zone_tier", "zone", "tier", "gkdj", "管控等级", "分区", "区域等级"),
}

_ZONE_TIER_WORDS = {
    "strict": ZoneTier.strict,
    "严管": ZoneTier.strict,
    "严管区": ZoneTier.strict,
    "controlled": ZoneTier.controlled,
    "控制": ZoneTier.controlled,
    "控制区": ZoneTier.controlled,
    "general": ZoneTier.general,
    "一般": ZoneTier.general,
    "一般区": ZoneTier.general,
}

MAX_PROBLEMS = 200
# Column widths of grid_cells (backend/grids/models.py): longer values are refused here, with
# the feature named, instead of failing the database write.
MAX_LENGTHS = {
    "code": 40,
    "name": 200,
    "district_code": 40,
    "street_code": 40,
    "community_code": 40,
    "district_name": 200,
    "street_name": 200,
    "community_name": 200,
}


@dataclass(frozen=True)
class FeatureProblem:
    """One thing wrong with one feature (or with the file as a whole: ``feature`` is None)."""

    code: str
    message: str
    feature: int | None = None
    grid_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class MappedGrid:
    feature: int
    code: str
    name: str
    district_code: str
    street_code: str
    community_code: str
    district_name: str | None
    street_name: str | None
    community_name: str | None
    zone_tier: ZoneTier | None
    extra: dict[str, Any]


@dataclass
class MappingResult:
    grids: list[MappedGrid] = field(default_factory=list)
    problems: list[FeatureProblem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)  # our field -> source column


class UnknownFieldName(ValueError):
    pass


def resolve_columns(columns: Iterable[str], field_map: Mapping[str, str]) -> dict[str, str]:
    """Which source column feeds each of our fields; explicit mappings win over aliases."""
    unknown = sorted(set(field_map) - set(FIELDS))
    if unknown:
        raise UnknownFieldName(
            f"unknown grid field(s) {', '.join(unknown)}; known: {', '.join(FIELDS)}"
        )
    available = list(columns)
    by_lower = {c.strip().lower(): c for c in available}
    resolved: dict[str, str] = {}
    for ours in FIELDS:
        if ours in field_map:
            resolved[ours] = field_map[ours]
            continue
        for alias in ALIASES[ours]:
            if alias in by_lower:
                resolved[ours] = by_lower[alias]
                break
    return resolved


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # shapefile numeric codes come back as 3.1010100100207e+13 floats
    text = str(value).strip()
    return text or None


def map_features(
    features: Iterable[tuple[int, Mapping[str, Any]]],
    columns: Iterable[str],
    field_map: Mapping[str, str],
    scheme: GridCodeScheme,
) -> MappingResult:
    """Validate and map every feature's attributes; geometry is handled elsewhere."""
    result = MappingResult()
    result.columns = resolve_columns(columns, field_map)
    if "code" not in result.columns:
        result.problems.append(
            FeatureProblem(
                "missing_field",
                "no grid code column found; name it with a field mapping such as code=WGBM "
                f"(columns in the file: {', '.join(columns) or 'none'})",
            )
        )
        return result
    missing_mapped = [f"{ours}={src}" for ours, src in result.columns.items() if src not in columns]
    if missing_mapped:
        result.problems.append(
            FeatureProblem(
                "missing_field", f"mapped column(s) not in file: {', '.join(missing_mapped)}"
            )
        )
        return result
    seen_codes: dict[str, int] = {}
    for index, props in features:
        mapped = _map_one(index, props, result.columns, scheme, result.problems)
        if mapped is None:
            continue
        if mapped.code in seen_codes:
            result.problems.append(
                FeatureProblem(
                    "duplicate_grid_code",
                    f"grid code {mapped.code} also used by feature {seen_codes[mapped.code]}",
                    index,
                    mapped.code,
                )
            )
            continue
        seen_codes[mapped.code] = index
        result.grids.append(mapped)
        if len(result.problems) >= MAX_PROBLEMS:
            break
    result.problems.extend(_hierarchy_name_conflicts(result.grids))
    return result


def _map_one(
    index: int,
    props: Mapping[str, Any],
    columns: Mapping[str, str],
    scheme: GridCodeScheme,
    problems: list[FeatureProblem],
) -> MappedGrid | None:
    values = {ours: _text(props.get(src)) for ours, src in columns.items()}
    code = values.get("code")
    if code is None:
        problems.append(FeatureProblem("missing_grid_code", "feature has no grid code", index))
        return None
    if any("\x00" in v for v in values.values() if v is not None):
        problems.append(
            FeatureProblem("invalid_text", "attribute text contains NUL characters", index)
        )
        return None
    for name, limit in MAX_LENGTHS.items():
        value = values.get(name)
        if value is not None and len(value) > limit:
            problems.append(
                FeatureProblem(
                    "value_too_long", f"{name} is longer than {limit} characters", index, code[:40]
                )
            )
            return None
    if not scheme.is_valid(code):
        problems.append(
            FeatureProblem(
                "invalid_grid_code",
                f"grid code {code!r} does not match the pattern {scheme.pattern}",
                index,
                code,
            )
        )
        return None
    parts = scheme.parse(code)
    derived = {
        "district_code": parts.district_code,
        "street_code": parts.street_code,
        "community_code": parts.community_code,
    }
    for level, expected in derived.items():
        given = values.get(level)
        if given is not None and given != expected:
            problems.append(
                FeatureProblem(
                    "hierarchy_mismatch",
                    f"{level} is {given} but grid code {code} implies {expected}",
                    index,
                    code,
                )
            )
            return None
    tier_text = values.get("zone_tier")
    tier = None
    if tier_text is not None:
        tier = _ZONE_TIER_WORDS.get(tier_text.lower())
        if tier is None:
            problems.append(
                FeatureProblem(
                    "invalid_zone_tier",
                    f"zone tier {tier_text!r} is not one of strict/controlled/general "
                    "(严管/控制/一般)",
                    index,
                    code,
                )
            )
            return None
    used = set(columns.values())
    return MappedGrid(
        feature=index,
        code=code,
        name=values.get("name") or code,
        district_name=values.get("district_name"),
        street_name=values.get("street_name"),
        community_name=values.get("community_name"),
        zone_tier=tier,
        extra={k: json_safe(v) for k, v in props.items() if k not in used},
        **derived,
    )


def json_safe(value: Any) -> Any:
    """Attribute values as strict JSON: NaN/±inf become null, NUL characters are dropped.

    PostgreSQL's json type refuses both; SQLite would store them, so without this the same
    file would import on one profile and fail on the other.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _hierarchy_name_conflicts(grids: list[MappedGrid]) -> list[FeatureProblem]:
    """A district/street/community code must carry one name throughout the file."""
    problems: list[FeatureProblem] = []
    for level in ("district", "street", "community"):
        names: dict[str, tuple[str, int]] = {}
        for grid in grids:
            name = getattr(grid, f"{level}_name")
            if name is None:
                continue
            parent = getattr(grid, f"{level}_code")
            first = names.setdefault(parent, (name, grid.feature))
            if first[0] != name:
                problems.append(
                    FeatureProblem(
                        "hierarchy_mismatch",
                        f"{level} {parent} is named {first[0]!r} (feature {first[1]}) and {name!r}",
                        grid.feature,
                        grid.code,
                    )
                )
    return problems
