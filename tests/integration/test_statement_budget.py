"""Statements and transactions per request on a phone's hot path (issue 6's load test).

Under load the API's CPU goes mostly to SQLAlchemy and the driver, per statement and per
transaction; these budgets keep a push, a photo upload and a pull from quietly growing
(a lookup repeated, a row written twice). Counted on the production profile (PostGIS),
where the load test runs, with the city's category taxonomy loaded as in production.
A budget may be raised on purpose, with the reason in the commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from backend.categories import service as categories
from backend.core.db import transaction
from tests.support.apps import ApiHarness
from tests.support.photos import declaration, jpeg_with_exif, photo_city, put_bytes
from tests.support.sync import device_headers

# (statements, transactions) per request, auth included: measured, not aspirational. The
# caller's lookup runs without a transaction on PostgreSQL (Runtime.lookup_sessions).
BUDGETS = {
    "push one report": (22, 1),
    "photo upload-target": (4, 1),
    "photo complete": (14, 1),
    "pull (caught up)": (13, 1),
}


@dataclass
class Count:
    statements: list[str] = field(default_factory=list)
    transactions: int = 0


@contextmanager
def counted(api: ApiHarness) -> Iterator[Count]:
    count = Count()

    def statement(_conn: Any, _cursor: Any, text: str, *_args: Any) -> None:
        count.statements.append(" ".join(text.split())[:90])

    def begin(conn: Any) -> None:
        # SQLAlchemy reports a logical begin on autocommit connections too: no BEGIN is sent.
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            count.transactions += 1

    engine = api.runtime.engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        yield count
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)


@pytest.mark.parametrize("api", ["production"], indirect=True)
def test_a_phones_report_cycle_stays_within_its_statement_budget(
    api: ApiHarness, tmp_path: Path
) -> None:
    city = photo_city(api, tmp_path)
    with transaction(api.runtime.sessions) as session:
        categories.import_categories(session, categories.default_file())
    phone = city.phone("zhangwei")
    phone.pull()
    seen: dict[str, Count] = {}
    for n in range(3):  # the first round loads the grid index; the others must fit
        data = jpeg_with_exif(None, None, seed=n)
        photo = declaration(data)
        phone.create_report("0504", "店外经营", "", city.centre_of(0), photos=[photo])
        with counted(api) as seen["push one report"]:
            assert phone.push().results[-1].status.value == "applied"
        headers = device_headers(phone)
        with counted(api) as seen["photo upload-target"]:
            target = api.client.post(
                f"/api/v1/photos/{photo['photo_id']}/upload-target",
                json={k: photo[k] for k in ("sha256", "size", "content_type")},
                headers=headers,
            )
        assert target.status_code == 200, target.text
        body = target.json()
        assert put_bytes(api.client, body["url"], body["headers"], data) in (200, 204)
        with counted(api) as seen["photo complete"]:
            done = api.client.post(f"/api/v1/photos/{photo['photo_id']}/complete", headers=headers)
        assert done.status_code == 200, done.text
        phone.pull()  # the report's own change
        with counted(api) as seen["pull (caught up)"]:
            phone.pull()
        if n == 0:
            continue
        for name, (statements, transactions) in BUDGETS.items():
            got = seen[name]
            listing = "\n".join(got.statements)
            assert len(got.statements) <= statements, f"{name}: {len(got.statements)}\n{listing}"
            assert got.transactions <= transactions, f"{name}: {got.transactions} transactions"
