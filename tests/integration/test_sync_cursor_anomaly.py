"""The commit-order anomaly on PostgreSQL: a late commit is never skipped by a pull cursor.

Transaction A writes a report (taking the older transaction id) and stays open; transaction B
writes another report and commits; a device pulls; then A commits. With a plain sequence or
timestamp cursor the device would be past A's change for ever. Here the first pull withholds
B (A is still running, so nothing at or after A's transaction id is handed out), and the next
pull after A's commit delivers both.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from backend.core.db import transaction
from backend.reports import service as reports
from backend.reports.service import LocationInput, Locator, NewReport
from backend.sync import changelog
from tests.support.apps import make_harness, production_settings
from tests.support.sync import settled_pull
from tests.support.sync_city import build_city


def _new_report(city, index: int) -> NewReport:  # type: ignore[no-untyped-def]
    centre = city.geoms[index].centroid
    return NewReport(
        report_id=str(uuid.uuid4()),
        category_code="0504",
        description=f"written directly in grid {index}",
        address="",
        location=LocationInput(centre.x, centre.y, "wgs84", 5.0, datetime.now(UTC), "gps"),
        captured_at=datetime.now(UTC),
        photos=(),
        digest=uuid.uuid4().hex,
    )


def test_late_commit_is_delivered_not_skipped(postgis_url: str, s3_service, tmp_path: Path) -> None:
    api = make_harness("production", production_settings(postgis_url, s3_service, tmp_path))
    try:
        city = build_city(api, tmp_path)
        user_id = city.add_inspector("zhangwei", [city.codes[0], city.codes[1]])
        phone = city.phone("zhangwei")
        phone.pull()
        device_id = phone.device_id
        assert device_id is not None
        locator = Locator(None, 50.0)

        slow = api.runtime.sessions()
        report_a = _new_report(city, 0)
        reports.create(slow, user_id=user_id, device_id=device_id, new=report_a, locator=locator)
        xid_a = slow.execute(select(changelog._PG_XID)).scalar_one()

        report_b = _new_report(city, 1)
        with transaction(api.runtime.sessions) as fast:
            reports.create(
                fast, user_id=user_id, device_id=device_id, new=report_b, locator=locator
            )
            xid_b = fast.execute(select(changelog._PG_XID)).scalar_one()
        assert xid_a < xid_b  # A started first, B committed first: the anomaly's setup

        during = phone.pull()
        assert report_b.report_id not in phone.records("report")  # withheld, not skipped
        assert not during.digest_verified  # not caught up while A is in flight

        slow.commit()
        slow.close()
        after = settled_pull(phone)
        assert {report_a.report_id, report_b.report_id} <= set(phone.records("report"))
        assert after.digest_verified
    finally:
        api.client.close()
        api.runtime.close()
