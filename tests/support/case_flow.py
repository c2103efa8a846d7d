"""A city with a command centre, a department and phones, for walking cases through the API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from backend.accounts.models import Role
from backend.core.db import transaction
from backend.reports.models import Report
from sync_protocol.client import SyncClient
from tests.support.apps import TEST_PASSWORD
from tests.support.photos import declaration, direct_upload, jpeg_with_exif, photo_city
from tests.support.sync import device_headers
from tests.support.sync_city import APP_VERSION, SETTLE_ATTEMPTS, SyncCity

DEPARTMENT = "xh-zfzd-1"
OTHER_DEPARTMENT = "xh-hw-1"


@dataclass
class CaseCity:
    city: SyncCity
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    phones: dict[str, SyncClient] = field(default_factory=dict)
    seed: int = 0

    @property
    def client(self) -> Any:
        return self.city.api.client

    def user(
        self, name: str, role: Role, *, unit: str | None = None, department: str | None = None
    ) -> dict[str, str]:
        body: dict[str, Any] = {"username": name, "password": TEST_PASSWORD, "role": role.value}
        if unit is not None:
            body["unit_code"] = unit
        created = self.client.post("/api/v1/users", json=body, headers=self.city.admin)
        assert created.status_code == 201, created.text
        user_id = int(created.json()["id"])
        self.city.user_ids[name] = user_id
        if department is not None:
            moved = self.client.post(
                f"/api/v1/users/{user_id}/department",
                json={"department_code": department},
                headers=self.city.admin,
            )
            assert moved.status_code == 200, moved.text
        self.headers[name] = self.city.api.token_for(name)
        return self.headers[name]

    def phone(self, name: str) -> SyncClient:
        if name not in self.phones:
            self.phones[name] = self.city.phone(name)
        return self.phones[name]

    def photo(self, grid: int) -> tuple[dict[str, Any], bytes]:
        self.seed += 1
        lon, lat = self.city.geoms[grid].centroid.x, self.city.geoms[grid].centroid.y
        data = jpeg_with_exif(lon, lat, seed=self.seed)
        return declaration(data), data

    def report(self, reporter: str, grid: int = 0, category: str = "0504") -> tuple[str, int]:
        """A phone's report with an uploaded photo; returns (report id, case id)."""
        phone = self.phone(reporter)
        photo, data = self.photo(grid)
        report_id = phone.create_report(
            category, "店外经营：水果摊占用人行道", "文三路 12 号", self.city.centre_of(grid),
            photos=[photo],
        )  # fmt: skip
        assert phone.push().results[-1].status.value == "applied"
        assert direct_upload(self.city, phone, photo, data).status_code == 200
        phone.pull()
        case_id = phone.records("report")[report_id]["case_id"]
        assert isinstance(case_id, int)
        return report_id, case_id

    def act(self, who: str, case_id: int, action: str, **body: Any) -> Any:
        return self.client.post(
            f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=self.headers[who]
        )

    def ok(self, who: str, case_id: int, action: str, **body: Any) -> dict[str, Any]:
        answer = self.act(who, case_id, action, **body)
        assert answer.status_code == 200, (action, answer.text)
        return dict(answer.json())

    def case(self, who: str, case_id: int) -> dict[str, Any]:
        answer = self.client.get(f"/api/v1/cases/{case_id}", headers=self.headers[who])
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def tasks(self, name: str) -> dict[str, dict[str, Any]]:
        phone = self.phone(name)
        phone.pull()
        return phone.records("task")

    def task_changes(self, name: str) -> list[dict[str, Any]]:
        """The task changes a pull from the phone's cursor would bring, without applying them
        (to see tombstones and their reasons; the phone's store keeps its cursor)."""
        phone = self.phone(name)
        body = {
            "protocol_version": 1,
            "app_version": APP_VERSION,
            "device_id": phone.device_id,
            "cursor": phone._store.cursor(),  # tests reach into the client on purpose
        }
        for _ in range(SETTLE_ATTEMPTS):  # until caught up (see SettlingClient)
            answer = self.client.post("/api/v1/sync/pull", json=body, headers=device_headers(phone))
            assert answer.status_code == 200, answer.text
            if answer.json().get("digest"):
                break
            time.sleep(0.05)
        return [c for c in answer.json()["changes"] if c["entity"] == "task"]

    def complete(self, name: str, task_id: str, outcome: str, grid: int = 0) -> str:
        """Complete a task from the phone with one after-photo (uploaded); returns report id."""
        phone = self.phone(name)
        photo, data = self.photo(grid)
        report_id = phone.complete_task(
            task_id, outcome, self.city.centre_of(grid), [photo], comment=f"{outcome} 已处理"
        )
        result = phone.push().results[-1]
        assert result.status.value == "applied", result
        assert direct_upload(self.city, phone, photo, data).status_code == 200
        return report_id


def decide(api: Any, report_id: str, action: str, who: str = "reviewer", **body: Any) -> Any:
    """Take a command-centre action on the case of a report (what sets the report's status)."""
    headers = api.token_for(who, Role.intake_operator)
    with transaction(api.runtime.sessions) as session:
        case_id = session.scalar(select(Report.case_id).where(Report.id == report_id))
    return api.client.post(f"/api/v1/cases/{case_id}/actions/{action}", json=body, headers=headers)


def case_city(api: Any, tmp: Path) -> CaseCity:
    """zhangwei patrols grids 0-1, lina grid 5; intake/dispatch city-wide; one department
    with one handler (and a second department, empty)."""
    flow = CaseCity(photo_city(api, tmp))
    for code, name, kind in (
        (DEPARTMENT, "西湖区城管执法一中队", "enforcement"),
        (OTHER_DEPARTMENT, "西湖区环卫所", "sanitation"),
    ):
        made = flow.client.put(
            "/api/v1/departments",
            json={"code": code, "name": name, "kind": kind},
            headers=flow.city.admin,
        )
        assert made.status_code == 200, made.text
    flow.user("intake", Role.intake_operator)
    flow.user("dispatch", Role.dispatcher)
    flow.user("lead", Role.shift_lead)
    flow.user("handler", Role.department_handler, department=DEPARTMENT)
    for name in ("zhangwei", "lina"):  # photo_city made them with the patrol password
        token = flow.client.post(
            "/api/v1/auth/token", json={"username": name, "password": "patrol-pass-1"}
        )
        assert token.status_code == 200, token.text
        flow.headers[name] = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return flow
