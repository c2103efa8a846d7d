"""A small city with inspectors and enrolled phones, on either profile, for sync tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from backend.accounts.models import Role
from sync_protocol.client import SyncClient
from sync_protocol.outcomes import PullOutcome, SyncState
from tests.support.apps import ApiHarness
from tests.support.grids import geojson_bytes, lattice_grids
from tests.support.sync import AppTransport

APP_VERSION = "1.4.2"
SETTLE_ATTEMPTS = 300  # × 50 ms: outlasts another test's longest transaction


class SettlingClient(SyncClient):
    """The reference client whose ``pull`` also waits out entries the server withholds.

    On PostgreSQL a pull only delivers changes from transactions older than every running
    one in the cluster (ADR 0007); under xdist another test's database shares the cluster, so
    a change committed a moment ago may arrive one pull later (an app pulls again later
    anyway). Tests assert what a phone holds once caught up, so this pulls again, briefly,
    until the server confirms the digest; outcomes are summed.
    """

    def pull(self) -> PullOutcome:
        outcome = super().pull()
        for _ in range(SETTLE_ATTEMPTS):
            if outcome.digest_verified or outcome.state is not SyncState.ok:
                return outcome
            time.sleep(0.05)
            again = super().pull()
            outcome = replace(
                again,
                pages=outcome.pages + again.pages,
                changes=outcome.changes + again.changes,
                resets=outcome.resets + again.resets,
            )
        return outcome


@dataclass
class SyncCity:
    api: ApiHarness
    tmp: Path
    codes: list[str]
    geoms: list[Any]
    admin: dict[str, str]
    user_ids: dict[str, int] = field(default_factory=dict)
    devices: int = 0

    def add_inspector(self, username: str, grid_codes: list[str]) -> int:
        response = self.api.client.post(
            "/api/v1/users",
            json={"username": username, "password": "patrol-pass-1", "role": "inspector"},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        user_id = int(response.json()["id"])
        self.user_ids[username] = user_id
        for code in grid_codes:
            self.assign(username, code)
        return user_id

    def assign(self, username: str, code: str, start: str = "2020-01-01") -> int:
        response = self.api.client.post(
            f"/api/v1/grids/{code}/assignments",
            json={
                "kind": "person",
                "role": "网格员",
                "assignee_name": username,
                "assignee_ref": username,
                "effective_from": start,
            },
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def unassign(self, code: str, assignment_id: int, end: str) -> None:
        response = self.api.client.post(
            f"/api/v1/grids/{code}/assignments/{assignment_id}/end",
            json={"effective_to": end},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text

    def enrollment_code(self, username: str) -> str:
        response = self.api.client.post(
            f"/api/v1/users/{self.user_ids[username]}/enrollment-codes", headers=self.admin
        )
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    def phone(self, username: str, transport: Any = None, **options: Any) -> SyncClient:
        self.devices += 1
        return SettlingClient.enroll(
            self.tmp / f"phone-{self.devices}.sqlite3",
            transport or AppTransport(self.api.client),
            self.enrollment_code(username),
            f"phone {self.devices} of {username}",
            "android",
            options.pop("app_version", APP_VERSION),
            **options,
        )

    def centre_of(self, index: int) -> dict[str, Any]:
        """A WGS-84 location at the centroid of grid ``index``."""
        centre = self.geoms[index].centroid
        return {
            "lon": round(centre.x, 7),
            "lat": round(centre.y, 7),
            "crs": "wgs84",
            "accuracy_m": 6.0,
            "fix_time": "2026-11-23T08:00:00+08:00",
            "provider": "gps",
        }


def build_city(api: ApiHarness, tmp: Path, cols: int = 4, rows: int = 3) -> SyncCity:
    admin = api.token_for("admin", Role.admin)
    codes, geoms = lattice_grids(cols, rows)
    response = api.client.post(
        "/api/v1/grid-versions",
        files={"file": ("city.geojson", geojson_bytes(codes, geoms), "application/geo+json")},
        data={"crs": "EPSG:4490", "activate": "true"},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return SyncCity(api, tmp, codes, geoms, admin)
