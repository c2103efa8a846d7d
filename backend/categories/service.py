"""Importing, reading and exporting the city's violation categories."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from sqlalchemy.orm import Session

from backend.audit import service as audit
from backend.categories import repository
from backend.categories.errors import CategoryFileInvalid, CategoryNotFound
from backend.categories.models import Category
from backend.categories.taxonomy import CategorySpec, TaxonomyProblems, dump, parse
from backend.core.types import utcnow

_SPEC_FIELDS = (
    "key",
    "name",
    "description",
    "parent_code",
    "measure",
    "limits",
    "position",
    "dup_radius_m",
    "dup_window_minutes",
)


@dataclass(frozen=True)
class ImportResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unchanged: int = 0
    dry_run: bool = False


def default_file() -> bytes:
    return resources.files("backend.categories").joinpath("default_categories.yaml").read_bytes()


def read_file(data: bytes) -> list[CategorySpec]:
    try:
        return parse(data)
    except TaxonomyProblems as exc:
        raise CategoryFileInvalid(str(exc), problems=exc.problems) from None


def import_categories(
    session: Session, data: bytes, *, dry_run: bool = False, actor: str = "system"
) -> ImportResult:
    """Make the stored categories those of the file: new codes created, changed ones updated,
    missing ones deactivated (never deleted: reports and cases keep naming them)."""
    wanted = {spec.code: spec for spec in read_file(data)}
    existing = repository.for_update(session)
    created = [code for code in wanted if code not in existing]
    deactivated = sorted(c for c, row in existing.items() if c not in wanted and row.active)
    updated = sorted(
        code
        for code, row in existing.items()
        if code in wanted and (not row.active or _current(row) != _values(wanted[code]))
    )
    result = ImportResult(
        created=created,
        updated=updated,
        deactivated=deactivated,
        unchanged=len(wanted) - len(created) - len(updated),
        dry_run=dry_run,
    )
    if dry_run:
        return result
    now = utcnow()
    final_keys = {
        code: wanted[code].key if code in wanted else _retired_key(row.key, code)
        for code, row in existing.items()
    }
    # Keys may move between codes (a city renumbers): park every changing key on a name no
    # real key can have ("~" is not allowed in keys) so the unique index never sees two rows
    # with one key in between.
    for code, row in existing.items():
        if final_keys[code] != row.key:
            row.key = f"~{code}"
    session.flush()
    for code, row in existing.items():
        row.key = final_keys[code]
        if code in deactivated:
            row.active, row.updated_at = False, now
        elif code in updated:
            for name, value in _values(wanted[code]).items():
                setattr(row, name, value)
            row.active, row.updated_at = True, now
    for code in created:
        session.add(Category(code=code, **_values(wanted[code]), active=True, updated_at=now))
    session.flush()
    audit.record(
        session, actor, "categories.import", "categories", "all", created=len(created),
        updated=len(updated), deactivated=len(deactivated),
    )  # fmt: skip
    return result


def _retired_key(key: str, code: str) -> str:
    """The key of a category no longer in the file: kept readable, freed for reuse."""
    return key if "~" in key else f"{key}~{code}"[:64]


def _current(row: Category) -> dict[str, object]:
    return {name: getattr(row, name) for name in _SPEC_FIELDS}


def tree(session: Session) -> list[Category]:
    return list(repository.all_categories(session))


def get(session: Session, code: str) -> Category:
    category = repository.by_code(session, code)
    if category is None:
        raise CategoryNotFound(f"category {code} does not exist")
    return category


def export(session: Session, fmt: str = "yaml") -> bytes:
    return dump([_spec(row) for row in repository.all_categories(session)], fmt)


def _values(spec: CategorySpec) -> dict[str, object]:
    return {name: getattr(spec, name) for name in _SPEC_FIELDS}


def _spec(row: Category) -> CategorySpec:
    return CategorySpec(
        code=row.code,
        key=row.key,
        name=row.name,
        parent_code=row.parent_code,
        measure=row.measure,
        limits=dict(row.limits or {}),
        description=row.description or "",
        position=row.position,
        dup_radius_m=row.dup_radius_m,
        dup_window_minutes=row.dup_window_minutes,
    )
