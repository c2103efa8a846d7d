"""Tokens that must stop working, and the limits on guessing secrets, on both profiles.

* An expired access token is 401 ``token_expired``; deactivating a user, bumping their
  ``token_version`` and revoking a device stop existing tokens on their very next request
  (password and device tokens alike, on every endpoint, and the device-token exchange).
* Failed logins are limited per username and per client address, wrong enrollment codes and
  device credentials per address: 429 ``too_many_attempts`` with ``Retry-After``, counted in
  the database (so every worker process counts together), a sliding window; a successful
  login empties its username's bucket. Failed logins are audited, at most N per minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select, update

from backend.accounts import throttle
from backend.accounts.models import AuthFailure, User
from backend.accounts.security import issue_token
from backend.app import create_app
from backend.audit.models import AuditEntry
from backend.audit.service import audit_key, verify_log
from backend.core.db import transaction
from backend.core.runtime import Runtime
from backend.core.settings import Settings
from tests.api.test_grids_api import assert_problem
from tests.support.apps import TEST_PASSWORD, TEST_SECRET, ApiHarness
from tests.support.photos import photo_city
from tests.support.sync import device_headers
from tests.support.sync_city import APP_VERSION, SyncCity

LOGIN = "/api/v1/auth/token"


def _login(api: ApiHarness, username: str, password: str, client: Any = None) -> Any:
    return (client or api.client).post(LOGIN, json={"username": username, "password": password})


def _user_id(api: ApiHarness, username: str) -> int:
    with transaction(api.runtime.read_sessions) as session:
        found = session.scalar(select(User.id).where(User.username == username))
        assert found is not None
        return int(found)


def _failures(api: ApiHarness) -> int:
    """Failures counted in the limits' buckets (not the audit allowance's)."""
    audit_bucket = throttle.audit_allowance(api.runtime.settings).bucket
    with transaction(api.runtime.read_sessions) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuthFailure)
                .where(AuthFailure.bucket != audit_bucket)
            )
            or 0
        )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _age_failures(api: ApiHarness, by: timedelta) -> None:
    """Time travel: every counted failure happened ``by`` earlier."""
    with transaction(api.runtime.sessions) as session:
        for row in session.scalars(select(AuthFailure)):
            row.at = row.at - by


def _audited(api: ApiHarness, action: str) -> list[AuditEntry]:
    with transaction(api.runtime.read_sessions) as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def _assert_throttled(response: Any) -> int:
    body = assert_problem(response, 429, "too_many_attempts")
    wait = int(response.headers["retry-after"])
    assert 1 <= wait <= 15 * 60 and body["retry_after"] == wait
    return wait


# -- tokens that stop working ----------------------------------------------------------------


@pytest.fixture
def city(api: ApiHarness, tmp_path: Path) -> SyncCity:
    return photo_city(api, tmp_path)


def _pull(city: SyncCity, phone: Any, headers: dict[str, str] | None = None) -> Any:
    body = {
        "protocol_version": 1,
        "app_version": APP_VERSION,
        "device_id": phone.device_id,
        "cursor": None,
    }
    return city.api.client.post(
        "/api/v1/sync/pull", json=body, headers=headers or device_headers(phone)
    )


def test_an_expired_token_is_401_token_expired(city: SyncCity) -> None:
    api = city.api
    user_id = _user_id(api, "zhangwei")
    phone = city.phone("zhangwei")
    expired = issue_token(TEST_SECRET, user_id, 1, ttl_seconds=-1)
    assert_problem(
        api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"}),
        401,
        "token_expired",
    )
    expired_device = issue_token(TEST_SECRET, user_id, 1, -1, device_id=phone.device_id)
    bearer = {"Authorization": f"Bearer {expired_device}"}
    assert_problem(_pull(city, phone, bearer), 401, "token_expired")
    # The same claims, still valid, get through: it is the expiry that is refused.
    fresh = issue_token(TEST_SECRET, user_id, 1, 60, device_id=phone.device_id)
    assert _pull(city, phone, {"Authorization": f"Bearer {fresh}"}).status_code == 200
    # And the lifetimes are the configured ones (30 and 15 minutes by default).
    token = _login(api, "zhangwei", "patrol-pass-1").json()
    assert token["expires_in"] == api.runtime.settings.access_token_minutes * 60 == 1800


def test_deactivation_stops_password_and_device_tokens_at_once(city: SyncCity) -> None:
    api = city.api
    phone = city.phone("lina")
    password = _bearer(_login(api, "lina", "patrol-pass-1").json()["access_token"])
    assert api.client.get("/api/v1/auth/me", headers=password).status_code == 200
    assert _pull(city, phone).status_code == 200
    done = api.client.post(f"/api/v1/users/{city.user_ids['lina']}/deactivate", headers=city.admin)
    assert done.status_code == 200 and done.json()["is_active"] is False
    for answer in (
        api.client.get("/api/v1/auth/me", headers=password),
        api.client.get("/api/v1/grids", headers=device_headers(phone)),
        _pull(city, phone),
    ):
        assert_problem(answer, 401, "user_inactive")
    credentials = phone._store.credentials()  # tests reach into the client on purpose
    assert credentials is not None
    refreshed = api.client.post(
        "/api/v1/devices/token",
        json={"device_id": phone.device_id, "device_secret": credentials.device_secret},
    )
    assert_problem(refreshed, 401, "user_inactive")
    assert_problem(_login(api, "lina", "patrol-pass-1"), 401, "bad_credentials")


def test_a_new_token_version_revokes_every_earlier_token(city: SyncCity) -> None:
    api = city.api
    phone = city.phone("zhangwei")
    old_password = _login(api, "zhangwei", "patrol-pass-1").json()["access_token"]
    old_device = device_headers(phone)
    with transaction(api.runtime.sessions) as session:
        bump = User.token_version + 1
        session.execute(update(User).where(User.username == "zhangwei").values(token_version=bump))
    assert_problem(
        api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {old_password}"}),
        401,
        "invalid_token",
    )
    assert_problem(_pull(city, phone, old_device), 401, "invalid_token")
    # Signing in again (password, or the phone's device secret) gives working tokens.
    fresh = _login(api, "zhangwei", "patrol-pass-1").json()["access_token"]
    assert api.client.get("/api/v1/auth/me", headers=_bearer(fresh)).status_code == 200
    assert phone.pull().state.value == "ok"  # the client exchanges its secret for a new token


def test_revoking_a_device_stops_it_everywhere_but_not_its_owner(city: SyncCity) -> None:
    api = city.api
    lost, other = city.phone("zhangwei"), city.phone("zhangwei")
    lost_headers = device_headers(lost)
    password = _bearer(_login(api, "zhangwei", "patrol-pass-1").json()["access_token"])
    revoked = api.client.post(f"/api/v1/devices/{lost.device_id}/revoke", headers=city.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    for answer in (
        _pull(city, lost, lost_headers),
        api.client.get("/api/v1/auth/me", headers=lost_headers),
        api.client.get("/api/v1/grids", headers=lost_headers),
        api.client.post(
            "/api/v1/uploads",
            headers={**lost_headers, "Tus-Resumable": "1.0.0", "Upload-Length": "1"},
        ),
    ):
        problem = assert_problem(answer, 401, "device_revoked")
        assert problem["directives"][0]["type"] == "re_enroll"
    credentials = lost._store.credentials()
    assert credentials is not None
    exchange = api.client.post(
        "/api/v1/devices/token",
        json={"device_id": lost.device_id, "device_secret": credentials.device_secret},
    )
    assert_problem(exchange, 401, "device_revoked")
    # The owner's other phone and password login are untouched.
    assert _pull(city, other).status_code == 200
    assert api.client.get("/api/v1/auth/me", headers=password).status_code == 200
    # Revocation is not a wrong secret: it does not count towards the address's limit.
    assert _failures(api) == 0


# -- rate limits -----------------------------------------------------------------------------


def test_failed_logins_lock_the_username_then_free_it(api: ApiHarness) -> None:
    api.create_user("wang")
    for _ in range(5):
        assert_problem(_login(api, "wang", "wrong password"), 401, "bad_credentials")
    # Locked: even the right password is not looked at.
    wait = _assert_throttled(_login(api, "wang", TEST_PASSWORD))
    assert wait > 14 * 60
    _assert_throttled(_login(api, "WANG", "wrong password"))  # case does not buy guesses
    assert _failures(api) == 5 * 2  # refused attempts are not counted (username + address)
    # Other accounts from the same address still log in.
    api.create_user("li")
    assert _login(api, "li", TEST_PASSWORD).status_code == 200
    # When the window has passed, the account logs in again.
    _age_failures(api, timedelta(minutes=15))
    assert _login(api, "wang", TEST_PASSWORD).status_code == 200


def test_a_successful_login_resets_the_username_bucket_only(api: ApiHarness) -> None:
    api.create_user("zhao")
    for _round in range(3):
        for _ in range(4):
            assert _login(api, "zhao", "wrong password").status_code == 401
        assert _login(api, "zhao", TEST_PASSWORD).status_code == 200
    # 12 failures from this address, none of them left for the username.
    assert _failures(api) == 12
    api.runtime.settings.login_max_failures_per_ip = 13
    assert _login(api, "zhao", "wrong password").status_code == 401
    # The address's bucket was not reset by the successes: it is full now.
    _assert_throttled(_login(api, "zhao", TEST_PASSWORD))


def test_failed_logins_are_limited_per_address(api: ApiHarness) -> None:
    api.runtime.settings.login_max_failures_per_ip = 3
    for name in ("a1", "a2", "a3"):
        assert _login(api, name, "wrong password").status_code == 401
    _assert_throttled(_login(api, "a4", "whatever"))
    api.create_user("sun")
    _assert_throttled(_login(api, "sun", TEST_PASSWORD))
    # Another address is not affected (each worker and host counts the same buckets).
    elsewhere = TestClient(api.client.app, client=("203.0.113.7", 40000))
    assert _login(api, "sun", TEST_PASSWORD, elsewhere).status_code == 200
    # IPv6 clients are counted per /64: hopping addresses inside it does not help.
    for host in ("2001:db8:1:2::a", "2001:db8:1:2::b", "2001:db8:1:2:ffff::c"):
        hop = TestClient(api.client.app, client=(host, 40000))
        assert _login(api, "nobody", "wrong", hop).status_code == 401
    hop = TestClient(api.client.app, client=("2001:db8:1:2::d", 40000))
    _assert_throttled(_login(api, "sun", TEST_PASSWORD, hop))
    other_net = TestClient(api.client.app, client=("2001:db8:1:3::a", 40000))
    assert _login(api, "sun", TEST_PASSWORD, other_net).status_code == 200


def test_failed_logins_are_audited_capped_and_the_chain_still_verifies(api: ApiHarness) -> None:
    api.create_user("zhou")
    api.runtime.settings.login_max_failures_per_user = 3
    for _ in range(3):
        _login(api, "zhou", "wrong password")
    _assert_throttled(_login(api, "zhou", "wrong password"))
    _login(api, "correct horse battery", "x")  # a password typed as a username
    entries = _audited(api, "auth.login_failed")
    assert [e.details["reason"] for e in entries] == ["wrong_password"] * 3 + ["unknown_user"]
    assert [e.details["locked"] for e in entries] == [False, False, True, False]
    assert {e.subject_id for e in entries[:3]} == {str(_user_id(api, "zhou"))}
    assert entries[0].details["client"] == "testclient" and entries[0].actor == "anonymous"
    assert entries[3].subject_id == "unknown" and entries[3].details["username"] is None
    assert all("correct horse" not in str(e.details) for e in entries)
    # At most N per minute reach the chain (a flood of guesses cannot flood it).
    api.runtime.settings.failed_login_audit_per_minute = 5
    for i in range(4):
        _login(api, f"ghost{i}", "x")
    assert len(_audited(api, "auth.login_failed")) == 5
    with transaction(api.runtime.read_sessions) as session:
        assert verify_log(session, audit_key(api.runtime.settings)).ok


def test_wrong_enrollment_codes_are_limited_per_address(city: SyncCity) -> None:
    api = city.api
    api.runtime.settings.enroll_max_failures_per_ip = 3
    code = city.enrollment_code("zhangwei")
    body = {"device_name": "p", "platform": "android", "app_version": APP_VERSION}
    for guess in ("AAAA-BBBB-CCCC", "AAAA-BBBB-CCCD", "AAAA-BBBB-CCCE"):
        answer = api.client.post("/api/v1/devices/enroll", json={**body, "code": guess})
        assert_problem(answer, 401, "enrollment_code_invalid")
    # The address is locked: not even the right code is looked at (nor used up).
    _assert_throttled(api.client.post("/api/v1/devices/enroll", json={**body, "code": code}))
    _age_failures(api, timedelta(minutes=15))
    enrolled = api.client.post("/api/v1/devices/enroll", json={**body, "code": code})
    assert enrolled.status_code == 201, enrolled.text


def test_wrong_device_credentials_are_limited_per_address(city: SyncCity) -> None:
    api = city.api
    api.runtime.settings.device_token_max_failures_per_ip = 3
    phone = city.phone("zhangwei")
    credentials = phone._store.credentials()
    assert credentials is not None
    right = {"device_id": phone.device_id, "device_secret": credentials.device_secret}
    assert api.client.post("/api/v1/devices/token", json=right).status_code == 200
    for _ in range(3):
        wrong = {**right, "device_secret": "xds1.guess"}
        answer = api.client.post("/api/v1/devices/token", json=wrong)
        assert_problem(answer, 401, "device_credentials_invalid")
    _assert_throttled(api.client.post("/api/v1/devices/token", json=right))


@pytest.fixture
def two_workers(api: ApiHarness) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances (two worker processes' worth of state) on one database."""
    settings = Settings(**api.runtime.settings.model_dump())
    runtime = Runtime.build(settings)
    try:
        yield api.client, TestClient(create_app(runtime=runtime))
    finally:
        runtime.close()


def test_the_limits_hold_across_worker_processes(
    api: ApiHarness, two_workers: tuple[TestClient, TestClient]
) -> None:
    first, second = two_workers
    api.create_user("qian")
    for i in range(5):
        worker = (first, second)[i % 2]
        assert _login(api, "qian", "wrong password", worker).status_code == 401
    _assert_throttled(_login(api, "qian", TEST_PASSWORD, first))
    _assert_throttled(_login(api, "qian", TEST_PASSWORD, second))


def test_limit_settings_are_validated() -> None:
    for field in (
        "login_max_failures_per_user",
        "login_max_failures_per_ip",
        "enroll_max_failures_per_ip",
        "device_token_max_failures_per_ip",
        "auth_window_minutes",
        "failed_login_audit_per_minute",
    ):
        with pytest.raises(ValidationError):
            Settings(**{field: 0})  # type: ignore[arg-type]
    defaults = Settings()
    assert (defaults.login_max_failures_per_user, defaults.auth_window_minutes) == (5, 15)


def test_client_addresses_are_bucketed_sensibly() -> None:
    assert throttle.client_address("198.51.100.4") == "198.51.100.4"
    assert throttle.client_address("::ffff:198.51.100.4") == "198.51.100.4"
    assert throttle.client_address("2001:db8::1") == throttle.client_address("2001:db8::2")
    assert throttle.client_address("2001:db8::1") == "2001:db8::/64"
    assert throttle.client_address(None) == "unknown"
    assert throttle.client_address("testclient") == "testclient"
