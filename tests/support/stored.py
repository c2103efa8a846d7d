"""What the service has stored, as one comparable value: to show a refused request kept nothing.

``stored(api)`` counts the rows of every table a client request can write, fingerprints the
rows of the tables a request can change in place (a user's unit, a department, the calendar,
a case's version …), and lists the object store's keys. Two snapshots taken around a refused
request must be equal; ``changed(before, after)`` names what differs, for the failure message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from backend.core.db import transaction
from tests.support.apps import ApiHarness

# Rows a client request may add. Left out: auth_failures (a refused credential is counted on
# purpose), sync_scopes / sync_horizon (a pull's bookkeeping).
COUNTED = (
    "users",
    "devices",
    "enrollment_codes",
    "grid_versions",
    "grid_cells",
    "grid_assignments",
    "reports",
    "report_photos",
    "photo_uploads",
    "cases",
    "case_events",
    "case_steps",
    "tasks",
    "departments",
    "categories",
    "config_documents",
    "audit_log",
    "sync_changes",
    "sync_mutations",
    "jobs",
)
# Rows a client request may change in place: every column that matters, in key order.
FINGERPRINTED = {
    "users": "id, username, display_name, phone, role, unit_code, department_code, is_active, "
    "token_version",
    "devices": "id, name, revoked_at, last_mutation_id",
    "grid_versions": "id, label, is_active",
    "grid_assignments": "id, role, assignee_name, note, effective_from, effective_to",
    "reports": "id, description, address, status, version",
    "report_photos": "photo_id, state, sha256",
    "cases": "id, status, description, address, version",
    "departments": "code, name, kind, unit_code, active",
    "categories": "code, key, name, description, active",
    "config_documents": "*",
}
OBJECT_PREFIXES = ("photos/", "staging/", "uploads/")


@dataclass(frozen=True)
class Stored:
    counts: dict[str, int]
    fingerprints: dict[str, str]
    objects: tuple[str, ...]

    def without(self, *tables: str) -> Stored:
        """The snapshot minus some tables (for requests whose protocol records something
        even when refused, e.g. a rejected sync mutation's stored result)."""
        return Stored(
            {k: v for k, v in self.counts.items() if k not in tables},
            {k: v for k, v in self.fingerprints.items() if k not in tables},
            self.objects,
        )


def stored(api: ApiHarness) -> Stored:
    # One round trip for the counts: the corpus takes two snapshots per request.
    counting = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in COUNTED)
    with transaction(api.runtime.read_sessions) as session:
        counts = {str(table): int(count) for table, count in session.execute(text(counting))}
        fingerprints = {}
        for table, columns in FINGERPRINTED.items():
            rows = session.execute(text(f"SELECT {columns} FROM {table} ORDER BY 1")).all()
            fingerprints[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    store = api.runtime.object_store
    objects = tuple(key for prefix in OBJECT_PREFIXES for key in store.list_keys(prefix))
    return Stored(counts, fingerprints, objects)


def changed(before: Stored, after: Stored) -> dict[str, Any]:
    """What differs between two snapshots (empty when nothing does)."""
    diff: dict[str, Any] = {
        table: (before.counts.get(table), count)
        for table, count in after.counts.items()
        if before.counts.get(table) != count
    }
    diff.update(
        {
            f"{table} (rows changed)": True
            for table, digest in after.fingerprints.items()
            if before.fingerprints.get(table) != digest
        }
    )
    if before.objects != after.objects:
        diff["objects"] = sorted(set(before.objects) ^ set(after.objects))
    return diff
