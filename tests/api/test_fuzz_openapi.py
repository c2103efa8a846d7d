"""API fuzzing: schemathesis against the committed openapi.yaml, on both storage profiles, as
every role (issue 6, item 3): no 5xx, and every answer conforms to the document — status
code, content type, headers and body schema (schemathesis' default checks).

* The schema is the committed ``openapi.yaml`` (not ``app.openapi()``), so what clients are
  given is what gets tested; ``tests/unit/test_openapi.py`` keeps it equal to the app's.
* One seeded city per profile (grids imported and active, two cases — one dispatched — with
  photos, two departments, users of every role, an enrolled phone), fuzzed in-process through
  the ASGI app. Each principal is one test: the command-centre roles, the department handler,
  the inspector with a password token, and the same inspector's phone with a device token on
  the endpoints phones use (sync, tus and photo uploads, reports). The admin, who gets past
  every role check, also runs schemathesis' coverage phase (boundary values and every kind of
  invalid input, generated deterministically); everyone runs the schema's examples and a
  bounded, derandomized fuzzing phase, so CI sees the same requests every time.
* Generated ids rarely name the seeded users or devices, but small ones do (the admin is user
  1): what the admin's deactivate/revoke/unit/department calls change on seeded rows is put
  back after each call, so one lucky example does not lock every later one out.
* A failure names the principal and operation and shows schemathesis' report: the failed
  check, the response, and a ``curl`` command that reproduces the request.

Deviations from the default check set, each with its reason:

* ``positive_data_acceptance`` is replaced by ``_schema_valid_input_parses`` below. The API
  refuses some schema-valid input on purpose with documented domain codes (``invalid_input``:
  control characters anywhere in the URL, a working duration such as "0000000", an end date
  before the start; ``invalid_bbox``, ``invalid_time_range``, ...), none of which JSON Schema
  can express. What the check exists to catch — the request models refusing what the
  document allows — is a 422 ``validation_error``, which the replacement still fails on,
  except for the few rules JSON Schema cannot state (``EXPECTED_ISSUES``).
* ``negative_data_rejection`` and ``missing_required_header`` also accept 412 (tus:
  ``Tus-Resumable`` missing or wrong, checked first as the tus protocol asks) and 413 (more
  than 200 mutations in a push: ``batch_too_large``); both are rejections.
* ``allow_header_conformance`` and ``unsupported_method`` are off for
  ``POST /api/v1/categories/import``: at that path a GET is routed to
  ``GET /api/v1/categories/{code}``, which answers 422 ``validation_error`` for the code
  "import" (not 405), and ``Allow`` names GET, although the document lists only POST there.
* tus requests (``/api/v1/uploads``) get ``Tus-Resumable: 1.0.0`` unless the generated case
  sets that header itself: the document marks it optional (a missing one must be a 412, not a
  422), and without it no request would get past the version check.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi
from sqlalchemy import inspect, select, update

from backend.accounts.models import Role, User
from backend.cases.models import Department
from backend.core.db import transaction
from backend.core.problems import PROBLEM_MEDIA_TYPE as PROBLEM
from backend.devices.models import Device
from tests.api.test_grids_api import assert_problem
from tests.support import databases
from tests.support.apps import ApiHarness, embedded_settings, make_harness, production_settings
from tests.support.case_flow import DEPARTMENT, CaseCity, case_city
from tests.support.sync import device_headers

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.yaml"

# tus PATCH bodies (documented as application/offset+octet-stream) are plain bytes.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")

# The phone's device id while the "device" principal runs (see before_call).
SYNC_DEVICE: ContextVar[str | None] = ContextVar("SYNC_DEVICE", default=None)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Sync bodies name the calling device; a generated id is refused before anything else
    (403 device_mismatch), so the phone's own id goes in. Done here, where schemathesis
    re-checks whether the case still is positive or negative."""
    device = SYNC_DEVICE.get()
    body = case.body
    on_sync = case.path.startswith("/api/v1/sync/")
    if device and on_sync and isinstance(body, dict) and "device_id" in body:
        body["device_id"] = device


# Examples per operation in the fuzzing phase (positive and negative together), per
# principal; the admin also runs the coverage phase (~2,000 requests per profile). Sized so
# the fuzzing stays under three minutes on a 2-core machine.
FUZZ_EXAMPLES = 10
PHONE_FUZZ_EXAMPLES = 15  # the device token runs on the 11 phone operations only

# principal -> the user whose token it uses (see _seed); "device" is zhangwei's phone.
PRINCIPALS = (
    "inspector",
    "device",
    "department_handler",
    "intake_operator",
    "shift_lead",
    "dispatcher",
    "admin",  # last: its writes change the city the others would see
)
COVERAGE_PRINCIPALS = {"admin"}
# The phone's device token is fuzzed where phones go; as the inspector it is, it would see
# everything else exactly as the "inspector" principal does.
PHONE_PATHS = r"^/api/v1/(sync|uploads|photos|reports)(/|$)"

# Rows the admin's calls may change on seeded principals (put back after each such call).
RESTORED_OPERATIONS = {
    "POST /api/v1/users/{user_id}/deactivate",
    "POST /api/v1/users/{user_id}/unit",
    "POST /api/v1/users/{user_id}/department",
    "POST /api/v1/devices/{device_id}/revoke",
    "PUT /api/v1/departments",
}
RESTORED_COLUMNS = {
    User: ("is_active", "token_version", "unit_code", "department_code"),
    Device: ("revoked_at", "revoked_by"),
    Department: ("name", "kind", "unit_code", "active"),
}

REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422"]
CONFIG: dict[str, Any] = {
    "generation": {
        "deterministic": True,
        # Every request carries the principal's token (below); no generated Authorization.
        "with-security-parameters": False,
    },
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        "negative_data_rejection": {"expected-statuses": [*REJECTIONS, "428", "429", "5xx"]},
        "missing_required_header": {"expected-statuses": REJECTIONS},
    },
    "operations": [
        {
            "include-operation-id": "importCategories",
            "checks": {
                "allow_header_conformance": {"enabled": False},
                "unsupported_method": {"enabled": False},
            },
        }
    ],
}

HYPOTHESIS = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class FuzzCity:
    flow: CaseCity
    headers: dict[str, dict[str, str]]
    device_id: str
    saved: dict[type, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def harness(self) -> ApiHarness:
        return self.flow.city.api

    def save(self) -> None:
        with transaction(self.harness.runtime.sessions) as session:
            for model, columns in RESTORED_COLUMNS.items():
                key = inspect(model).primary_key[0].name
                self.saved[model] = [
                    {name: getattr(row, name) for name in (key, *columns)}
                    for row in session.scalars(select(model))
                ]

    def restore(self) -> None:
        with transaction(self.harness.runtime.sessions) as session:
            for model, rows in self.saved.items():
                key: str = inspect(model).primary_key[0].name
                for row in rows:
                    values = {k: v for k, v in row.items() if k != key}
                    column = getattr(model, key)
                    session.execute(update(model).where(column == row[key]).values(**values))


def _seed(api: ApiHarness, tmp: Path) -> FuzzCity:
    flow = case_city(api, tmp)
    _report, dispatched = flow.report("zhangwei", grid=0)
    flow.ok("intake", dispatched, "file")
    flow.ok("dispatch", dispatched, "dispatch", department_code=DEPARTMENT)
    flow.report("lina", grid=5)
    headers = {
        "inspector": flow.headers["zhangwei"],
        "device": device_headers(flow.phone("zhangwei")),
        "department_handler": flow.headers["handler"],
        "intake_operator": flow.headers["intake"],
        "shift_lead": flow.headers["lead"],
        "dispatcher": flow.headers["dispatch"],
        "admin": flow.city.admin,
    }
    device_id = flow.phone("zhangwei").device_id
    assert device_id is not None
    city = FuzzCity(flow, headers, device_id)
    city.save()
    return city


@contextmanager
def _running(harness: ApiHarness, tmp: Path) -> Iterator[FuzzCity]:
    try:
        yield _seed(harness, tmp)
    finally:
        # schemathesis' ASGI transport started the app's lifespan (grid index, and on the
        # embedded profile the in-process worker); it would otherwise run until exit.
        asgi.shutdown_lifespans()
        harness.client.close()
        harness.runtime.close()


@pytest.fixture(scope="module", params=("embedded", "production"))
def fuzz_city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzCity]:
    """One seeded city per profile, shared by the principals (fuzzing is mostly reads and
    refusals; the admin runs last and seeded principals are restored)."""
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "embedded":
        url = databases.clone_sqlite(request.getfixturevalue("sqlite_template"), tmp / "db")
        with _running(make_harness("embedded", embedded_settings(url, tmp / "var")), tmp) as city:
            yield city
        return
    service = request.getfixturevalue("postgis_service")
    template = request.getfixturevalue("postgis_template")
    s3 = request.getfixturevalue("s3_service")
    with databases.postgis_clone(service.admin_url, template) as url:
        profile = production_settings(url, s3, tmp / "var")
        with _running(make_harness("production", profile), tmp) as city:
            yield city


# validation_error issues that schema-valid input may still cause, by design:
# NUL characters (refused everywhere), text that is only white space (NonBlankText; Python's
# notion of white space, which JSON Schema cannot express), and integral floats such as 1.0
# for integers (JSON Schema counts them as integers; the request models take only integers).
EXPECTED_ISSUES = ("NUL characters", "must not be blank")


def _expected_issue(issue: dict[str, Any]) -> bool:
    return issue.get("type") == "int_type" or any(
        text in str(issue.get("msg", "")) for text in EXPECTED_ISSUES
    )


def _schema_valid_input_parses(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schema-valid input must not be a ``validation_error`` (see the module docstring)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code != 422 or not response.content:  # HEAD: no body
        return None
    problem = response.json()
    issues = problem.get("errors") or []
    if problem.get("code") == "validation_error" and not all(map(_expected_issue, issues)):
        raise AssertionError(
            f"Schema-valid request refused by the request models: {problem.get('detail')}"
        )
    return None


def _schema(city: FuzzCity, principal: str) -> Any:
    config = dict(CONFIG)
    if principal not in COVERAGE_PRINCIPALS:
        config["phases"] = {"coverage": {"enabled": False}}
    schema = schemathesis.openapi.from_path(OPENAPI, config=schemathesis.Config.from_dict(config))
    schema.app = city.harness.client.app
    return schema


def _operation_test(schema: Any, operation: Any, test: Callable[..., None]) -> Callable[[], None]:
    """The Hypothesis test schemathesis' pytest plugin builds for one operation (examples,
    coverage and fuzzing phases as configured). ``schema.parametrize()`` itself cannot be
    used: schemathesis 4.32 renames pytest nodes through ``Node._nodeid``, which pytest 9.2
    no longer has."""
    from schemathesis.generation.feedback import FeedbackSources
    from schemathesis.pytest._test_builder import build_operation_test

    return build_operation_test(
        config=schema.config,
        operation=operation,
        test_func=test,
        given_kwargs={},
        feedback=FeedbackSources(),
    )


def _report(principal: str, label: str, exc: BaseException) -> str:
    if isinstance(exc, FailureGroup):
        text = exc.message.strip()
    else:
        text = "".join(traceback.format_exception(exc)).strip()
    return f"=== {label} as {principal}\n{text}"


@pytest.mark.parametrize("principal", PRINCIPALS)
def test_openapi_fuzz(fuzz_city: FuzzCity, principal: str) -> None:
    schema = _schema(fuzz_city, principal)
    token = fuzz_city.headers[principal]

    examples = FUZZ_EXAMPLES
    if principal == "device":
        schema = schema.include(path_regex=PHONE_PATHS)
        examples = PHONE_FUZZ_EXAMPLES

    @settings(HYPOTHESIS, max_examples=examples)
    def call(case: Any) -> None:
        headers = dict(token)
        if case.path.startswith("/api/v1/uploads") and not any(
            name.lower() == "tus-resumable" for name in case.headers or {}
        ):
            headers["Tus-Resumable"] = "1.0.0"
        try:
            case.call_and_validate(headers=headers, additional_checks=[_schema_valid_input_parses])
        finally:
            if case.operation.label in RESTORED_OPERATIONS:
                fuzz_city.restore()

    failures = []
    device = SYNC_DEVICE.set(fuzz_city.device_id if principal == "device" else None)
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                _operation_test(schema, operation, call)()
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(_report(principal, operation.label, exc))
    finally:
        SYNC_DEVICE.reset(device)
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# --------------------------------------------------------------------------------------------
# Regression tests for what the fuzzing found (each ran into a check above before the fix).

SPEC = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def _documented(path: str, method: str, status: int, media_type: str) -> dict[str, Any]:
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} does not document {status}"
    content = responses[str(status)].get("content", {})
    assert media_type in content, f"{method.upper()} {path} {status}: no {media_type}"
    return dict(content[media_type])


def test_405_allow_names_every_method_of_the_resource(api: ApiHarness) -> None:
    # Starlette named only the methods of the first route with the path (RFC 9110 §15.5.6).
    for method, path, allow in (
        ("OPTIONS", "/api/v1/users", "GET, POST"),
        ("PATCH", "/api/v1/departments", "GET, PUT"),
        ("GET", f"/api/v1/uploads/{'0' * 36}", "DELETE, HEAD, PATCH"),
    ):
        response = api.client.request(method, path)
        assert_problem(response, 405, "method_not_allowed")
        assert response.headers["allow"] == allow, (method, path)


def test_problem_documents_are_described_for_problem_json() -> None:
    # The Problem schema was attached to application/json only; errors are problem+json.
    schema = _documented("/api/v1/users", "get", 401, PROBLEM)["schema"]
    assert schema == {"$ref": "#/components/schemas/Problem"}


def test_malformed_form_and_oversized_push_are_documented(api: ApiHarness) -> None:
    admin = api.token_for("admin", Role.admin)
    broken = api.client.post(
        "/api/v1/calendar/import",
        content=b"not a multipart body",
        headers={**admin, "content-type": "multipart/form-data; boundary=b"},
    )
    assert_problem(broken, 400, "bad_request")
    _documented("/api/v1/calendar/import", "post", 400, PROBLEM)
    _documented("/api/v1/sync/push", "post", 413, PROBLEM)  # batch_too_large


def test_tus_answers_are_documented(api: ApiHarness) -> None:
    headers = api.token_for("inspector01")
    created = api.client.post("/api/v1/uploads", headers={**headers, "Upload-Length": "10"})
    assert_problem(created, 412, "tus_version_unsupported")
    for method, status in (("post", 412), ("head", 404), ("patch", 460), ("delete", 410)):
        path = "/api/v1/uploads" if method == "post" else "/api/v1/uploads/{upload_id}"
        _documented(path, method, status, PROBLEM)
    patch = SPEC["paths"]["/api/v1/uploads/{upload_id}"]["patch"]
    assert "application/offset+octet-stream" in patch["requestBody"]["content"]


def test_yaml_files_are_documented(api: ApiHarness) -> None:
    headers = api.token_for("viewer")
    for path in ("/api/v1/calendar", "/api/v1/categories/export"):
        answer = api.client.get(path, params={"format": "yaml"}, headers=headers)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(
            "application/yaml"
        )
        _documented(path, "get", 200, "application/yaml")


ASSIGNMENT_AT_ZERO = {"kind": "unit", "role": "责任单位", "assignee_name": "x", "effective_from": 0}
DEPARTMENT_ACTIVE_ZERO = {"code": "d-1", "name": "d", "kind": "other", "active": 0}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        # Pydantic read numbers as Unix timestamps: created_to=0.5 meant 1970-01-01T00:00:00.5Z.
        ("get", "/api/v1/cases", {"params": {"created_to": "0.5"}}, "created_to"),
        ("get", "/api/v1/cases/export.geojson", {"params": {"created_from": "1700000000"}},
         "created_from"),
        ("get", "/api/v1/calendar/deadline", {"params": {"start": "0", "limit": "4h"}}, "start"),
        ("get", "/api/v1/grids/330106001001001/assignments", {"params": {"at": "0"}}, "at"),
        ("post", "/api/v1/grids/330106001001001/assignments", {"json": ASSIGNMENT_AT_ZERO},
         "effective_from"),
        # A boolean, not 0/1.
        ("put", "/api/v1/departments", {"json": DEPARTMENT_ACTIVE_ZERO}, "active"),
    ],
)  # fmt: skip
def test_times_dates_and_booleans_must_have_their_documented_type(
    api: ApiHarness, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    admin = api.token_for("admin", Role.admin)
    response = getattr(api.client, method)(path, headers=admin, **kwargs)
    problem = assert_problem(response, 422, "validation_error")
    assert [issue["loc"][-1] for issue in problem["errors"]] == [field], problem


def test_rfc3339_times_and_dates_still_work(api: ApiHarness) -> None:
    admin = api.token_for("admin", Role.admin)
    for params in (
        {"created_from": "2026-11-02T10:00:00+08:00", "created_to": "2026-11-02T04:00Z"},
        {"created_from": "2026-11-02 10:00:00.5+0800"},
    ):
        assert api.client.get("/api/v1/cases", params=params, headers=admin).status_code == 200
    naive = {"created_from": "2026-11-02T09:00:00"}  # still the endpoint's own code
    answer = api.client.get("/api/v1/cases", params=naive, headers=admin)
    assert_problem(answer, 422, "invalid_time_range")
    deadline = {"start": "2026-11-23T09:00:00+08:00", "limit": "4h"}
    assert api.client.get("/api/v1/calendar/deadline", params=deadline, headers=admin).is_success
    at = api.client.get(
        "/api/v1/grids/330106001001001/assignments", params={"at": "2026-11-23"}, headers=admin
    )
    assert at.status_code in (200, 404), at.text  # the date parses; the grid may not exist
