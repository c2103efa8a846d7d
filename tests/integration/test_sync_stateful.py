"""Property test: reference clients on a bad network against the real service on PostGIS.

Hypothesis drives four phones (two inspectors, two phones each) through random offline
periods, dropped requests, dropped answers, duplicated requests, device clocks off by up to
±48 h, overlapping edits of the same reports, command-centre decisions and a reassignment.
When it stops, the network heals and every phone syncs until its outbox is empty; then:

* exactly once: every report a phone created exists once, every mutation was processed once;
* no lost updates: each field holds the value of the last edit the server applied to it;
* convergence: each phone's records equal the server's view of that phone's scope.
"""

from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from sqlalchemy import func, select

from backend.core.db import transaction
from backend.reports import repository as reports_repository
from backend.reports.models import Report
from backend.sync.models import ProcessedMutation
from backend.sync.scope import current_scope
from sync_protocol.client import SyncClient
from sync_protocol.messages import ResultStatus
from tests.support import databases
from tests.support.apps import make_harness, production_settings
from tests.support.case_flow import decide
from tests.support.sync import AppTransport, FlakyTransport, settled_pull
from tests.support.sync_city import build_city

_RUN: dict[str, Any] = {}
_COUNTER = itertools.count()
PHONES = 4
OWNER = ["zhangwei", "zhangwei", "lina", "lina"]
TEXT = st.text(alphabet="店外经营游商广告垃圾 abc", min_size=1, max_size=12).filter(str.strip)


class PatrolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        run = next(_COUNTER)
        self.tmp: Path = _RUN["tmp"] / f"run-{run}"
        self.tmp.mkdir()
        self.db = databases.postgis_clone(_RUN["admin_url"], _RUN["template"])
        url = self.db.__enter__()
        self.api = make_harness(
            "production", production_settings(url, _RUN["s3"], self.tmp / "var")
        )
        self.city = build_city(self.api, self.tmp)
        self.city.add_inspector("zhangwei", self.city.codes[0:3])
        self.city.add_inspector("lina", self.city.codes[5:7])
        self.phones: list[SyncClient] = []
        self.networks: list[FlakyTransport] = []
        self.reassigned: int | None = None
        self.roster_day = date(2020, 1, 1)  # assignment periods must not overlap: move on

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        drop_request=st.sampled_from([0.0, 0.1, 0.3]),
        drop_response=st.sampled_from([0.0, 0.1, 0.3]),
        duplicate=st.sampled_from([0.0, 0.1, 0.3]),
        skews=st.lists(st.integers(-48 * 3600, 48 * 3600), min_size=PHONES, max_size=PHONES),
    )
    def enroll_phones(
        self, seed: int, drop_request: float, drop_response: float, duplicate: float, skews
    ) -> None:
        rng = random.Random(seed)
        for i in range(PHONES):
            network = FlakyTransport(AppTransport(self.api.client), random.Random(rng.random()))
            skew = timedelta(seconds=skews[i])
            clock = lambda s=skew: datetime.now(UTC) + s  # noqa: E731 - per-phone clock
            # Enrollment happens on a good connection (in the office, scanning the QR code);
            # then the phone goes out on patrol and the network turns bad.
            phone = self.city.phone(OWNER[i], transport=network, clock=clock)
            network.drop_request, network.drop_response = drop_request, drop_response
            network.duplicate = duplicate
            self.phones.append(phone)
            self.networks.append(network)

    # -- what inspectors do -----------------------------------------------------------------

    @rule(phone=st.integers(0, PHONES - 1), grid=st.integers(0, 11), text=TEXT)
    def report(self, phone: int, grid: int, text: str) -> None:
        self.phones[phone].create_report("0504", text, f"grid {grid}", self.city.centre_of(grid))

    @rule(
        phone=st.integers(0, PHONES - 1),
        pick=st.integers(0, 50),
        text=TEXT,
        field=st.sampled_from(["description", "address"]),
    )
    def edit(self, phone: int, pick: int, text: str, field: str) -> None:
        own = self._own_reports(phone)
        if own:
            self.phones[phone].update_report(own[pick % len(own)], {field: text})

    @rule(phone=st.integers(0, PHONES - 1), pick=st.integers(0, 50))
    def withdraw(self, phone: int, pick: int) -> None:
        own = self._own_reports(phone)
        if own:
            self.phones[phone].delete_report(own[pick % len(own)])

    @rule(phone=st.integers(0, PHONES - 1))
    def sync(self, phone: int) -> None:
        self.phones[phone].sync()

    @rule(phone=st.integers(0, PHONES - 1))
    def toggle_signal(self, phone: int) -> None:
        self.networks[phone].offline = not self.networks[phone].offline

    # -- what the command centre does -------------------------------------------------------

    @rule(pick=st.integers(0, 50), action=st.sampled_from(["accept", "decline"]))
    def review(self, pick: int, action: str) -> None:
        """Intake accepts or declines a report's case (which sets the report's status)."""
        with transaction(self.api.runtime.sessions) as session:
            ids = list(session.scalars(select(Report.id).where(Report.deleted_at.is_(None))))
        if ids:
            decide(self.api, sorted(ids)[pick % len(ids)], action, comment="审核")

    @rule()
    def reassign(self) -> None:
        """Grid 1 moves to lina and back: her phones gain and then lose its reports."""
        code = self.city.codes[1]
        self.roster_day += timedelta(days=1)
        if self.reassigned is None:
            self.reassigned = self.city.assign("lina", code, start=self.roster_day.isoformat())
        else:
            self.city.unassign(code, self.reassigned, self.roster_day.isoformat())
            self.reassigned = None

    # -- helpers ----------------------------------------------------------------------------

    def _own_reports(self, phone: int) -> list[str]:
        user_id = self.city.user_ids[OWNER[phone]]
        records = self.phones[phone].records("report")
        return sorted(rid for rid, r in records.items() if r["reporter_id"] == user_id)

    def teardown(self) -> None:
        try:
            if self.phones:
                self._heal_and_settle()
                self._check_exactly_once()
                self._check_no_lost_updates()
                self._check_convergence()
        finally:
            for phone in self.phones:
                phone.close()
            self.api.client.close()
            self.api.runtime.close()
            self.db.__exit__(None, None, None)

    def _heal_and_settle(self) -> None:
        for network in self.networks:
            network.offline = False
            network.drop_request = network.drop_response = network.duplicate = 0.0
        for _ in range(4):
            for phone in self.phones:
                phone.sync()
        for phone in self.phones:
            assert phone.pending() == [], phone.pending()
            assert settled_pull(phone).digest_verified

    def _check_exactly_once(self) -> None:
        created = {
            entry.args["report_id"]
            for phone in self.phones
            for entry in phone.results_log()
            if entry.name == "report.create"
        }
        # One result per mutation in each phone's log, and one row per mutation on the server.
        enqueued = [len(phone.results_log()) for phone in self.phones]
        with transaction(self.api.runtime.sessions) as session:
            stored = set(session.scalars(select(Report.id)))
            processed = [
                session.scalar(
                    select(func.count())
                    .select_from(ProcessedMutation)
                    .where(ProcessedMutation.device_id == phone.device_id)
                )
                for phone in self.phones
            ]
        assert stored == created
        assert processed == enqueued

    def _check_no_lost_updates(self) -> None:
        last: dict[tuple[str, str], tuple[int, object]] = {}
        for phone in self.phones:
            for entry in phone.results_log():
                result = entry.result
                if entry.name != "report.update" or result.status is not ResultStatus.applied:
                    continue
                assert result.record is not None
                for field, value in entry.args["changes"].items():
                    key = (entry.args["report_id"], field)
                    if key not in last or result.record.version >= last[key][0]:
                        last[key] = (result.record.version, value)
        with transaction(self.api.runtime.sessions) as session:
            for (report_id, field), (_version, value) in last.items():
                report = session.get(Report, report_id)
                assert report is not None
                if report.deleted_at is None:
                    assert getattr(report, field) == value, (report_id, field)

    def _check_convergence(self) -> None:
        with transaction(self.api.runtime.sessions) as session:
            for i, phone in enumerate(self.phones):
                username = OWNER[i]
                user_id = self.city.user_ids[username]
                scope = current_scope(session, user_id, username, self.api.runtime.settings.today())
                expected = dict(
                    reports_repository.visible_versions(session, user_id, scope.grid_codes)
                )
                mine = {rid: r["version"] for rid, r in phone.records("report").items()}
                assert mine == expected, (i, username)
                assert set(phone.records("grid")) == set(scope.grid_codes)


@pytest.mark.postgis
def test_phones_on_a_bad_network_converge(
    postgis_service, postgis_template, s3_service, tmp_path: Path
) -> None:
    _RUN.update(
        admin_url=postgis_service.admin_url,
        template=postgis_template,
        s3=s3_service,
        tmp=tmp_path,
    )
    run_state_machine_as_test(
        PatrolMachine,
        settings=settings(
            max_examples=int(os.environ.get("XUNCHA_STATEFUL_EXAMPLES", "12")),
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
