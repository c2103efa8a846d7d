"""The violation taxonomy as a file: parse, validate, and write back (pure; no database).

A city's categories are data, not code (codes and time limits differ between cities): a
tree of majors (2 digits, e.g. ``05`` 街面秩序) and their categories (4-6 digits starting
with the parent's code, e.g. ``0504`` 店外经营), each with a stable English ``key`` for code
and APIs, a zh-CN ``name``, a measure unit and time limits per workflow step. The file is
YAML or JSON::

    version: 1
    categories:
      - code: "05"
        key: street_order
        name: 街面秩序
        children:
          - code: "0504"
            key: shop_front_trading
            name: 店外经营
            measure: count
            limits: {accept: 1h, dispatch: 1h, handle: 4h, check: 1d}
            duplicates: {radius_m: 30, window: 1d}

Limits are working time, counted on the city's working calendar: ``30m`` minutes, ``4h``
hours, ``7d`` working days. ``duplicates`` says how near (metres) and how close in time
(**calendar** time: ``12h``, ``3d``) another open case of the category must be to be
suggested as a duplicate (backend.cases.duplicates); where no ancestor gives a value, 50 m and
7 days apply. A child inherits the limits, measure and duplicate settings its parent gives and
overrides them. Every problem in a file is reported at once; a file with any problem is
refused whole.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard

import yaml

from backend.core import yaml_files

__all__ = [
    "DEFAULT_DUP_RADIUS_M",
    "DEFAULT_DUP_WINDOW_MINUTES",
    "FILE_VERSION",
    "MEASURES",
    "STEPS",
    "CategorySpec",
    "TaxonomyProblems",
    "dump",
    "duplicate_rule",
    "format_minutes",
    "parse",
]

FILE_VERSION: Final = 1
STEPS: Final = ("accept", "dispatch", "handle", "check")  # 受理立案, 派遣, 处置, 核查
MEASURES: Final = ("count", "m2", "m", "truckload")  # 起/处, 平方米, 米, 车
MAX_FILE_BYTES: Final = 1_000_000
_CODE = re.compile(r"^[0-9]{2,6}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
_LIMIT = re.compile(r"^([1-9][0-9]{0,4})(m|h|d)$")
_FIELDS = {"code", "key", "name", "measure", "limits", "children", "description", "duplicates"}
_DUP_FIELDS = ("radius_m", "window")
DEFAULT_DUP_RADIUS_M: Final = 50.0
DEFAULT_DUP_WINDOW_MINUTES: Final = 7 * 24 * 60
# Beyond ~1 km two reports are not "the same spot", and beyond 90 days not the same
# occurrence; the caps also keep the duplicate search a small indexed range.
MAX_DUP_RADIUS_M: Final = 1000.0
MAX_DUP_WINDOW_MINUTES: Final = 90 * 24 * 60
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}


class TaxonomyProblems(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(problems[:5]))
        self.problems = problems


@dataclass(frozen=True)
class CategorySpec:
    """One category as the file gives it, with inherited measure and limits resolved."""

    code: str
    key: str
    name: str
    parent_code: str | None
    measure: str
    limits: dict[str, str] = field(default_factory=dict)
    description: str = ""
    position: int = 0
    # Duplicate suggestions (None: not set here or in an ancestor, the defaults apply).
    dup_radius_m: float | None = None
    dup_window_minutes: int | None = None


def parse(data: bytes) -> list[CategorySpec]:
    """The categories of a YAML or JSON file, parents before children (TaxonomyProblems)."""
    if len(data) > MAX_FILE_BYTES:
        raise TaxonomyProblems([f"the file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TaxonomyProblems(["the file is not UTF-8 text"]) from None
    document = _load(text)
    if not isinstance(document, dict):
        raise TaxonomyProblems(["the file must be a mapping with 'version' and 'categories'"])
    problems: list[str] = []
    version = document.get("version")
    if type(version) is not int or version != FILE_VERSION:  # not `true`, which == 1
        problems.append(f"version must be {FILE_VERSION}")
    roots = document.get("categories")
    if not isinstance(roots, list) or not roots:
        raise TaxonomyProblems([*problems, "categories must be a non-empty list"])
    specs: list[CategorySpec] = []
    walker = _Walker(problems, specs)
    for i, node in enumerate(roots):
        walker.visit(node, f"categories[{i}]", None, _Inherited(), i)
    if problems:
        raise TaxonomyProblems(problems)
    return specs


def dump(specs: list[CategorySpec], fmt: str = "yaml") -> bytes:
    """The file for ``specs`` (a parse → dump → parse round trip gives the same specs)."""
    children: dict[str | None, list[CategorySpec]] = {}
    for spec in sorted(specs, key=lambda s: (s.position, s.code)):
        children.setdefault(spec.parent_code, []).append(spec)

    def node(spec: CategorySpec) -> dict[str, Any]:
        out: dict[str, Any] = {"code": spec.code, "key": spec.key, "name": spec.name}
        if spec.description:
            out["description"] = spec.description
        out["measure"] = spec.measure
        if spec.limits:
            out["limits"] = {step: spec.limits[step] for step in STEPS if step in spec.limits}
        duplicates: dict[str, Any] = {}
        if spec.dup_radius_m is not None:
            radius = spec.dup_radius_m
            duplicates["radius_m"] = int(radius) if radius.is_integer() else radius
        if spec.dup_window_minutes is not None:
            duplicates["window"] = format_minutes(spec.dup_window_minutes)
        if duplicates:
            out["duplicates"] = duplicates
        kids = children.get(spec.code, [])
        if kids:
            out["children"] = [node(kid) for kid in kids]
        return out

    document = {"version": FILE_VERSION, "categories": [node(s) for s in children.get(None, [])]}
    if fmt == "json":
        return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    text: str = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
    return text.encode("utf-8")


def duplicate_rule(radius_m: float | None, window_minutes: int | None) -> tuple[float, int]:
    """The (radius metres, window minutes) in force: a category's own values or the defaults."""
    return (
        DEFAULT_DUP_RADIUS_M if radius_m is None else radius_m,
        DEFAULT_DUP_WINDOW_MINUTES if window_minutes is None else window_minutes,
    )


def format_minutes(minutes: int) -> str:
    """The shortest duration text for ``minutes`` (``4320`` → ``3d``, ``90`` → ``90m``)."""
    for unit in ("d", "h"):
        if minutes % _MINUTES[unit] == 0:
            return f"{minutes // _MINUTES[unit]}{unit}"
    return f"{minutes}m"


def _load(text: str) -> Any:
    try:
        # Anchors, aliases and deep nesting are refused while scanning (yaml_files): a few
        # lines of them cost gigabytes or minutes, and a category file has no use for them.
        return yaml_files.load(text)
    except yaml_files.UnsafeYAML as exc:
        raise TaxonomyProblems([str(exc)]) from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise TaxonomyProblems([f"the file is not valid YAML or JSON{line}"]) from None


class _Walker:
    def __init__(self, problems: list[str], specs: list[CategorySpec]) -> None:
        self.problems = problems
        self.specs = specs
        self.codes: set[str] = set()
        self.keys: set[str] = set()

    def visit(
        self, node: Any, where: str, parent: str | None, inherited: _Inherited, position: int
    ) -> None:
        if not isinstance(node, dict):
            self.problems.append(f"{where}: must be a mapping")
            return
        for unknown in sorted(set(node) - _FIELDS):
            self.problems.append(f"{where}: unknown field {unknown!r}")
        code = self._code(node.get("code"), where, parent)
        key = self._key(node.get("key"), where)
        name = _joined(node.get("name"))
        if not _storable(name) or not name.strip() or len(name) > 100:
            self.problems.append(f"{where}.name: 1-100 characters of text")
            name = ""
        description = _joined(node.get("description", ""))
        if not _storable(description) or len(description) > 1000:
            self.problems.append(f"{where}.description: at most 1000 characters of text")
            description = ""
        own_measure = node.get("measure", inherited.measure)
        if own_measure not in MEASURES:
            self.problems.append(f"{where}.measure: one of {', '.join(MEASURES)}")
        own_limits = {**inherited.limits, **self._limits(node.get("limits", {}), where)}
        radius, window = self._duplicates(node.get("duplicates", {}), where)
        own = _Inherited(
            str(own_measure),
            own_limits,
            inherited.dup_radius_m if radius is None else radius,
            inherited.dup_window_minutes if window is None else window,
        )
        if code is not None and key is not None:
            self.specs.append(
                CategorySpec(
                    code=code,
                    key=key,
                    name=name.strip(),
                    parent_code=parent,
                    measure=str(own_measure),
                    limits=own_limits,
                    description=description.strip(),
                    position=position,
                    dup_radius_m=own.dup_radius_m,
                    dup_window_minutes=own.dup_window_minutes,
                )
            )
        children = node.get("children", [])
        if not isinstance(children, list):
            self.problems.append(f"{where}.children: must be a list")
            return
        for i, child in enumerate(children):
            self.visit(child, f"{where}.children[{i}]", code, own, position=i)

    def _code(self, value: Any, where: str, parent: str | None) -> str | None:
        if isinstance(value, int):  # YAML reads an unquoted 0504 as text, but 504 as a number
            self.problems.append(f'{where}.code: quote codes ("0504"), they are text')
            return None
        if not isinstance(value, str) or not _CODE.match(value):
            self.problems.append(f"{where}.code: 2-6 digits")
            return None
        if parent is not None and not (value.startswith(parent) and len(value) > len(parent)):
            self.problems.append(f"{where}.code: {value} must extend its parent's code {parent}")
        if value in self.codes:
            self.problems.append(f"{where}.code: {value} appears twice")
            return None
        self.codes.add(value)
        return value

    def _key(self, value: Any, where: str) -> str | None:
        if not isinstance(value, str) or not _KEY.match(value):
            self.problems.append(f"{where}.key: lower_snake_case English, 2-64 characters")
            return None
        if value in self.keys:
            self.problems.append(f"{where}.key: {value} appears twice")
            return None
        self.keys.add(value)
        return value

    def _limits(self, value: Any, where: str) -> dict[str, str]:
        if not isinstance(value, dict):
            self.problems.append(f"{where}.limits: a mapping of step → duration")
            return {}
        limits: dict[str, str] = {}
        for step, duration in value.items():
            if step not in STEPS:
                self.problems.append(f"{where}.limits: unknown step {step!r} ({', '.join(STEPS)})")
            elif not isinstance(duration, str) or not _LIMIT.match(duration):
                self.problems.append(
                    f"{where}.limits.{step}: a working duration such as 30m, 4h or 7d"
                )
            else:
                limits[step] = duration
        return limits

    def _duplicates(self, value: Any, where: str) -> tuple[float | None, int | None]:
        """The node's own (radius metres, window minutes), None where it gives none."""
        if not isinstance(value, dict):
            self.problems.append(f"{where}.duplicates: a mapping with radius_m and/or window")
            return None, None
        for unknown in sorted(set(map(str, value)) - set(_DUP_FIELDS)):
            self.problems.append(
                f"{where}.duplicates: unknown field {unknown!r} ({', '.join(_DUP_FIELDS)})"
            )
        radius = value.get("radius_m")
        if radius is not None:
            # bool is an int to Python, but "radius_m: yes" is a mistake, not 1 m.
            ok = isinstance(radius, int | float) and not isinstance(radius, bool)
            if not (ok and 1 <= radius <= MAX_DUP_RADIUS_M):
                self.problems.append(
                    f"{where}.duplicates.radius_m: a number of metres from 1 to "
                    f"{MAX_DUP_RADIUS_M:g}"
                )
                radius = None
        window = value.get("window")
        minutes = None
        if window is not None:
            match = _LIMIT.match(window) if isinstance(window, str) else None
            if match is not None:
                minutes = int(match[1]) * _MINUTES[match[2]]
            if minutes is None or minutes > MAX_DUP_WINDOW_MINUTES:
                self.problems.append(
                    f"{where}.duplicates.window: a calendar duration such as 12h or 3d, "
                    f"at most {format_minutes(MAX_DUP_WINDOW_MINUTES)}"
                )
                minutes = None
        return (None if radius is None else float(radius)), minutes


def _joined(value: Any) -> Any:
    return yaml_files.join_surrogates(value) if isinstance(value, str) else value


def _storable(value: Any) -> TypeGuard[str]:
    """Text a database can hold: no NUL (PostgreSQL refuses it) and no lone surrogate, which
    a JSON ``"\\ud800"`` or YAML ``"\\udc00"`` escape yields and no UTF-8 encoder accepts."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class _Inherited:
    """What a node passes down to its children (each may override any of it)."""

    measure: str = "count"
    limits: dict[str, str] = field(default_factory=dict)
    dup_radius_m: float | None = None
    dup_window_minutes: int | None = None
