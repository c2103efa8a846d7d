"""Concurrent pushes on PostgreSQL: retries racing originals, ids racing between devices."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.apps import ApiHarness, make_harness, production_settings
from tests.support.sync import device_headers
from tests.support.sync_city import SyncCity, build_city


@pytest.fixture
def city(postgis_url: str, s3_service, tmp_path: Path) -> Iterator[SyncCity]:  # type: ignore[no-untyped-def]
    api: ApiHarness = make_harness(
        "production", production_settings(postgis_url, s3_service, tmp_path / "var")
    )
    try:
        city = build_city(api, tmp_path)
        city.add_inspector("zhangwei", [city.codes[0]])
        yield city
    finally:
        api.client.close()
        api.runtime.close()


def _race(city: SyncCity, requests: list[tuple[dict[str, Any], dict[str, str]]]) -> list[Any]:
    barrier = threading.Barrier(len(requests))
    answers: list[Any] = [None] * len(requests)

    def send(i: int) -> None:
        client = TestClient(city.api.client.app, raise_server_exceptions=False)
        barrier.wait()
        body, headers = requests[i]
        answers[i] = client.post(
            "/api/v1/sync/push",
            content=json.dumps(body),
            headers={**headers, "content-type": "application/json"},
        )

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _create(city: SyncCity, mutation_id: int, report_id: str, photo_id: str) -> dict[str, Any]:
    return {
        "id": mutation_id,
        "name": "report.create",
        "args": {
            "report_id": report_id,
            "category_code": "0504",
            "description": "店外经营",
            "address": "",
            "location": city.centre_of(0),
            "captured_at": "2026-11-23T08:14:40+08:00",
            "photos": [
                {
                    "photo_id": photo_id,
                    "sha256": "a" * 64,
                    "size": 1000,
                    "content_type": "image/jpeg",
                }
            ],
        },
    }


def _body(phone: Any, mutations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": phone.device_id,
        "mutations": mutations,
    }


def test_a_retry_racing_its_original_is_a_replay(city: SyncCity) -> None:
    phone = city.phone("zhangwei")
    for round_ in range(5):
        first = 2 * round_ + 1
        report_id = str(uuid.uuid4())
        batch = [
            _create(city, first, report_id, str(uuid.uuid4())),
            {
                "id": first + 1,
                "name": "report.update",
                "args": {
                    "report_id": report_id,
                    "base_version": 1,
                    "changes": {"description": f"round {round_}"},
                },
            },
        ]
        answers = _race(city, [(_body(phone, batch), device_headers(phone))] * 2)
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        replayed = [[r.get("replayed", False) for r in a.json()["results"]] for a in answers]
        assert sorted(replayed) == [[False, False], [True, True]]


def test_two_devices_racing_for_one_photo_id_never_fail(city: SyncCity) -> None:
    a, b = city.phone("zhangwei"), city.phone("zhangwei")
    photo_id = str(uuid.uuid4())
    answers = _race(
        city,
        [
            (_body(a, [_create(city, 1, str(uuid.uuid4()), photo_id)]), device_headers(a)),
            (_body(b, [_create(city, 1, str(uuid.uuid4()), photo_id)]), device_headers(b)),
        ],
    )
    assert [x.status_code for x in answers] == [200, 200]
    statuses = sorted(x.json()["results"][0]["status"] for x in answers)
    assert statuses in (["applied", "rejected"], ["applied", "retry"])
