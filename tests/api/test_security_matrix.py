"""Authorization over EVERY endpoint × role × scope, on both profiles.

``ACCESS`` is the access rule of every operation the app serves (operationId; routes without
one by path). The first test fails when a route is added without a rule, or a rule outlives
its route: a new endpoint cannot ship without saying who may call it.

The matrix then sends one request per operation (per action, for case actions) as each
principal: anonymous, an admin, each command-centre role with a unit inside and outside the
case's, department handlers of the case's department and another, the reporting inspector
and another inspector, each with a password token and with their phone's device token. An
allowed request must get exactly the status of its probe — chosen so the request is
authorized but stopped before it changes anything (a stale ``expected_version``, an unknown
id, a file refused whole, a dry run) or changes nothing that matters (reads; a new hotline
case) — and a refused one 403, or 404 where the API deliberately does not say whether
something exists.

What answers 404 instead of 403 (and why): a photo's upload endpoints (``upload-target``,
``complete``, tus) and tus uploads belong to the reporting inspector alone — nobody else,
not even an admin, uploads evidence in their name — so to everyone else they answer as if
the photo or upload did not exist (``photo_not_declared``/``upload_not_found``); ids of
uploads in progress cannot be probed. Shared objects (cases, reports, photo metadata) answer
403 ``case_out_of_scope``/``forbidden`` outside one's scope: their existence is not a secret
(case ids are sequential; report and photo ids are random UUIDs).

Authentication and authorization run before body validation (FastAPI resolves dependencies
before it reports a body's or parameter's errors), so a 422 never hides a 401/403: the
second test sends schema-invalid requests to every operation without a token and as an
inspector. The exceptions, where nothing is revealed: a body that is not JSON at all is 422
before authentication, and tus requests without ``Tus-Resumable`` are 412.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mapbox_vector_tile
import pytest
from fastapi import APIRouter, routing
from sqlalchemy import update

from backend.accounts.models import Role
from backend.cases.lifecycle import ACTIONS
from backend.cases.models import Case
from backend.core.db import transaction
from tests.support.apps import ApiHarness
from tests.support.case_flow import DEPARTMENT, OTHER_DEPARTMENT, CaseCity, case_city
from tests.support.photos import TUS, TusByHand, declaration, jpeg_with_exif
from tests.support.sync import device_headers
from tests.support.sync_city import APP_VERSION

INSIDE, OUTSIDE = "330106001001", "330106001003"  # communities: grid 0 lies in the first
STALE = 10**6
MISSING_ID = 999_999
COMMAND_CENTRE = frozenset({Role.intake_operator, Role.shift_lead, Role.dispatcher})


# -- who asks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role | None  # None: no token at all
    unit_inside: bool | None = None  # command centre: is the case in their unit?
    own_department: bool | None = None  # department handlers: is it dispatched to theirs?
    owner: bool = False  # the reporting inspector (owner of the report, photos, uploads)
    device: bool = False  # a device token (enrolled phone) rather than a password token

    @property
    def anonymous(self) -> bool:
        return self.role is None

    def sees_case(self) -> bool:
        """``review.visible_to`` (and ``media.may_see``) for the matrix's case."""
        if self.role is Role.admin:
            return True
        if self.role in COMMAND_CENTRE:
            return bool(self.unit_inside)
        if self.role is Role.department_handler:
            return bool(self.own_department)
        return self.owner

    def covers_case(self) -> bool:
        """``scope.covers`` for the case's grid: admins and command centre in the unit."""
        return self.role is Role.admin or (self.role in COMMAND_CENTRE and bool(self.unit_inside))


PRINCIPALS = (
    Principal("anonymous", None),
    Principal("admin", Role.admin),
    Principal("intake-in", Role.intake_operator, unit_inside=True),
    Principal("intake-out", Role.intake_operator, unit_inside=False),
    Principal("lead-in", Role.shift_lead, unit_inside=True),
    Principal("lead-out", Role.shift_lead, unit_inside=False),
    Principal("dispatch-in", Role.dispatcher, unit_inside=True),
    Principal("dispatch-out", Role.dispatcher, unit_inside=False),
    Principal("handler-own", Role.department_handler, own_department=True),
    Principal("handler-other", Role.department_handler, own_department=False),
    Principal("zhangwei", Role.inspector, owner=True),
    Principal("zhangwei-phone", Role.inspector, owner=True, device=True),
    Principal("lina", Role.inspector),
    Principal("lina-phone", Role.inspector, device=True),
)


# -- the rules --------------------------------------------------------------------------------

ALLOW, FORBIDDEN, HIDDEN, UNAUTHENTICATED = "allow", 403, 404, 401
Outcome = str | int


class Rule:
    """Who may call an operation. ``decide`` → ALLOW, 401, 403 or 404."""

    public = False

    def decide(self, who: Principal, probe: Probe) -> Outcome:
        if who.anonymous:
            return UNAUTHENTICATED
        return self.authorized(who, probe)

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        raise NotImplementedError


class Public(Rule):
    """No token needed (a token changes nothing): health, docs, login, enrollment, device
    token exchange, tus discovery, metrics, and the local store's signed media URLs (the
    URL's grant is the credential)."""

    public = True

    def decide(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW


class Authenticated(Rule):
    """Any signed-in user or phone (reference data: grids, categories, calendar, ...)."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW


@dataclass(frozen=True)
class Roles(Rule):
    """One of ``roles``; with ``covers``: and the case's grid in their unit (scope.covers);
    with ``sees``: and the case visible to them (review.visible_to)."""

    roles: frozenset[Role]
    covers: bool = False
    sees: bool = False

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        if who.role not in self.roles:
            return FORBIDDEN
        if self.covers and not who.covers_case():
            return FORBIDDEN
        if self.sees and not who.sees_case():
            return FORBIDDEN
        return ALLOW


class SeesCase(Rule):
    """Any role, if the case (its report, its photo) is within their scope; else 403."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW if who.sees_case() else FORBIDDEN


class Listed(Rule):
    """Any role may ask; the answer holds the case exactly if it is within their scope."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW


class CaseAction(Rule):
    """``service.act``: the action's roles (lifecycle.ACTIONS) and the case in scope."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        action = ACTIONS[probe.detail]
        return ALLOW if who.role in action.roles and who.sees_case() else FORBIDDEN


class OwnDevice(Rule):
    """Sync: a device token (a password token is 403 device_token_required), for the
    device the body names (another phone's id is 403 device_mismatch)."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW if who.device and who.owner else FORBIDDEN


class Owner(Rule):
    """The reporting inspector, with either token; to everyone else it does not exist."""

    def authorized(self, who: Principal, probe: Probe) -> Outcome:
        return ALLOW if who.owner else HIDDEN


ADMIN = Roles(frozenset({Role.admin}))
INTAKE = Roles(frozenset({Role.intake_operator, Role.shift_lead, Role.admin}), covers=True)
COORDINATORS = Roles(
    frozenset({Role.intake_operator, Role.shift_lead, Role.dispatcher, Role.admin}), covers=True
)
VERIFIER_ASSIGNERS = Roles(frozenset({Role.shift_lead, Role.dispatcher, Role.admin}), sees=True)

#: Every operation the app serves → who may call it. Add a row with every new endpoint.
ACCESS: dict[str, Rule] = {
    # infrastructure and documentation
    "healthz": Public(),
    "readyz": Public(),
    "GET /metrics": Public(),
    "GET /openapi.json": Public(),
    "GET /docs": Public(),
    "GET /docs/oauth2-redirect": Public(),
    "GET /redoc": Public(),
    # accounts
    "login": Public(),
    "whoami": Authenticated(),
    "createUser": ADMIN,
    "listUsers": ADMIN,
    "setUserUnit": ADMIN,
    "deactivateUser": ADMIN,
    "setUserDepartment": ADMIN,
    # devices
    "createEnrollmentCode": ADMIN,
    "enrollDevice": Public(),
    "deviceToken": Public(),
    "listDevices": ADMIN,
    "revokeDevice": ADMIN,
    # sync
    "syncPush": OwnDevice(),
    "syncPull": OwnDevice(),
    # reports, cases, review
    "getReport": SeesCase(),
    "getCase": SeesCase(),
    "createCase": INTAKE,
    "actOnCase": CaseAction(),
    "assignVerifier": VERIFIER_ASSIGNERS,
    "listCaseDuplicates": COORDINATORS,
    "listCases": Listed(),
    "exportCases": Listed(),
    "caseTile": Listed(),
    "listOverdueCases": Listed(),
    "listDepartments": Authenticated(),
    "putDepartment": ADMIN,
    # photos and uploads
    "photoUploadTarget": Owner(),
    "photoUploadComplete": Owner(),
    "getPhoto": SeesCase(),
    "localDirectUpload": Public(),
    "localSignedDownload": Public(),
    "tusOptions": Public(),
    "tusCreate": Owner(),
    "tusHead": Owner(),
    "tusPatch": Owner(),
    "tusTerminate": Owner(),
    # reference data
    "listCategories": Authenticated(),
    "getCategory": Authenticated(),
    "exportCategories": Authenticated(),
    "importCategories": ADMIN,
    "getCalendar": Authenticated(),
    "calendarDeadline": Authenticated(),
    "importCalendar": ADMIN,
    # grids
    "listGridVersions": Authenticated(),
    "getGridVersion": Authenticated(),
    "importGridVersion": ADMIN,
    "activateGridVersion": ADMIN,
    "listGrids": Authenticated(),
    "lookupGrid": Authenticated(),
    "getGrid": Authenticated(),
    "gridTile": Authenticated(),
    "listGridAssignments": Authenticated(),
    "assignGrid": ADMIN,
    "endGridAssignment": ADMIN,
}


def served_operations(app: Any) -> dict[str, tuple[str, str]]:
    """operationId (or "METHOD path") → (method, path) of every route the app serves."""
    iterate = getattr(routing, "iter_route_contexts", None)  # FastAPI's included routers
    contexts: list[Any] = list(iterate(app.routes)) if iterate else list(app.routes)
    found: dict[str, tuple[str, str]] = {}
    for context in contexts:
        route = getattr(context, "original_route", context)
        path = context.path
        methods = sorted(set(context.methods or ()) - {"HEAD"}) or sorted(context.methods or ())
        operation_id = getattr(route, "operation_id", None)
        for method in methods:
            key = operation_id or f"{method} {path}"
            assert key not in found, f"two routes answer as {key}"
            found[key] = (method, path)
    return found


# -- the probes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request, the statuses that mean "allowed" and, optionally, the problem code."""

    operation: str
    method: str
    path: str
    allowed: tuple[int, ...]
    code: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    detail: str = ""  # e.g. the case action
    listed: Callable[[Any], set[int]] | None = None  # ids in a list answer

    def send(self, client: Any, headers: dict[str, str]) -> Any:
        kwargs = dict(self.kwargs)
        kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
        return client.request(self.method, self.path, **kwargs)


@dataclass
class World:
    flow: CaseCity
    profile: str
    case_id: int
    report_id: str
    photo: dict[str, Any]  # stored photo: photo_id, sha256, size, content_type, links
    pending: dict[str, Any]  # declared photo with an open tus upload
    upload_id: str
    gone_upload_id: str
    device_id: str
    tile: tuple[int, int, int]
    version_id: int
    headers: dict[str, dict[str, str]]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def _tile_ids(answer: Any) -> set[int]:
    if answer.status_code == 204:
        return set()
    layers = mapbox_vector_tile.decode(answer.content)
    return {int(f["properties"]["id"]) for f in layers.get("cases", {}).get("features", [])}


def _build_world(api: ApiHarness, tmp: Path) -> World:
    settings = api.runtime.settings
    # The matrix makes a few dozen deliberately failed logins and enrollments from one
    # address; the limits have tests of their own (test_auth_limits.py).
    settings.login_max_failures_per_ip = settings.enroll_max_failures_per_ip = 10_000
    settings.device_token_max_failures_per_ip = settings.login_max_failures_per_user = 10_000
    flow = case_city(api, tmp)
    report_id, case_id = flow.report("zhangwei", grid=0)
    flow.ok("intake", case_id, "file")
    flow.ok("dispatch", case_id, "dispatch", department_code=DEPARTMENT)
    with transaction(api.runtime.sessions) as session:  # overdue, for the overdue list
        session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(step_deadline=datetime.now(UTC) - timedelta(hours=1))
        )
    for p in PRINCIPALS:
        if p.role in COMMAND_CENTRE:
            flow.user(p.name, p.role, unit=INSIDE if p.unit_inside else OUTSIDE)
    flow.user("handler-own", Role.department_handler, department=DEPARTMENT)
    flow.user("handler-other", Role.department_handler, department=OTHER_DEPARTMENT)
    flow.headers["admin"] = flow.city.admin
    zhang, li = flow.phone("zhangwei"), flow.phone("lina")
    headers = {
        "anonymous": {},
        "admin": flow.city.admin,
        "zhangwei-phone": device_headers(zhang),
        "lina-phone": device_headers(li),
        **{p.name: flow.headers[p.name] for p in PRINCIPALS if p.name in flow.headers},
    }
    detail = flow.case("admin", case_id)
    stored = detail["reports"][0]["photos"][0]
    photo = flow.client.get(f"/api/v1/photos/{stored['photo_id']}", headers=flow.city.admin)
    assert photo.status_code == 200, photo.text
    # Two more declared photos of zhangwei: one with an open tus upload, one terminated.
    pending, gone = (declaration(jpeg_with_exif(None, None, seed=s)) for s in (91, 92))
    zhang.create_report("0504", "待上传", "", flow.city.centre_of(0), photos=[pending, gone])
    assert zhang.push().results[-1].status.value == "applied"
    upload, created = TusByHand.start(flow.city, zhang, pending, pending["size"])
    assert created.status_code == 201, created.text
    ended, created = TusByHand.start(flow.city, zhang, gone, gone["size"])
    assert created.status_code == 201, created.text
    assert flow.client.delete(ended.url, headers=ended.headers).status_code == 204
    versions = flow.client.get("/api/v1/grid-versions", headers=flow.city.admin).json()["items"]
    return World(
        flow=flow,
        profile=api.profile,
        case_id=case_id,
        report_id=report_id,
        photo=photo.json(),
        pending=pending,
        upload_id=upload.upload_id,
        gone_upload_id=ended.upload_id,
        device_id=str(zhang.device_id),
        tile=_tile_of(detail["lon"], detail["lat"], 16),
        version_id=int(versions[0]["id"]),
        headers=headers,
    )


def _signed_path(world: World) -> str:
    """A genuine signed download path (embedded); on S3 our own media routes do not exist."""
    url = str(world.photo["links"]["original"])
    if world.profile == "embedded":
        assert "/api/v1/media/signed/" in url, url
        return url.removeprefix("http://testserver")
    return "/api/v1/media/signed/not.a-grant"


def _probes(world: World) -> dict[str, list[Probe]]:
    city, case_id = world.flow.city, world.case_id
    grid = city.codes[0]
    centre = city.geoms[0].centroid
    z, x, y = world.tile
    sync_body = {"protocol_version": 1, "app_version": APP_VERSION, "device_id": world.device_id}
    photo_id = world.photo["photo_id"]
    declared = {k: world.photo[k] for k in ("sha256", "size", "content_type")}
    metadata = "photo_id " + base64.b64encode(world.pending["photo_id"].encode()).decode()
    embedded = world.profile == "embedded"
    bad_file = {"file": ("bad.yaml", b"- [unclosed", "application/yaml")}
    assignment = {
        "kind": "person", "role": "网格员", "assignee_name": "某人", "assignee_ref": "x",
        "effective_from": "2026-01-02", "effective_to": "2026-01-01",
    }  # fmt: skip
    new_case = {
        "source": "hotline_12345", "category_code": "0102", "description": "来电：垃圾",
        "location": {"lon": centre.x, "lat": centre.y},
    }  # fmt: skip

    def ids(items_key: str) -> Callable[[Any], set[int]]:
        return lambda answer: {int(item["id"]) for item in answer.json()[items_key]}

    def p(
        op: str, method: str, path: str, *allowed: int, code: str | None = None, **kw: Any
    ) -> Probe:
        return Probe(op, method, path, allowed, code, **kw)

    table: list[Probe] = [
        p("healthz", "GET", "/healthz", 200),
        p("readyz", "GET", "/readyz", 200),
        p("GET /metrics", "GET", "/metrics", 200),
        p("GET /openapi.json", "GET", "/openapi.json", 200),
        p("GET /docs", "GET", "/docs", 200),
        p("GET /docs/oauth2-redirect", "GET", "/docs/oauth2-redirect", 200),
        p("GET /redoc", "GET", "/redoc", 200),
        p("login", "POST", "/api/v1/auth/token", 401, code="bad_credentials",
          kwargs={"json": {"username": "nobody-here", "password": "wrong password"}}),
        p("whoami", "GET", "/api/v1/auth/me", 200),
        p("createUser", "POST", "/api/v1/users", 409, code="username_taken",
          kwargs={"json": {"username": "lina", "password": "long enough", "role": "inspector"}}),
        p("listUsers", "GET", "/api/v1/users", 200),
        p("setUserUnit", "POST", f"/api/v1/users/{MISSING_ID}/unit", 404, code="user_not_found",
          kwargs={"json": {"unit_code": None}}),
        p("deactivateUser", "POST", f"/api/v1/users/{MISSING_ID}/deactivate", 404,
          code="user_not_found"),
        p("setUserDepartment", "POST", f"/api/v1/users/{MISSING_ID}/department", 404,
          code="user_not_found", kwargs={"json": {"department_code": None}}),
        p("createEnrollmentCode", "POST", f"/api/v1/users/{MISSING_ID}/enrollment-codes", 404,
          code="user_not_found"),
        p("enrollDevice", "POST", "/api/v1/devices/enroll", 401, code="enrollment_code_invalid",
          kwargs={"json": {"code": "AAAA-BBBB-CCCC", "device_name": "x", "platform": "android",
                           "app_version": APP_VERSION}}),
        p("deviceToken", "POST", "/api/v1/devices/token", 401, code="device_credentials_invalid",
          kwargs={"json": {"device_id": world.device_id, "device_secret": "xds1.wrong"}}),
        p("listDevices", "GET", "/api/v1/devices", 200),
        p("revokeDevice", "POST", f"/api/v1/devices/{'0' * 8}-0000-4000-8000-{'0' * 12}/revoke",
          404, code="device_not_found"),
        p("syncPush", "POST", "/api/v1/sync/push", 200,
          kwargs={"json": {**sync_body, "mutations": []}}),
        p("syncPull", "POST", "/api/v1/sync/pull", 200,
          kwargs={"json": {**sync_body, "cursor": None}}),
        p("getReport", "GET", f"/api/v1/reports/{world.report_id}", 200),
        p("getCase", "GET", f"/api/v1/cases/{case_id}", 200),
        p("createCase", "POST", "/api/v1/cases", 201, kwargs={"json": new_case}),
        p("assignVerifier", "POST", f"/api/v1/cases/{case_id}/verifier", 409,
          code="illegal_transition", kwargs={"json": {"username": "lina"}}),
        p("listCaseDuplicates", "GET", f"/api/v1/cases/{case_id}/duplicates", 200),
        p("listCases", "GET", "/api/v1/cases", 200, listed=ids("items")),
        p("exportCases", "GET", "/api/v1/cases/export.geojson", 200,
          listed=lambda a: {int(f["properties"]["id"]) for f in a.json()["features"]}),
        p("caseTile", "GET", f"/api/v1/tiles/cases/{z}/{x}/{y}.mvt", 200, 204, listed=_tile_ids),
        p("listOverdueCases", "GET", "/api/v1/cases/overdue", 200, listed=ids("items")),
        p("listDepartments", "GET", "/api/v1/departments", 200),
        p("putDepartment", "PUT", "/api/v1/departments", 200,
          kwargs={"json": {"code": OTHER_DEPARTMENT, "name": "西湖区环卫所",
                           "kind": "sanitation"}}),
        p("photoUploadTarget", "POST", f"/api/v1/photos/{photo_id}/upload-target", 200,
          kwargs={"json": declared}),
        p("photoUploadComplete", "POST", f"/api/v1/photos/{photo_id}/complete", 200),
        p("getPhoto", "GET", f"/api/v1/photos/{photo_id}", 200),
        p("localDirectUpload", "PUT", "/api/v1/media/direct/bm90.YS1ncmFudA",
          403 if embedded else 404,
          code="upload_grant_invalid" if embedded else "not_found",
          kwargs={"content": b"x", "headers": {"content-type": "image/jpeg"}}),
        p("localSignedDownload", "GET", _signed_path(world), 200 if embedded else 404),
        p("tusOptions", "OPTIONS", "/api/v1/uploads", 204),
        p("tusCreate", "POST", "/api/v1/uploads", 201,
          kwargs={"headers": {**TUS, "Upload-Length": str(world.pending["size"]),
                              "Upload-Metadata": metadata}}),
        p("tusHead", "HEAD", f"/api/v1/uploads/{world.upload_id}", 200, kwargs={"headers": TUS}),
        p("tusPatch", "PATCH", f"/api/v1/uploads/{world.upload_id}", 409,
          code="upload_offset_mismatch",
          kwargs={"content": b"x", "headers": {
              **TUS, "Upload-Offset": "999", "Content-Type": "application/offset+octet-stream"}}),
        p("tusTerminate", "DELETE", f"/api/v1/uploads/{world.gone_upload_id}", 410,
          code="upload_gone", kwargs={"headers": TUS}),
        p("listCategories", "GET", "/api/v1/categories", 200),
        p("getCategory", "GET", "/api/v1/categories/0999", 404, code="category_not_found"),
        p("exportCategories", "GET", "/api/v1/categories/export", 200),
        p("importCategories", "POST", "/api/v1/categories/import", 422,
          code="category_file_invalid", kwargs={"files": bad_file, "params": {"dry_run": "true"}}),
        p("getCalendar", "GET", "/api/v1/calendar", 200),
        p("calendarDeadline", "GET", "/api/v1/calendar/deadline", 200,
          kwargs={"params": {"start": "2026-11-23T09:00:00+08:00", "limit": "4h"}}),
        p("importCalendar", "POST", "/api/v1/calendar/import", 422, code="calendar_file_invalid",
          kwargs={"files": bad_file}),
        p("listGridVersions", "GET", "/api/v1/grid-versions", 200),
        p("getGridVersion", "GET", f"/api/v1/grid-versions/{world.version_id}", 200),
        p("importGridVersion", "POST", "/api/v1/grid-versions", 422, code="grid_file_unreadable",
          kwargs={"files": {"file": ("g.geojson", b"not a gis file", "application/geo+json")},
                  "data": {"crs": "EPSG:4490"}}),
        p("activateGridVersion", "POST", f"/api/v1/grid-versions/{MISSING_ID}/activate", 404,
          code="grid_version_not_found"),
        p("listGrids", "GET", "/api/v1/grids", 200),
        p("lookupGrid", "GET", "/api/v1/grids/lookup", 200,
          kwargs={"params": {"lon": centre.x, "lat": centre.y, "crs": "wgs84"}}),
        p("getGrid", "GET", f"/api/v1/grids/{grid}", 200),
        p("gridTile", "GET", f"/api/v1/tiles/grids/{z}/{x}/{y}.mvt", 200, 204),
        p("listGridAssignments", "GET", f"/api/v1/grids/{grid}/assignments", 200),
        p("assignGrid", "POST", f"/api/v1/grids/{grid}/assignments", 422, code="invalid_input",
          kwargs={"json": assignment}),
        p("endGridAssignment", "POST", f"/api/v1/grids/{grid}/assignments/{MISSING_ID}/end", 404,
          code="assignment_not_found", kwargs={"json": {"effective_to": "2026-01-02"}}),
    ]  # fmt: skip
    for action in (a for a in ACTIONS.values() if not a.by_phone):
        table.append(
            p("actOnCase", "POST", f"/api/v1/cases/{case_id}/actions/{action.name}", 409,
              code="case_changed", detail=action.name,
              kwargs={"json": {"expected_version": STALE, "comment": "x"}})
        )  # fmt: skip
    probes: dict[str, list[Probe]] = {}
    for probe in table:
        probes.setdefault(probe.operation, []).append(probe)
    return probes


# -- the tests --------------------------------------------------------------------------------


def test_every_route_has_an_access_rule(api: ApiHarness) -> None:
    served = served_operations(api.client.app)
    assert set(ACCESS) - set(served) == set(), "rules for routes that no longer exist"
    assert set(served) - set(ACCESS) == set(), "routes without an access rule in ACCESS"
    # And the published contract lists no operation the app does not serve.
    spec = api.client.get("/openapi.json").json()
    published = {op["operationId"] for item in spec["paths"].values() for op in item.values()}
    assert published <= set(served)
    # The enumeration sees routes however they are added: a new router's endpoint shows up
    # (and would fail the first assertion above until ACCESS says who may call it).
    extra = APIRouter(prefix="/api/v1")
    extra.add_api_route("/new-thing", lambda: {}, methods=["POST"], operation_id="newThing")
    api.client.app.include_router(extra)
    assert served_operations(api.client.app)["newThing"] == ("POST", "/api/v1/new-thing")
    assert "newThing" not in ACCESS


@pytest.fixture
def world(api: ApiHarness, tmp_path: Path) -> World:
    return _build_world(api, tmp_path)


def test_every_endpoint_role_and_scope(world: World) -> None:
    client = world.flow.client
    probes = _probes(world)
    served = served_operations(client.app)
    assert set(probes) == set(ACCESS) == set(served)
    wrong: list[str] = []
    checked = 0
    for operation, rule in ACCESS.items():
        for probe in probes[operation]:
            baseline = None
            for who in PRINCIPALS:
                answer = probe.send(client, world.headers[who.name])
                checked += 1
                label = f"{operation}{'/' + probe.detail if probe.detail else ''} as {who.name}"
                outcome = rule.decide(who, probe)
                status = answer.status_code
                if rule.public:
                    baseline = status if baseline is None else baseline
                    if status != baseline:
                        wrong.append(f"{label}: {status}, anonymous got {baseline}")
                if outcome == ALLOW:
                    if status not in probe.allowed:
                        wrong.append(f"{label}: {status}, expected {probe.allowed}: {answer.text}")
                    elif probe.code and answer.json().get("code") != probe.code:
                        wrong.append(f"{label}: code {answer.json().get('code')} != {probe.code}")
                    elif probe.listed is not None:
                        shown = world.case_id in probe.listed(answer)
                        if shown != who.sees_case():
                            wrong.append(
                                f"{label}: case listed={shown}, in scope={who.sees_case()}"
                            )
                elif status != outcome:
                    wrong.append(f"{label}: {status}, expected {outcome}: {answer.text[:200]}")
    assert wrong == [], "\n".join(wrong)
    rows = sum(len(v) for v in probes.values())
    assert checked == rows * len(PRINCIPALS)
    # Nothing the probes touched moved: the case is where the set-up left it.
    after = world.flow.case("admin", world.case_id)
    assert (after["status"], after["version"]) == ("dispatched", 3)
    _check_auth_precedes_validation(world)


def _check_auth_precedes_validation(world: World) -> None:
    """Schema-invalid requests (bad body, bad parameters) get 401 without a token and 403 as
    an inspector on admin operations: no 422 hides the authorization answer."""
    client = world.flow.client
    inspector = world.headers["lina"]
    checked = 0
    for operation, probes in _probes(world).items():
        rule = ACCESS[operation]
        if rule.public:
            continue
        probe = probes[0]
        kwargs = dict(probe.kwargs)
        if "json" in kwargs:
            kwargs["json"] = {"unexpected": [1], "expected_version": -1}
        kwargs["params"] = {**kwargs.get("params", {}), "limit": "-5", "lon": "east"}
        junk = Probe(operation, probe.method, probe.path, probe.allowed, kwargs=kwargs)
        anonymous = junk.send(client, {})
        assert anonymous.status_code == 401, (operation, anonymous.text)
        if probe.method != "HEAD":  # no body to a HEAD
            assert anonymous.json()["code"] == "unauthenticated", operation
        if rule is ADMIN:
            refused = junk.send(client, inspector)
            assert refused.status_code == 403, (operation, refused.text)
        checked += 1
    assert checked >= 45
