"""The bad-input corpus (issue 6, item 4): hostile and malformed input on both profiles.

Each entry goes to every endpoint where it applies. A bad entry must be answered 4xx with an
``application/problem+json`` document whose ``code`` is listed in docs/api-errors.md, and
must leave nothing behind: the row counts of every table a request can write, the content of
the rows a request can change in place and the object store's keys are compared before and
after (``tests/support/stored.py``). Two exceptions are the protocol's: a sync mutation with
bad arguments is a ``rejected`` result inside a 200 (its stored result and the device's
``last_mutation_id`` are its only trace), and a bad pull cursor answers ``reset: true``.
Odd input that is legitimate (right-to-left text, emoji sequences, combining marks, a JPEG
with bytes after its end marker) must instead be accepted and come back exactly as sent.

The corpus shares one small city per profile (module-scoped, so the file stays fast); every
refused request is checked against the state just before it.

The corpus, and where each entry is tested (``also:`` tests elsewhere that cover it already):

* Malformed JSON -- truncated, trailing garbage, two documents, an array/string/number/null/
  ``NaN`` as the document, empty, single quotes, comments, nested 1 000 and 100 000 deep,
  not UTF-8, Latin-1 -- on all 15 JSON endpoints: ``test_malformed_json_is_refused_everywhere``.
  Also: test_grids_api ``test_problem_documents_for_malformed_requests``, test_sync_edge_cases
  ``test_deeply_nested_json_is_a_problem``. Duplicate keys are not an error, the last one
  wins (RFC 8259 leaves it open): ``test_another_devices_id_in_a_body``.
* Malformed multipart (no boundary, garbage, 2 000 parts, a 100 kB part header):
  ``test_malformed_multipart_is_refused``.
* Oversized bodies -- JSON above the request limit on every JSON endpoint, a grid file above
  its limit, a photo declared above the photo limit: ``test_bodies_over_the_configured_limits``;
  a category or calendar file above its limit: ``test_bad_category_files_are_refused``,
  ``test_bad_calendar_files_are_refused``. Also: test_robustness
  ``test_oversized_bodies_are_refused_before_parsing`` (Content-Length, chunked), test_sync_api
  ``test_oversized_push_and_foreign_report_reads_are_refused`` (1 MiB push),
  ``test_bad_push_messages_are_problems`` (201 mutations), test_photos_api
  ``test_bomb_and_oversize_and_undeclared`` (tus Upload-Length).
* Wrong types, per field family -- numbers as strings/booleans/lists/null, integers as
  floats/strings/booleans, booleans as ``0``/``"no"``/``"false"``/null, strings as numbers or
  lists, enums outside their set, dates as numbers or non-ISO text, objects as strings or
  lists, whitespace-only names: ``test_wrong_types_are_refused`` (REST),
  ``test_bad_mutation_arguments_are_rejected`` (sync).
* Coordinates out of range; ``NaN``/``Infinity`` as JSON literals and as strings; ``1e400``
  and 400-digit numbers: ``test_wrong_types_are_refused`` (case locations, lookups),
  ``test_bad_grid_files_are_refused``, ``test_bad_mutation_arguments_are_rejected``. Also:
  test_grids_api ``test_lookup_flags_outside_and_rejects_bad_input``, test_sync_edge_cases
  ``test_values_that_can_never_apply_are_rejected_not_500``.
* Unknown coordinate systems (names we do not know, ``EPSG:4326`` where a name is expected,
  wrong case, Beijing 1954, PROJ strings, WKT, huge or negative EPSG codes):
  ``test_wrong_types_are_refused``, ``test_unknown_crs_on_grid_import``,
  ``test_bad_mutation_arguments_are_rejected``. Also: test_crs (unit).
* Grid polygons -- self-intersecting, unclosed, too few points, a one-point ring, empty, null,
  zero area, a hole outside its shell, points and lines, out of range, NaN/Infinity, strings
  as coordinates, projected coordinates declared as lon/lat, swapped axes:
  ``test_bad_grid_files_are_refused``. Also: test_grids_api
  ``test_refuse_mode_rejects_invalid_polygon_and_repair_mode_repairs``, test_grid_quality.
* Grid files -- an empty collection, truncated, HTML, UTF-16, JPEG, nested 100 000 deep,
  ``\\u0000`` and lone-surrogate escapes, zip traversal/truncation/nesting, a zip bomb by its
  declared size, a fake GeoPackage, KML with XXE or billion laughs, bad form fields:
  ``test_bad_grid_files_are_refused``. Also: test_grid_readers (bombs, lying sizes, fuzzing).
* Category and calendar files -- not UTF-8, truncated, nested deep, YAML aliases, Python tags,
  NUL and lone surrogates in text, NaN/strings/booleans as numbers, ``version: true``, unknown
  zones and fields, impossible hours and dates: ``test_bad_category_files_are_refused``,
  ``test_bad_calendar_files_are_refused``. Also: test_categories_taxonomy (unit).
* Images -- a GIF named JPEG, ZIP before a JPEG, HTML behind JPEG magic, HTML, SVG, a header
  claiming 4 gigapixels, a PNG bomb, one byte, SOI+EOI only, by presigned PUT and by tus:
  ``test_bad_photos_are_refused_on_both_paths``. Accepted: a JPEG with a ZIP appended after
  its end marker (phones append data there), ``test_a_jpeg_with_an_appended_archive_is_kept_
  byte_for_byte``. Also: test_photos_api (truncated, PDF, PNG bomb by PUT), test_media_inspect,
  test_media_structure.
* Upload requests -- bad photo ids, lengths, offsets, metadata, checksums, content types, tus
  versions and method overrides: ``test_bad_upload_requests_are_refused``.
* Invalid text -- lone high/low surrogates, a reversed pair, NUL -- in every text field of
  every endpoint and file: ``test_invalid_text_is_refused_everywhere``,
  ``test_invalid_text_in_mutations_is_rejected``; control characters, spaces, bidi overrides
  and emoji in usernames: ``test_usernames_keep_their_rules``. Also: test_robustness
  ``test_nul_in_bodies_and_forms_is_refused_on_both_profiles``,
  ``test_control_characters_in_urls_are_refused``.
* Legitimate odd text -- RTL scripts and bidi overrides, ZWJ emoji, combining marks, 4-byte
  characters, flags and variation selectors, zero-width characters, full-width and ideographic
  spaces, line/paragraph separators, tabs and newlines, a BOM inside text, control characters
  in free text (accepted by the current rules) -- through users, cases, comments, departments,
  assignments, devices, reports via sync, category files and grid files:
  ``test_legitimate_odd_text_round_trips_exactly``.
* Tokens -- missing, another scheme, empty, an edited payload, another key's signature,
  expired, another user's device, an unknown device or user, a user id past int32, a stale
  token version, a device secret as token, a revoked device, a deactivated user:
  ``test_bad_tokens_are_refused_everywhere``; a password token on sync:
  ``test_a_password_token_cannot_sync``. Also: test_robustness ``test_odd_tokens_are_401``,
  test_grids_api ``test_roles_and_authentication``, test_sync_api
  ``test_revoked_device_stops_at_once_and_keeps_its_outbox``.
* Cursors -- another user's device's, replayed, wrong types, non-printable grid cursors:
  ``test_bad_cursors``. Also: test_sync_api ``test_forged_and_foreign_cursors_reset``,
  ``test_pruned_history_resets_old_cursors_instead_of_skipping`` (expired), test_case_review
  ``test_tampered_or_foreign_cursors_are_refused``.
* Another device's id in push/pull (the same user's other phone, another user's, an unknown
  id, upper case): ``test_another_devices_id_in_a_body``. Also: test_sync_api
  ``test_a_device_cannot_act_as_another``.
* Path and query parameters out of range: ``test_path_and_query_parameters_out_of_range``,
  ``test_deadlines_beyond_the_calendar_are_refused``. Also: test_robustness
  ``test_out_of_range_ids_and_sizes_are_422``.
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import re
import struct
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from backend.accounts.models import Role
from backend.accounts.security import issue_token
from backend.core.db import transaction
from backend.core.settings import Settings
from backend.devices.models import Device
from sync_protocol.client import SyncClient
from tests.api.test_grids_api import assert_problem
from tests.support import databases
from tests.support.apps import (
    TEST_SECRET,
    ApiHarness,
    embedded_settings,
    make_harness,
    production_settings,
)
from tests.support.photos import (
    TUS,
    centre,
    declaration,
    direct_upload,
    jpeg_with_exif,
    photo_city,
    report_with_photo,
    tus_upload,
)
from tests.support.stored import Stored, changed, stored
from tests.support.sync import device_headers
from tests.support.sync_city import APP_VERSION, SyncCity
from tests.unit.test_media_samples import jpeg_claiming, png_bomb

DOCUMENTED = frozenset(
    re.findall(
        r"`([a-z][a-z0-9_]*)`",
        (Path(__file__).resolve().parents[2] / "docs" / "api-errors.md").read_text("utf-8"),
    )
)
PROFILES = ("embedded", "production")
# Small limits, so "over the limit" costs little: requests may then be ~2 MiB.
LIMITS = {"grid_import_max_bytes": 400_000, "photo_max_bytes": 1_000_000}
MAX_REQUEST = 400_000 + 1_000_000 + 1024 * 1024
# The corpus sends wrong credentials on purpose; the throttle (when present) must not answer
# 429 in their place.
RELAXED = {
    "login_max_failures_per_user": 100_000,
    "login_max_failures_per_ip": 100_000,
    "enroll_max_failures_per_ip": 100_000,
    "device_token_max_failures_per_ip": 100_000,
}
JSON = {"content-type": "application/json"}
pytestmark = pytest.mark.filterwarnings(  # shapely, on the NaN coordinate entry
    "ignore:invalid value encountered in from_wkb:RuntimeWarning"
)
HERE = (120.0005, 30.0005)  # inside the city's first grid


# --------------------------------------------------------------------------------------------
# The shared city


@dataclass
class World:
    api: ApiHarness
    city: SyncCity
    lead: dict[str, str]  # shift lead: opens and acts on cases
    phone: SyncClient  # zhangwei's phone, driven by the reference client
    twin: SyncClient  # zhangwei's second phone, driven by hand (raw mutations)
    lina: SyncClient
    case_id: int
    assignment_id: int
    photo: dict[str, Any]  # declared by zhangwei's phone, never uploaded
    revoked: dict[str, str]  # a revoked phone's (still unexpired) token
    retired: dict[str, str]  # the token of a phone whose user was deactivated
    counter: Iterator[int]

    @property
    def client(self) -> Any:
        return self.api.client

    @property
    def admin(self) -> dict[str, str]:
        return self.city.admin

    def device(self, phone: SyncClient | None = None) -> dict[str, str]:
        return device_headers(phone or self.phone)

    def n(self) -> int:
        return next(self.counter)

    def user_id(self, name: str = "zhangwei") -> int:
        return self.city.user_ids[name]


def _relaxed_limits() -> dict[str, Any]:
    return {**LIMITS, **{k: v for k, v in RELAXED.items() if k in Settings.model_fields}}


@pytest.fixture(scope="module", params=PROFILES)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp(f"corpus-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "embedded":
            template = request.getfixturevalue("sqlite_template")
            url = databases.clone_sqlite(template, tmp / "db")
            settings = embedded_settings(url, tmp / "var", **_relaxed_limits())
        else:
            service = request.getfixturevalue("postgis_service")
            template = request.getfixturevalue("postgis_template")
            url = stack.enter_context(databases.postgis_clone(service.admin_url, template))
            s3 = request.getfixturevalue("s3_service")
            settings = production_settings(url, s3, tmp / "var", **_relaxed_limits())
        api = make_harness(request.param, settings)
        stack.callback(api.runtime.close)
        stack.callback(api.client.close)
        yield _build_world(api, tmp)


def _build_world(api: ApiHarness, tmp: Path) -> World:
    city = photo_city(api, tmp)  # zhangwei patrols grids 0-1, lina grid 5; one active version
    client, admin = api.client, city.admin
    lead = api.token_for("lead", Role.shift_lead)
    phone, twin, lina = city.phone("zhangwei"), city.phone("zhangwei"), city.phone("lina")
    made = client.post("/api/v1/cases", json=case_body(), headers=lead)
    assert made.status_code == 201, made.text
    assignments = client.get(f"/api/v1/grids/{city.codes[0]}/assignments", headers=admin)
    photo = report_with_photo(city, phone, jpeg_with_exif(*centre(city, 0)))
    spare = city.phone("zhangwei")
    revoked = device_headers(spare)
    gone = client.post(f"/api/v1/devices/{spare.device_id}/revoke", headers=admin)
    assert gone.status_code == 200, gone.text
    city.add_inspector("retired", [])
    retired = device_headers(city.phone("retired"))
    deactivated = client.post(f"/api/v1/users/{city.user_ids['retired']}/deactivate", headers=admin)
    assert deactivated.status_code == 200, deactivated.text
    return World(
        api,
        city,
        lead,
        phone,
        twin,
        lina,
        case_id=int(made.json()["id"]),
        assignment_id=int(assignments.json()["items"][0]["id"]),
        photo=photo,
        revoked=revoked,
        retired=retired,
        counter=itertools.count(1),
    )


# --------------------------------------------------------------------------------------------
# Helpers


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    """A problem document (status, shape: assert_problem) whose code is documented."""
    assert code in DOCUMENTED, f"{code} is not in docs/api-errors.md"
    return assert_problem(response, status, code)


@contextlib.contextmanager
def nothing_stored(w: World, *, ignore: tuple[str, ...] = ()) -> Iterator[Stored]:
    """The block must leave every table (but ``ignore``) and the object store as they were."""
    before = stored(w.api)
    yield before
    after = stored(w.api)
    assert changed(before.without(*ignore), after.without(*ignore)) == {}


class Raw(str):
    """A JSON token written as is (``1e400``, ``NaN``), where json.dumps cannot write it."""


def dumps(value: Any) -> bytes:
    """JSON text; ``Raw`` values verbatim, NaN/Infinity floats as literals, lone surrogates and
    NUL as ``\\u`` escapes (json.dumps writes those escapes itself)."""
    raws: list[str] = []

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            raws.append(str(item))
            return f"__raw_{len(raws) - 1}__"
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value))
    for i, raw in enumerate(raws):
        text = text.replace(f'"__raw_{i}__"', raw)
    return text.encode()


def patched(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``a.b.c`` set to ``value`` (``...`` removes it)."""
    copy: dict[str, Any] = json.loads(json.dumps(base))
    *parents, last = path.split(".")
    target = copy
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return copy


def case_body(**extra: Any) -> dict[str, Any]:
    return {
        "source": "complaint",
        "category_code": "0504",
        "description": "店外经营，占用人行道",
        "address": "文三路 88 号",
        "location": {"lon": HERE[0], "lat": HERE[1], "crs": "wgs84"},
        **extra,
    }


def next_mutation_id(w: World, phone: SyncClient) -> int:
    with transaction(w.api.runtime.read_sessions) as session:
        last = session.scalar(select(Device.last_mutation_id).where(Device.id == phone.device_id))
    return int(last or 0) + 1


def push_raw(w: World, name: str, args: Any, phone: SyncClient | None = None) -> Any:
    """One mutation from the twin phone (by hand, numbered after the server's last)."""
    phone = phone or w.twin
    body = {
        "protocol_version": 1,
        "app_version": APP_VERSION,
        "device_id": phone.device_id,
        "mutations": [{"id": next_mutation_id(w, phone), "name": name, "args": args}],
    }
    return w.client.post(
        "/api/v1/sync/push", content=dumps(body), headers={**w.device(phone), **JSON}
    )


def report_args(**changes: Any) -> dict[str, Any]:
    args = {
        "report_id": str(uuid.uuid4()),
        "category_code": "0504",
        "description": "店外经营",
        "address": "文三路 88 号",
        "location": {
            "lon": HERE[0],
            "lat": HERE[1],
            "crs": "wgs84",
            "accuracy_m": 6.0,
            "fix_time": "2026-11-23T08:00:00+08:00",
            "provider": "gps",
        },
        "captured_at": "2026-11-23T08:14:40+08:00",
        "photos": [],
    }
    for path, value in changes.items():
        args = patched(args, path.replace("__", "."), value)
    return args


def upload_grid_file(w: World, data: bytes, name: str = "grids.geojson", **form: Any) -> Any:
    fields = {"crs": "EPSG:4490", **form}
    return w.client.post(
        "/api/v1/grid-versions",
        files={"file": (name, data, "application/octet-stream")},
        data=fields,
        headers=w.admin,
    )


def upload_file(w: World, path: str, data: bytes, **params: Any) -> Any:
    return w.client.post(
        path,
        params=params,
        files={"file": ("file.yaml", data, "application/yaml")},
        headers=w.admin,
    )


# --------------------------------------------------------------------------------------------
# Malformed JSON, on every endpoint that takes a JSON body

MALFORMED_JSON = {
    "truncated": b'{"username": "zhangwei", "pass',
    "trailing-garbage": b'{"username": "zhangwei"} trailing',
    "two-documents": b"{} {}",
    "array-document": b"[1, 2, 3]",
    "string-document": b'"zhangwei"',
    "number-document": b"42",
    "null-document": b"null",
    "nan-document": b"NaN",
    "empty": b"",
    "single-quotes": b"{'username': 'zhangwei'}",
    "comment": b'{"username": "zhangwei" /* who */}',
    "nested-1000-deep": b"[" * 1000 + b"]" * 1000,
    "nested-100000-deep": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "not-utf8": b'{"username": "\xff\xfe"}',
    "latin-1": '{"username": "café"}'.encode("latin-1"),
}


def json_endpoints(w: World) -> list[tuple[str, str, dict[str, str], str]]:
    """(method, path, headers, the code a malformed body gets) of every JSON-body endpoint."""
    uid, grid, pid = w.user_id(), w.city.codes[0], w.photo["photo_id"]
    return [
        ("POST", "/api/v1/auth/token", {}, "validation_error"),
        ("POST", "/api/v1/users", w.admin, "validation_error"),
        ("POST", f"/api/v1/users/{uid}/unit", w.admin, "validation_error"),
        ("POST", f"/api/v1/users/{uid}/department", w.admin, "validation_error"),
        ("PUT", "/api/v1/departments", w.admin, "validation_error"),
        ("POST", "/api/v1/devices/enroll", {}, "validation_error"),
        ("POST", "/api/v1/devices/token", {}, "validation_error"),
        ("POST", "/api/v1/cases", w.lead, "validation_error"),
        ("POST", f"/api/v1/cases/{w.case_id}/actions/accept", w.lead, "validation_error"),
        ("POST", f"/api/v1/cases/{w.case_id}/verifier", w.lead, "validation_error"),
        ("POST", f"/api/v1/grids/{grid}/assignments", w.admin, "validation_error"),
        (
            "POST",
            f"/api/v1/grids/{grid}/assignments/{w.assignment_id}/end",
            w.admin,
            "validation_error",
        ),
        ("POST", f"/api/v1/photos/{pid}/upload-target", w.device(), "validation_error"),
        ("POST", "/api/v1/sync/push", w.device(w.twin), "invalid_message"),
        ("POST", "/api/v1/sync/pull", w.device(w.twin), "invalid_message"),
    ]


@pytest.mark.parametrize("body", list(MALFORMED_JSON.values()), ids=list(MALFORMED_JSON))
def test_malformed_json_is_refused_everywhere(world: World, body: bytes) -> None:
    with nothing_stored(world):
        for method, path, headers, code in json_endpoints(world):
            answer = world.client.request(method, path, content=body, headers={**headers, **JSON})
            try:
                refused(answer, 422, code)
            except AssertionError as exc:
                raise AssertionError(f"{method} {path}: {exc}") from None


MALFORMED_MULTIPART = {
    "no-boundary": ("multipart/form-data", b"--x\r\n"),
    "garbage": ("multipart/form-data; boundary=x", b"\x00\xff" * 100),
    "2000-parts": (
        "multipart/form-data; boundary=x",
        b"".join(
            b'--x\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nv\r\n' % i
            for i in range(2000)
        )
        + b"--x--\r\n",
    ),
    "100k-header": (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="'
        + b"a" * 100_000
        + b'"\r\n\r\nabc\r\n--x--\r\n',
    ),
}


@pytest.mark.parametrize(
    ("content_type", "body"), list(MALFORMED_MULTIPART.values()), ids=list(MALFORMED_MULTIPART)
)
def test_malformed_multipart_is_refused(world: World, content_type: str, body: bytes) -> None:
    with nothing_stored(world):
        for path in (
            "/api/v1/grid-versions",
            "/api/v1/categories/import",
            "/api/v1/calendar/import",
        ):
            answer = world.client.post(
                path, content=body, headers={**world.admin, "content-type": content_type}
            )
            refused(answer, 400, "bad_request")


# --------------------------------------------------------------------------------------------
# Wrong types, out-of-range numbers, NaN and Infinity, unknown systems, blank text

Call = Callable[[World], Any]


def post_case(path: str, value: Any) -> Call:
    return lambda w: w.client.post(
        "/api/v1/cases",
        content=dumps(patched(case_body(), path, value)),
        headers={**w.lead, **JSON},
    )


def act(action: str, body: Any) -> Call:
    return lambda w: w.client.post(
        f"/api/v1/cases/{w.case_id}/actions/{action}",
        content=dumps(body),
        headers={**w.lead, **JSON},
    )


def post_user(path: str, value: Any) -> Call:
    def call(w: World) -> Any:
        body = {"username": f"typed{w.n()}", "password": "long enough", "role": "inspector"}
        return w.client.post(
            "/api/v1/users", content=dumps(patched(body, path, value)), headers={**w.admin, **JSON}
        )

    return call


def put_department(path: str, value: Any) -> Call:
    def call(w: World) -> Any:
        body = {"code": f"typed-{w.n()}", "name": "西湖区环卫所", "kind": "sanitation"}
        return w.client.put(
            "/api/v1/departments",
            content=dumps(patched(body, path, value)),
            headers={**w.admin, **JSON},
        )

    return call


def assign(path: str, value: Any) -> Call:
    def call(w: World) -> Any:
        body = {
            "kind": "unit",
            "role": "责任单位",
            "assignee_name": f"单位 {w.n()}",
            "effective_from": "2030-01-01",
        }
        return w.client.post(
            f"/api/v1/grids/{w.city.codes[3]}/assignments",
            content=dumps(patched(body, path, value)),
            headers={**w.admin, **JSON},
        )

    return call


def end_assignment(value: Any) -> Call:
    return lambda w: w.client.post(
        f"/api/v1/grids/{w.city.codes[0]}/assignments/{w.assignment_id}/end",
        content=dumps({"effective_to": value}),
        headers={**w.admin, **JSON},
    )


def upload_target(path: str, value: Any) -> Call:
    def call(w: World) -> Any:
        body = {k: w.photo[k] for k in ("sha256", "size", "content_type")}
        return w.client.post(
            f"/api/v1/photos/{w.photo['photo_id']}/upload-target",
            content=dumps(patched(body, path, value)),
            headers={**w.device(), **JSON},
        )

    return call


def enroll(path: str, value: Any) -> Call:
    def call(w: World) -> Any:
        body = {
            "code": "K7QF-2MXD-9RTB",  # refused before the code is looked at
            "device_name": "Redmi Note 12",
            "platform": "android",
            "app_version": "1.4.2",
            "protocol_version": 1,
        }
        return w.client.post(
            "/api/v1/devices/enroll", content=dumps(patched(body, path, value)), headers=JSON
        )

    return call


def device_token(path: str, value: Any) -> Call:
    body = {"device_id": str(uuid.uuid4()), "device_secret": "xds1.secret"}
    return lambda w: w.client.post(
        "/api/v1/devices/token", content=dumps(patched(body, path, value)), headers=JSON
    )


def login(path: str, value: Any) -> Call:
    body = {"username": "zhangwei", "password": "patrol-pass-1"}
    return lambda w: w.client.post(
        "/api/v1/auth/token", content=dumps(patched(body, path, value)), headers=JSON
    )


def lookup(**params: Any) -> Call:
    query = {"lon": HERE[0], "lat": HERE[1], "crs": "wgs84", **params}
    return lambda w: w.client.get("/api/v1/grids/lookup", params=query, headers=w.lead)


NOT_VALID = (422, "validation_error")
WRONG_TYPES: dict[str, tuple[Call, tuple[int, str]]] = {
    # numbers (a case's location)
    "case-lon-number-as-string": (post_case("location.lon", "120.0005"), NOT_VALID),
    "case-lon-true": (post_case("location.lon", True), NOT_VALID),
    "case-lon-null": (post_case("location.lon", None), NOT_VALID),
    "case-lon-list": (post_case("location.lon", [HERE[0]]), NOT_VALID),
    "case-lon-nan-literal": (post_case("location.lon", Raw("NaN")), NOT_VALID),
    "case-lon-infinity-literal": (post_case("location.lon", Raw("Infinity")), NOT_VALID),
    "case-lat-minus-infinity-literal": (post_case("location.lat", Raw("-Infinity")), NOT_VALID),
    "case-lon-nan-string": (post_case("location.lon", "NaN"), NOT_VALID),
    "case-lon-infinity-string": (post_case("location.lon", "Infinity"), NOT_VALID),
    "case-lon-1e400": (post_case("location.lon", Raw("1e400")), NOT_VALID),
    "case-lon-400-digits": (post_case("location.lon", Raw("9" * 400)), NOT_VALID),
    "case-lon-past-180": (post_case("location.lon", 180.000001), NOT_VALID),
    "case-lat-past-90": (post_case("location.lat", -90.5), NOT_VALID),
    "case-location-as-string": (post_case("location", "120.0005,30.0005"), NOT_VALID),
    "case-location-as-list": (post_case("location", list(HERE)), NOT_VALID),
    # coordinate systems
    "case-crs-mars": (post_case("location.crs", "mars"), (422, "case_input_invalid")),
    "case-crs-epsg": (post_case("location.crs", "EPSG:4326"), (422, "case_input_invalid")),
    "case-crs-upper-case": (post_case("location.crs", "WGS84"), (422, "case_input_invalid")),
    "case-crs-empty": (post_case("location.crs", ""), (422, "case_input_invalid")),
    "case-crs-number": (post_case("location.crs", 4326), NOT_VALID),
    "case-crs-null": (post_case("location.crs", None), NOT_VALID),
    "lookup-lon-infinity": (lookup(lon="Infinity"), NOT_VALID),
    "lookup-lon-minus-inf": (lookup(lon="-inf"), NOT_VALID),
    "lookup-lon-1e400": (lookup(lon="1e400"), NOT_VALID),
    "lookup-lat-91": (lookup(lat=91), NOT_VALID),
    "lookup-accuracy-nan": (lookup(accuracy_m="nan"), NOT_VALID),
    "lookup-accuracy-negative": (lookup(accuracy_m=-1), NOT_VALID),
    "lookup-crs-epsg": (lookup(crs="EPSG:4326"), NOT_VALID),
    "lookup-crs-gcj-dash": (lookup(crs="gcj-02"), NOT_VALID),
    # strings, enums and text
    "case-category-as-number": (post_case("category_code", 504), NOT_VALID),
    "case-description-as-number": (post_case("description", 12345), NOT_VALID),
    "case-description-blank": (post_case("description", "   "), NOT_VALID),
    "case-description-ideographic-space": (post_case("description", "\u3000\t"), NOT_VALID),
    "case-source-ref-as-list": (post_case("source_ref", ["x"]), NOT_VALID),
    "case-source-unknown": (post_case("source", "hotline"), NOT_VALID),
    "case-source-inspector": (post_case("source", "inspector"), (422, "case_input_invalid")),
    "user-role-unknown": (post_user("role", "superuser"), NOT_VALID),
    "user-role-upper-case": (post_user("role", "ADMIN"), NOT_VALID),
    "user-role-number": (post_user("role", 1), NOT_VALID),
    "user-username-number": (post_user("username", 5), NOT_VALID),
    "user-username-empty": (post_user("username", ""), NOT_VALID),
    "user-password-number": (post_user("password", 12345678), NOT_VALID),
    "user-unit-as-number": (post_user("unit_code", 330106), NOT_VALID),
    "user-display-name-blank": (post_user("display_name", "   "), (422, "invalid_input")),
    "department-name-blank": (put_department("name", " \u3000 "), NOT_VALID),
    "department-kind-unknown": (put_department("kind", "robot"), NOT_VALID),
    "assignment-kind-unknown": (assign("kind", "robot"), NOT_VALID),
    "assignment-phone-number": (assign("phone", 13800000001), NOT_VALID),
    "enroll-platform-unknown": (enroll("platform", "windows"), NOT_VALID),
    "enroll-app-version-not-semver": (enroll("app_version", "1.x"), NOT_VALID),
    "enroll-device-name-blank": (enroll("device_name", "  "), NOT_VALID),
    "enroll-code-number": (enroll("code", 12345678), NOT_VALID),
    "device-token-id-number": (device_token("device_id", 5), NOT_VALID),
    "device-token-id-null": (device_token("device_id", None), NOT_VALID),
    "device-token-secret-list": (device_token("device_secret", ["x"]), NOT_VALID),
    "login-username-number": (login("username", 5), NOT_VALID),
    "login-password-missing": (login("password", ...), NOT_VALID),
    "upload-target-sha-upper-case": (
        upload_target("sha256", "A" * 64),
        NOT_VALID,
    ),
    "upload-target-sha-short": (upload_target("sha256", "a" * 63), NOT_VALID),
    "upload-target-gif": (upload_target("content_type", "image/gif"), NOT_VALID),
    "comment-as-list": (act("decline", {"comment": ["x"]}), NOT_VALID),
    "comment-blank": (act("decline", {"comment": " \u3000 "}), (422, "comment_required")),
    # integers
    "expected-version-as-string": (act("accept", {"expected_version": "1"}), NOT_VALID),
    "expected-version-float": (act("accept", {"expected_version": 1.5}), NOT_VALID),
    "expected-version-true": (act("accept", {"expected_version": True}), NOT_VALID),
    "into-case-past-int32": (act("void", {"into_case_id": 2**31, "comment": "dup"}), NOT_VALID),
    "into-case-past-int64": (act("void", {"into_case_id": 10**30, "comment": "dup"}), NOT_VALID),
    "into-case-as-string": (act("void", {"into_case_id": "2", "comment": "dup"}), NOT_VALID),
    "upload-target-size-as-string": (upload_target("size", "123"), NOT_VALID),
    "upload-target-size-float": (upload_target("size", 123.0), NOT_VALID),
    "upload-target-size-true": (upload_target("size", True), NOT_VALID),
    "upload-target-size-zero": (upload_target("size", 0), NOT_VALID),
    "upload-target-size-2**70": (upload_target("size", 2**70), NOT_VALID),
    "enroll-protocol-as-string": (enroll("protocol_version", "1"), NOT_VALID),
    "enroll-protocol-true": (enroll("protocol_version", True), NOT_VALID),
    "enroll-protocol-float": (enroll("protocol_version", 1.5), NOT_VALID),
    # booleans
    "department-active-no": (put_department("active", "no"), NOT_VALID),
    "department-active-zero": (put_department("active", 0), NOT_VALID),
    "department-active-false-string": (put_department("active", "false"), NOT_VALID),
    "department-active-null": (put_department("active", None), NOT_VALID),
    # dates
    "assignment-from-zero": (assign("effective_from", 0), NOT_VALID),
    "assignment-from-timestamp-text": (assign("effective_from", "86400"), NOT_VALID),
    "assignment-from-month-13": (assign("effective_from", "2026-13-01"), NOT_VALID),
    "assignment-from-february-30": (assign("effective_from", "2026-02-30"), NOT_VALID),
    "assignment-from-year-0": (assign("effective_from", "0000-01-01"), NOT_VALID),
    "assignment-from-basic-format": (assign("effective_from", "20300101"), NOT_VALID),
    "assignment-end-as-number": (end_assignment(20270101), NOT_VALID),
}


@pytest.mark.parametrize(("call", "expected"), list(WRONG_TYPES.values()), ids=list(WRONG_TYPES))
def test_wrong_types_are_refused(world: World, call: Call, expected: tuple[int, str]) -> None:
    with nothing_stored(world):
        refused(call(world), *expected)


UNKNOWN_SOURCE_CRS = {
    "unknown-epsg": "EPSG:999999",
    "a-name-we-do-not-know": "mars",
    "beijing-1954": "EPSG:4214",
    "proj-string": "+proj=longlat +datum=WGS84",
    "wkt": 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]]]',
    "nan": "NaN",
    "huge-epsg": "EPSG:" + "9" * 60,
    "negative-epsg": "EPSG:-4326",
}


@pytest.mark.parametrize("crs", list(UNKNOWN_SOURCE_CRS.values()), ids=list(UNKNOWN_SOURCE_CRS))
def test_unknown_crs_on_grid_import(world: World, crs: str) -> None:
    with nothing_stored(world):
        refused(upload_grid_file(world, grid_file(), crs=crs), 422, "unknown_crs")


# --------------------------------------------------------------------------------------------
# Grid files

SQUARE = [[121.0, 31.0], [121.001, 31.0], [121.001, 31.001], [121.0, 31.001], [121.0, 31.0]]
CODE = "330106001001009"


def grid_file(geometry: Any = None, properties: dict[str, Any] | None = None) -> bytes:
    """One grid as a GeoJSON FeatureCollection (escapes for non-ASCII, as Python writes it)."""
    geometry = {"type": "Polygon", "coordinates": [SQUARE]} if geometry is None else geometry
    feature = {
        "type": "Feature",
        "properties": {"code": CODE, "name": "测试网格", **(properties or {})},
        "geometry": geometry,
    }
    return dumps({"type": "FeatureCollection", "features": [feature]})


def polygon(*rings: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_declaring(size: int) -> bytes:
    """A Shapefile zip whose .shp claims ``size`` bytes once inflated (a bomb by its header)."""
    data = bytearray(zipped({"a.shp": b"\0" * 100, "a.shx": b"\0" * 100, "a.dbf": b"\0" * 100}))
    eocd = data.rindex(b"PK\x05\x06")
    entries, position = (
        struct.unpack_from("<H", data, eocd + 10)[0],
        struct.unpack_from("<I", data, eocd + 16)[0],
    )
    for _ in range(entries):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, position + 28)
        if bytes(data[position + 46 : position + 46 + name_len]) == b"a.shp":
            struct.pack_into("<I", data, position + 24, size)
        position += 46 + name_len + extra_len + comment_len
    return bytes(data)


KML = (
    '<?xml version="1.0"?>{doctype}<kml xmlns="http://www.opengis.net/kml/2.2"><Document>'
    "<Placemark><name>{name}</name><Polygon><outerBoundaryIs><LinearRing><coordinates>"
    "121,31 121.001,31 121.001,31.001 121,31</coordinates></LinearRing></outerBoundaryIs>"
    "</Polygon></Placemark></Document></kml>"
)
LAUGHS = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "lol"}">' for i in range(8))

UNREADABLE = (422, "grid_file_unreadable")
REJECTED = (422, "grid_import_rejected")
POLYGON_INVALID = (422, "grid_polygon_invalid")
REFUSE: dict[str, Any] = {"invalid": "refuse"}
BAD_GRID_FILES: dict[str, tuple[bytes, dict[str, Any], tuple[int, str], str | None]] = {
    # polygons: (file, form, expected, problem code inside grid_import_rejected)
    "unclosed-ring": (grid_file(polygon(SQUARE[:-1])), {}, UNREADABLE, None),
    "two-distinct-points": (
        grid_file(polygon([[121, 31], [121.001, 31], [121, 31]])), {}, POLYGON_INVALID, None,
    ),
    "one-point-ring": (grid_file(polygon([[121, 31]])), {}, UNREADABLE, None),
    "empty-ring": (grid_file(polygon([])), {}, REJECTED, "missing_geometry"),
    "empty-coordinates": (grid_file(polygon()), {}, REJECTED, "missing_geometry"),
    "null-geometry": (
        dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"code": CODE}, "geometry": None}]}),
        {}, REJECTED, "missing_geometry",
    ),
    "zero-area": (
        grid_file(polygon([[121, 31], [121.001, 31], [121.002, 31], [121, 31]])), {},
        POLYGON_INVALID, None,
    ),
    "self-intersecting-refused": (
        grid_file(polygon([[121, 31], [121.001, 31.001], [121.001, 31], [121, 31.001], [121, 31]])),
        REFUSE, POLYGON_INVALID, None,
    ),
    "hole-outside-shell-refused": (
        grid_file(polygon(SQUARE, [[122, 32], [122.001, 32], [122.001, 32.001], [122, 32]])),
        REFUSE, POLYGON_INVALID, None,
    ),
    "point": (grid_file({"type": "Point", "coordinates": [121, 31]}), {},
              (422, "grid_geometry_type"), None),
    "line": (grid_file({"type": "LineString", "coordinates": SQUARE}), {},
             (422, "grid_geometry_type"), None),
    "lon-200": (
        grid_file(polygon([[200, 31], [200.001, 31], [200.001, 31.001], [200, 31]])), {},
        REJECTED, "coordinates_out_of_range",
    ),
    "lat-95": (
        grid_file(polygon([[121, 95], [121.001, 95], [121.001, 95.001], [121, 95]])), {},
        REJECTED, "coordinates_out_of_range",
    ),
    "nan-literal": (
        grid_file(polygon([[121, 31], [121.001, 31], [121.001, Raw("NaN")], [121, 31]])), {},
        REJECTED, "coordinates_out_of_range",
    ),
    "infinity-literal": (
        grid_file(polygon([[121, 31], [Raw("Infinity"), 31], [121.001, 31.001], [121, 31]])),
        {}, REJECTED, "coordinates_out_of_range",
    ),
    "coordinates-as-strings": (
        grid_file(polygon([["121", "31"], ["121.001", "31"], ["121.001", "31.001"],
                           ["121", "31"]])),
        {}, UNREADABLE, None,
    ),
    "projected-declared-as-lonlat": (
        grid_file(polygon([[500000, 3400000], [500100, 3400000], [500100, 3400100],
                           [500000, 3400000]])),
        {"crs": "EPSG:4326"}, REJECTED, "coordinates_out_of_range",
    ),
    "swapped-axes": (
        grid_file(polygon([[3400000, 500000], [3400100, 500000], [3400100, 500100],
                           [3400000, 500000]])),
        {"crs": "EPSG:4547"}, REJECTED, "coordinates_out_of_range",
    ),
    # files
    "empty-collection": (b'{"type": "FeatureCollection", "features": []}', {}, UNREADABLE, None),
    "truncated": (grid_file()[:60], {}, UNREADABLE, None),
    "html": (b"<html><body>grids</body></html>", {}, UNREADABLE, None),
    "utf-16": (grid_file().decode().encode("utf-16"), {}, UNREADABLE, None),
    "jpeg": (b"\xff\xd8\xff\xe0" + bytes(200), {}, UNREADABLE, None),
    "nested-100000-deep": (b"[" * 100_000 + b"]" * 100_000, {}, UNREADABLE, None),
    "nul-escape-in-a-name": (grid_file(properties={"name": "文三\x00路"}), {}, UNREADABLE, None),
    "lone-surrogate-escape-in-a-name": (
        grid_file(properties={"name": "文三\ud800路"}), {}, UNREADABLE, None,
    ),
    "reversed-surrogates-in-a-property": (
        grid_file(properties={"备注": "\udc00\ud800"}), {}, UNREADABLE, None,
    ),
    "zip-path-traversal": (zipped({"../../evil.shp": b"x", "../../evil.dbf": b"x"}), {},
                           UNREADABLE, None),
    "zip-truncated": (zipped({"a.shp": b"x" * 1000, "a.dbf": b"y" * 1000})[:200], {},
                      UNREADABLE, None),
    "zip-in-a-zip": (zipped({"inner.zip": zipped({"a.shp": b"x"})}), {},
                     (422, "grid_file_format_unsupported"), None),
    "zip-bomb-by-declared-size": (zip_declaring(2**32 - 1), {}, (413, "grid_file_too_large"), None),
    "sqlite-not-geopackage": (b"SQLite format 3\x00" + bytes(200), {},
                              (422, "grid_file_format_unsupported"), None),
    "kml-xxe": (
        KML.format(doctype='<!DOCTYPE kml [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
                   name="&x;").encode(),
        {"field_map": "code=Name"}, UNREADABLE, None,
    ),
    "kml-billion-laughs": (
        KML.format(doctype=f"<!DOCTYPE kml [{LAUGHS}]>", name="&l7;").encode(),
        {"field_map": "code=Name"}, UNREADABLE, None,
    ),
    # form fields
    "field-map-without-equals": (grid_file(), {"field_map": "nonsense"}, (422, "invalid_input"),
                                 None),
    "invalid-mode-unknown": (grid_file(), {"invalid": "ignore"}, NOT_VALID, None),
    "activate-maybe": (grid_file(), {"activate": "maybe"}, NOT_VALID, None),
}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "form", "expected", "problem"), list(BAD_GRID_FILES.values()), ids=list(BAD_GRID_FILES)
)
def test_bad_grid_files_are_refused(
    world: World,
    data: bytes,
    form: dict[str, Any],
    expected: tuple[int, str],
    problem: str | None,
) -> None:
    with nothing_stored(world):
        body = refused(upload_grid_file(world, data, **form), *expected)
    if problem is not None:
        assert {p["code"] for p in body["problems"]} == {problem}, body


# --------------------------------------------------------------------------------------------
# Category and calendar files


def category_file(**changes: Any) -> bytes:
    """A small valid category file as JSON, with ``changes`` applied to its major category."""
    major = {
        "code": "05",
        "key": "street_order",
        "name": "街面秩序",
        "measure": "count",
        "limits": {"accept": "1h", "dispatch": "1h", "handle": "4h", "check": "1d"},
        "children": [{"code": "0504", "key": "shop_front_trading", "name": "店外经营"}],
    }
    for path, value in changes.items():
        major = patched(major, path, value)
    return dumps({"version": 1, "categories": [major]})


def deep_children(depth: int) -> bytes:
    opening = "".join(
        f'{{"code": "05", "key": "k{i}", "name": "n", "children": [' for i in range(depth)
    )
    return f'{{"version": 1, "categories": [{opening}{"]}" * depth}]}}'.encode()


YAML_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in itertools.pairwise("abcdefg")
)

CATEGORY_INVALID = (422, "category_file_invalid")
BAD_CATEGORY_FILES: dict[str, tuple[bytes, tuple[int, str]]] = {
    "empty": (b"", CATEGORY_INVALID),
    "not-utf8": (b"version: 1\ncategories:\n  - name: caf\xe9\n", CATEGORY_INVALID),
    "utf-16": (category_file().decode().encode("utf-16"), CATEGORY_INVALID),
    "truncated": (category_file()[:80], CATEGORY_INVALID),
    "list-document": (b"[]", CATEGORY_INVALID),
    "nested-60000-deep": (b"[" * 60_000 + b"]" * 60_000, CATEGORY_INVALID),
    "children-3000-deep": (deep_children(3000), CATEGORY_INVALID),
    "yaml-billion-laughs": ((YAML_LAUGHS + "version: 1\ncategories: *g\n").encode(),
                            CATEGORY_INVALID),
    "yaml-python-tag": (b'version: 1\ncategories: !!python/object/apply:os.system ["true"]\n',
                        CATEGORY_INVALID),
    "name-lone-surrogate": (category_file(name="街面\ud800秩序"), CATEGORY_INVALID),
    "name-reversed-surrogates": (category_file(name="\udc00\ud800"), CATEGORY_INVALID),
    "name-nul": (category_file(name="街面\x00秩序"), CATEGORY_INVALID),
    "description-nul": (category_file(description="出店经营\x00"), CATEGORY_INVALID),
    "child-name-lone-surrogate": (
        category_file(children=[{"code": "0504", "key": "x_y", "name": "\udfff"}]),
        CATEGORY_INVALID,
    ),
    "yaml-nul-escape": (b'version: 1\ncategories:\n  - {code: "05", key: k_k, name: "a\\0b"}\n',
                        CATEGORY_INVALID),
    "yaml-surrogate-escape": (
        b'version: 1\ncategories:\n  - {code: "05", key: k_k, name: "a\\udc00b"}\n',
        CATEGORY_INVALID,
    ),
    "name-blank": (category_file(name=" \u3000 "), CATEGORY_INVALID),
    "name-as-number": (category_file(name=5), CATEGORY_INVALID),
    "code-as-number": (category_file(code=5), CATEGORY_INVALID),
    "radius-nan": (category_file(duplicates={"radius_m": float("nan")}), CATEGORY_INVALID),
    "radius-infinity": (category_file(duplicates={"radius_m": float("inf")}), CATEGORY_INVALID),
    "radius-as-string": (category_file(duplicates={"radius_m": "50"}), CATEGORY_INVALID),
    "radius-true": (category_file(duplicates={"radius_m": True}), CATEGORY_INVALID),
    "radius-1e400": (category_file(duplicates={"radius_m": Raw("1e400")}), CATEGORY_INVALID),
    "limit-as-number": (category_file(limits={"accept": 5}), CATEGORY_INVALID),
    "limit-overflowing": (category_file(limits={"accept": "99999999999999999999d"}),
                          CATEGORY_INVALID),
    "version-true": (category_file().replace(b'"version": 1', b'"version": true'),
                     CATEGORY_INVALID),
    "over-1-mib": (b"# " + b"x" * (1024 * 1024 + 10) + b"\n", (413, "payload_too_large")),
}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"), list(BAD_CATEGORY_FILES.values()), ids=list(BAD_CATEGORY_FILES)
)
def test_bad_category_files_are_refused(
    world: World, data: bytes, expected: tuple[int, str]
) -> None:
    with nothing_stored(world):
        refused(upload_file(world, "/api/v1/categories/import", data), *expected)
        if expected[0] == 422:  # a dry run refuses it the same way
            refused(upload_file(world, "/api/v1/categories/import", data, dry_run=True), *expected)


def calendar_file(**changes: Any) -> bytes:
    document = {
        "version": 1,
        "timezone": "Asia/Shanghai",
        "hours": ["08:30-12:00", "13:30-17:30"],
        "weekend": ["saturday", "sunday"],
        "holidays": ["2026-10-01"],
        "workdays": ["2026-09-27"],
    }
    for path, value in changes.items():
        document = patched(document, path, value)
    return dumps(document)


CALENDAR_INVALID = (422, "calendar_file_invalid")
BAD_CALENDAR_FILES: dict[str, tuple[bytes, tuple[int, str]]] = {
    "empty": (b"", CALENDAR_INVALID),
    "not-utf8": (b"timezone: Asia/Shangh\xe4i\n", CALENDAR_INVALID),
    "truncated": (calendar_file()[:30], CALENDAR_INVALID),
    "list-document": (b"[]", CALENDAR_INVALID),
    "nested-60000-deep": (b"[" * 60_000 + b"]" * 60_000, CALENDAR_INVALID),
    "nested-30000-deep-mapping": (b'{"a":' * 30_000 + b"1" + b"}" * 30_000, CALENDAR_INVALID),
    "yaml-billion-laughs": ((YAML_LAUGHS + "version: 1\nhours: [*g]\n").encode(),
                            CALENDAR_INVALID),
    "timezone-unknown": (calendar_file(timezone="Mars/Olympus_Mons"), CALENDAR_INVALID),
    "timezone-traversal": (calendar_file(timezone="../../../etc/passwd"), CALENDAR_INVALID),
    "timezone-nul": (calendar_file(timezone="Asia/Shang\x00hai"), CALENDAR_INVALID),
    "timezone-lone-surrogate": (calendar_file(timezone="Asia/\ud800"), CALENDAR_INVALID),
    "timezone-number": (calendar_file(timezone=8), CALENDAR_INVALID),
    "hours-25": (calendar_file(hours=["25:00-26:00"]), CALENDAR_INVALID),
    "hours-reversed": (calendar_file(hours=["17:00-08:00"]), CALENDAR_INVALID),
    "hours-overlapping": (calendar_file(hours=["08:00-12:00", "11:00-13:00"]), CALENDAR_INVALID),
    "hours-nan": (calendar_file(hours=[float("nan")]), CALENDAR_INVALID),
    "hours-empty": (calendar_file(hours=[]), CALENDAR_INVALID),
    "holiday-february-30": (calendar_file(holidays=["2026-02-30"]), CALENDAR_INVALID),
    "holiday-and-workday": (calendar_file(holidays=["2026-09-27"]), CALENDAR_INVALID),
    "every-day-weekend": (
        calendar_file(weekend=["monday", "tuesday", "wednesday", "thursday", "friday",
                               "saturday", "sunday"]),
        CALENDAR_INVALID,
    ),
    "weekend-unknown-day": (calendar_file(weekend=["funday"]), CALENDAR_INVALID),
    "version-2": (calendar_file(version=2), CALENDAR_INVALID),
    "version-true": (calendar_file(version=True), CALENDAR_INVALID),
    "unknown-field": (calendar_file(overtime=True), CALENDAR_INVALID),
    "over-200-kb": (b"# " + b"x" * 200_100 + b"\n", (413, "payload_too_large")),
}  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"), list(BAD_CALENDAR_FILES.values()), ids=list(BAD_CALENDAR_FILES)
)
def test_bad_calendar_files_are_refused(
    world: World, data: bytes, expected: tuple[int, str]
) -> None:
    with nothing_stored(world):
        answer = upload_file(world, "/api/v1/calendar/import", data)
        body = refused(answer, *expected)
    assert len(answer.content) < 20_000, "problems quote the file, never expand it"
    if expected == CALENDAR_INVALID:
        assert body["problems"], body


DEADLINES = {
    "ten-years-of-working-days": {"start": "2026-01-05T09:00:00+08:00", "limit": "99999d"},
    "past-the-year-9999": {"start": "9999-12-31T09:00:00+08:00", "limit": "7d"},
    "before-the-year-1-in-utc": {"start": "0001-01-01T00:00:00+14:00", "limit": "1h"},
}


@pytest.mark.parametrize("params", list(DEADLINES.values()), ids=list(DEADLINES))
def test_deadlines_beyond_the_calendar_are_refused(world: World, params: dict[str, str]) -> None:
    answer = world.client.get("/api/v1/calendar/deadline", params=params, headers=world.lead)
    refused(answer, 422, "invalid_input")


# --------------------------------------------------------------------------------------------
# Photos


def gif_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), "red").save(out, "GIF")
    return out.getvalue()


def zip_bytes() -> bytes:
    return zipped({"index.html": b"<script>alert(1)</script>"})


BAD_PHOTOS: dict[str, tuple[Callable[[bytes], bytes], tuple[int, str]]] = {
    "gif-named-jpeg": (lambda jpeg: gif_bytes(), (415, "photo_type_unsupported")),
    "zip-then-jpeg": (lambda jpeg: zip_bytes() + jpeg, (415, "photo_type_unsupported")),
    "html-behind-jpeg-magic": (
        lambda jpeg: b"\xff\xd8\xff\xe0<html><script>alert(1)</script></html>",
        (422, "photo_corrupt"),
    ),
    "html": (lambda jpeg: b"<html><body>evidence</body></html>", (415, "photo_type_unsupported")),
    "svg": (
        lambda jpeg: b'<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
        (415, "photo_type_unsupported"),
    ),
    "header-claiming-4-gigapixels": (
        lambda jpeg: jpeg_claiming(65_000, 65_000),
        (422, "photo_too_many_pixels"),
    ),
    "png-bomb": (lambda jpeg: png_bomb(20_000, 20_000), (422, "photo_too_many_pixels")),
    "one-byte": (lambda jpeg: b"\xff", (415, "photo_type_unsupported")),
    "soi-eoi-only": (lambda jpeg: b"\xff\xd8\xff\xd9", (422, "photo_corrupt")),
}


@pytest.mark.parametrize("path", ["direct", "tus"])
@pytest.mark.parametrize(("make", "expected"), list(BAD_PHOTOS.values()), ids=list(BAD_PHOTOS))
def test_bad_photos_are_refused_on_both_paths(
    world: World, make: Callable[[bytes], bytes], expected: tuple[int, str], path: str
) -> None:
    w = world
    data = make(jpeg_with_exif(*centre(w.city, 0), seed=w.n()))
    photo = report_with_photo(w.city, w.phone, data)
    # The upload's own row (terminated now) is bookkeeping, not evidence.
    with nothing_stored(w, ignore=("photo_uploads",)):
        if path == "direct":
            answer = direct_upload(w.city, w.phone, photo, data)
        else:  # two chunks: the first is kept as an object until the second is refused
            answer = tus_upload(w.city, w.phone, photo, data, chunk=len(data) // 2 + 1)
        refused(answer, *expected)
    view = w.client.get(f"/api/v1/photos/{photo['photo_id']}", headers=w.device())
    assert view.json()["state"] == "declared"


def test_a_jpeg_with_an_appended_archive_is_kept_byte_for_byte(world: World) -> None:
    """Not everything odd is bad: phones append data after a JPEG's end marker (motion photos,
    depth maps), so bytes after EOI are accepted and the original is kept as sent."""
    from tests.support.photos import get_bytes

    w = world
    data = jpeg_with_exif(*centre(w.city, 0), seed=w.n()) + zip_bytes()
    photo = report_with_photo(w.city, w.phone, data)
    done = direct_upload(w.city, w.phone, photo, data)
    assert done.status_code == 200, done.text
    assert done.json()["detected_type"] == "image/jpeg"
    status, original = get_bytes(w.client, done.json()["links"]["original"])
    assert status == 200 and original == data


def tus_create(headers: dict[str, str | None] | None = None) -> Call:
    def call(w: World) -> Any:
        metadata = "photo_id " + base64.b64encode(w.photo["photo_id"].encode()).decode()
        base = {"Upload-Length": str(w.photo["size"]), "Upload-Metadata": metadata}
        merged = {**w.device(), **TUS, **base, **(headers or {})}
        return w.client.post(
            "/api/v1/uploads", headers={k: v for k, v in merged.items() if v is not None}
        )

    return call


def metadata(value: bytes) -> str:
    return "photo_id " + base64.b64encode(value).decode()


def tus_patch(
    headers: dict[str, str] | None = None, body: Callable[[World], bytes] = lambda w: b"x"
) -> Call:
    def call(w: World) -> Any:
        created = tus_create()(w)
        assert created.status_code == 201, created.text
        url = created.headers["location"].removeprefix("http://testserver")
        base = {"Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        return w.client.patch(
            url, content=body(w), headers={**w.device(), **TUS, **base, **(headers or {})}
        )

    return call


def photo_path(method: str, suffix: str, photo_id: str) -> Call:
    def call(w: World) -> Any:
        body = {k: w.photo[k] for k in ("sha256", "size", "content_type")}
        kwargs = {"json": body} if suffix == "/upload-target" else {}
        return w.client.request(
            method, f"/api/v1/photos/{photo_id}{suffix}", headers=w.device(), **kwargs
        )

    return call


BAD_UPLOAD_REQUESTS: dict[str, tuple[Call, tuple[int, str]]] = {
    "target-photo-id-not-a-uuid": (photo_path("POST", "/upload-target", "x" * 36),
                                   (404, "photo_not_declared")),
    "target-photo-id-short": (photo_path("POST", "/upload-target", "abc"), NOT_VALID),
    "complete-photo-id-upper-case": (
        lambda w: photo_path("POST", "/complete", w.photo["photo_id"].upper())(w),
        (404, "photo_not_declared"),
    ),
    "complete-before-any-put": (
        lambda w: photo_path("POST", "/complete", w.photo["photo_id"])(w),
        (409, "direct_upload_missing"),
    ),
    "get-photo-id-36-dots": (photo_path("GET", "", "." * 36), (404, "photo_not_declared")),
    "tus-length-negative": (tus_create({"Upload-Length": "-1"}), NOT_VALID),
    "tus-length-not-a-number": (tus_create({"Upload-Length": "NaN"}), NOT_VALID),
    "tus-length-float": (tus_create({"Upload-Length": "1.5"}), NOT_VALID),
    "tus-length-2**80": (tus_create({"Upload-Length": str(2**80)}), (413, "photo_too_large")),
    "tus-length-missing": (tus_create({"Upload-Length": None}), NOT_VALID),
    "tus-length-not-declared": (tus_create({"Upload-Length": "10"}),
                                (409, "photo_declaration_mismatch")),
    "tus-metadata-not-base64": (tus_create({"Upload-Metadata": "photo_id ***"}),
                                (422, "invalid_input")),
    "tus-metadata-not-utf8": (tus_create({"Upload-Metadata": metadata(b"\xff\xfe")}),
                              (422, "invalid_input")),
    "tus-metadata-surrogate-utf8": (tus_create({"Upload-Metadata": metadata(b"\xed\xa0\x80")}),
                                    (422, "invalid_input")),
    "tus-metadata-nul": (tus_create({"Upload-Metadata": metadata(b"a\x00b")}),
                         (404, "photo_not_declared")),
    "tus-metadata-100k": (tus_create({"Upload-Metadata": metadata(b"a" * 100_000)}),
                          (404, "photo_not_declared")),
    "tus-metadata-empty": (tus_create({"Upload-Metadata": ""}), (422, "invalid_input")),
    "tus-version-0.2.2": (tus_create({"Tus-Resumable": "0.2.2"}),
                          (412, "tus_version_unsupported")),
    "tus-offset-negative": (tus_patch({"Upload-Offset": "-1"}), NOT_VALID),
    "tus-offset-not-a-number": (tus_patch({"Upload-Offset": "abc"}), NOT_VALID),
    "tus-offset-2**80": (tus_patch({"Upload-Offset": str(2**80)}),
                         (409, "upload_offset_mismatch")),
    "tus-content-type-json": (tus_patch({"Content-Type": "application/json"}),
                              (415, "unsupported_media_type")),
    "tus-checksum-crc32": (tus_patch({"Upload-Checksum": "crc32 AAAA"}), (422, "invalid_input")),
    "tus-checksum-not-base64": (tus_patch({"Upload-Checksum": "sha1 ***"}),
                                (422, "invalid_input")),
    "tus-chunk-past-length": (tus_patch(body=lambda w: b"x" * (w.photo["size"] + 1)),
                              (422, "invalid_input")),
    "tus-upload-id-unknown": (
        lambda w: w.client.patch(
            f"/api/v1/uploads/{uuid.uuid4()}", content=b"x",
            headers={**w.device(), **TUS, "Upload-Offset": "0",
                     "Content-Type": "application/offset+octet-stream"},
        ),
        (404, "upload_not_found"),
    ),
    "tus-upload-id-short": (
        lambda w: w.client.delete("/api/v1/uploads/short", headers={**w.device(), **TUS}),
        NOT_VALID,
    ),
    "tus-override-to-get": (
        lambda w: w.client.post(
            f"/api/v1/uploads/{uuid.uuid4()}",
            headers={**w.device(), **TUS, "X-HTTP-Method-Override": "GET"},
        ),
        (405, "method_not_allowed"),
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("call", "expected"), list(BAD_UPLOAD_REQUESTS.values()), ids=list(BAD_UPLOAD_REQUESTS)
)
def test_bad_upload_requests_are_refused(
    world: World, call: Call, expected: tuple[int, str]
) -> None:
    with nothing_stored(world, ignore=("photo_uploads",)):
        refused(call(world), *expected)


# --------------------------------------------------------------------------------------------
# Text: invalid Unicode is refused everywhere, legitimate odd Unicode round-trips exactly

INVALID_TEXT = {
    "lone-high-surrogate": "文\ud800三",
    "lone-low-surrogate": "文\udfff三",
    "reversed-pair": "文\udc00\ud800三",
    "nul": "文\x00三",
}


def text_slots(w: World, text: str) -> list[tuple[str, Call, tuple[int, str]]]:
    """Every text field a client fills, with ``text`` in it, and the refusal it gets."""
    n = w.n()
    return [
        ("username", post_user("username", text), NOT_VALID),
        ("display_name", post_user("display_name", text), NOT_VALID),
        ("phone", post_user("phone", text), NOT_VALID),
        ("login username", login("username", text), NOT_VALID),
        ("login password", login("password", text), NOT_VALID),
        ("case description", post_case("description", text), NOT_VALID),
        ("case address", post_case("address", text), NOT_VALID),
        ("case source_ref", post_case("source_ref", text), NOT_VALID),
        ("department name", put_department("name", text), NOT_VALID),
        ("assignment role", assign("role", text), NOT_VALID),
        ("assignment assignee_name", assign("assignee_name", text), NOT_VALID),
        ("assignment note", assign("note", text), NOT_VALID),
        ("comment", act("decline", {"comment": text}), NOT_VALID),
        ("department_code", act("dispatch", {"department_code": text}), NOT_VALID),
        ("verifier username", lambda w: w.client.post(
            f"/api/v1/cases/{w.case_id}/verifier", content=dumps({"username": text}),
            headers={**w.lead, **JSON}), NOT_VALID),
        ("device_name", enroll("device_name", text), NOT_VALID),
        ("device_secret", device_token("device_secret", text), NOT_VALID),
        ("category name", lambda w: upload_file(
            w, "/api/v1/categories/import", category_file(name=text)), CATEGORY_INVALID),
        ("category description", lambda w: upload_file(
            w, "/api/v1/categories/import", category_file(description=text)), CATEGORY_INVALID),
        ("calendar timezone", lambda w: upload_file(
            w, "/api/v1/calendar/import", calendar_file(timezone=text)), CALENDAR_INVALID),
        ("grid name", lambda w: upload_grid_file(
            w, grid_file(properties={"name": text})), UNREADABLE),
        ("grid property", lambda w: upload_grid_file(
            w, grid_file(properties={f"备注{n}": text})), UNREADABLE),
    ]  # fmt: skip


@pytest.mark.parametrize("text", list(INVALID_TEXT.values()), ids=list(INVALID_TEXT))
def test_invalid_text_is_refused_everywhere(world: World, text: str) -> None:
    with nothing_stored(world):
        for slot, call, expected in text_slots(world, text):
            try:
                refused(call(world), *expected)
            except AssertionError as exc:
                raise AssertionError(f"{slot}: {exc}") from None


def sync_body(w: World, phone: SyncClient, **members: Any) -> dict[str, Any]:
    return {
        "protocol_version": 1,
        "app_version": APP_VERSION,
        "device_id": phone.device_id,
        **members,
    }


@pytest.mark.parametrize("text", list(INVALID_TEXT.values()), ids=list(INVALID_TEXT))
def test_invalid_text_in_mutations_is_rejected(world: World, text: str) -> None:
    w = world
    # A rejected mutation leaves its stored result and moves the device's last_mutation_id.
    with nothing_stored(w, ignore=("sync_mutations", "devices")):
        for field in ("description", "address", "category_code", "location.crs"):
            answer = push_raw(w, "report.create", report_args(**{field.replace(".", "__"): text}))
            assert answer.status_code == 200, answer.text
            (result,) = answer.json()["results"]
            assert (result["status"], result["code"]) == ("rejected", "invalid_args"), (
                field,
                result,
            )
        unknown_member = push_raw(w, "report.create", {**report_args(), text: 1})
        assert unknown_member.json()["results"][0]["code"] == "invalid_args"
        # In the envelope, the same is a problem (it quotes the member's name back).
        for path, members in (
            ("/api/v1/sync/push", {"mutations": [], text: 1}),
            ("/api/v1/sync/pull", {"cursor": None, text: 1}),
            ("/api/v1/sync/pull", {"cursor": text}),
        ):
            answer = w.client.post(
                path,
                content=dumps(sync_body(w, w.twin, **members)),
                headers={**w.device(w.twin), **JSON},
            )
            refused(answer, 422, "invalid_message")


def test_usernames_keep_their_rules(world: World) -> None:
    """Letters, digits and . _ @ - only: control characters, spaces, bidi overrides and emoji
    are refused in usernames (they are fine in display names, see below)."""
    with nothing_stored(world):
        for text in ("a\tb", "a\x1bb", "a\x7fb", "a\x85b", "a b", "a\u202eb", "a\u200db", "😀"):
            refused(post_user("username", text)(world), 422, "invalid_input")


LEGITIMATE_TEXT = {
    "rtl-arabic-hebrew": "شارع الملك 文三路 שלום",
    "bidi-overrides-and-marks": "\u202e88 号\u202c\u200f文三路\u200e",
    "zwj-emoji-sequence": "👨\u200d👩\u200d👧\u200d👦 占道",
    "combining-marks": "e\u0301\u0323 Z\u0351\u0352\u0353 ắ",
    "four-byte-characters": "🚧𠀀𪚥🀄",
    "flags-and-variation-selectors": "☔\ufe0f🇨🇳 1\ufe0f\u20e3",
    "zero-width-inside": "文\u200b三\u200c路\u2060",
    "fullwidth-and-ideographic-space": "ＡＢＣ\u3000文三路",
    "line-and-paragraph-separators": "第一段\u2028第二段\u2029第三段",
    "tab-and-newline-inside": "第一行\n第二行\t制表",
    "bom-inside": "文\ufeff三",
    "control-characters-in-free-text": "警\x07报\x1b[0m",  # accepted by the current rules
}


def round_trips(w: World, text: str) -> dict[str, Any]:
    """Store ``text`` through every path that keeps text and read each back."""
    n = w.n()
    client, admin, lead = w.client, w.admin, w.lead
    back: dict[str, Any] = {}

    body = {"username": f"rt{n}", "password": "long enough", "role": "inspector"}
    user = client.post("/api/v1/users", json={**body, "display_name": text}, headers=admin)
    assert user.status_code == 201, user.text
    listed = client.get("/api/v1/users", headers=admin).json()["items"]
    back["display_name"] = next(u["display_name"] for u in listed if u["id"] == user.json()["id"])

    body = case_body(description=text, address=text, source_ref=text)
    case = client.post("/api/v1/cases", json=body, headers=lead)
    assert case.status_code == 201, case.text
    case_url = f"/api/v1/cases/{case.json()['id']}"
    acted = client.post(f"{case_url}/actions/accept", json={"comment": text}, headers=lead)
    assert acted.status_code == 200, acted.text
    read = client.get(case_url, headers=lead).json()
    back["case description"], back["case address"] = read["description"], read["address"]
    back["case source_ref"] = read["source_ref"]
    back["comment"] = read["timeline"][-1]["comment"]

    body = {"code": f"rt-{n}", "name": text, "kind": "other"}
    department = client.put("/api/v1/departments", json=body, headers=admin)
    assert department.status_code == 200, department.text
    listed = client.get("/api/v1/departments", headers=admin).json()["items"]
    back["department name"] = next(d["name"] for d in listed if d["code"] == f"rt-{n}")

    url = f"/api/v1/grids/{w.city.codes[6]}/assignments"
    body = {"kind": "unit", "role": "责任单位", "effective_from": "2031-01-01"}
    assignment = client.post(url, json={**body, "assignee_name": text, "note": text}, headers=admin)
    assert assignment.status_code == 201, assignment.text
    listed = client.get(url, headers=admin).json()["items"]
    found = next(a for a in listed if a["id"] == assignment.json()["id"])
    back["assignee_name"], back["note"] = found["assignee_name"], found["note"]

    code = w.city.enrollment_code("lina")
    body = {"code": code, "device_name": text, "platform": "ios", "app_version": "1.4.2"}
    enrolled = client.post("/api/v1/devices/enroll", json=body)
    assert enrolled.status_code == 201, enrolled.text
    devices = client.get("/api/v1/devices", params={"user_id": w.user_id("lina")}, headers=admin)
    back["device_name"] = next(
        d["name"] for d in devices.json()["items"] if d["id"] == enrolled.json()["device_id"]
    )

    args = report_args(description=text, address=text)
    pushed = push_raw(w, "report.create", args)
    assert pushed.json()["results"][0]["status"] == "applied", pushed.text
    report = client.get(f"/api/v1/reports/{args['report_id']}", headers=w.device(w.twin))
    back["report description"] = report.json()["report"]["description"]
    back["report address"] = report.json()["report"]["address"]

    child = {"code": "0504", "key": "shop_front", "name": text, "description": text}
    imported = upload_file(w, "/api/v1/categories/import", category_file(children=[child]))
    assert imported.status_code == 200, imported.text
    category = client.get("/api/v1/categories/0504", headers=lead).json()
    back["category name"], back["category description"] = category["name"], category["description"]

    version = upload_grid_file(w, grid_file(properties={"name": text}))
    assert version.status_code == 201, version.text
    params = {"version": version.json()["id"]}
    back["grid name"] = client.get(f"/api/v1/grids/{CODE}", params=params, headers=lead).json()[
        "name"
    ]
    return back


@pytest.mark.parametrize("text", list(LEGITIMATE_TEXT.values()), ids=list(LEGITIMATE_TEXT))
def test_legitimate_odd_text_round_trips_exactly(world: World, text: str) -> None:
    back = round_trips(world, text)
    assert {slot: value for slot, value in back.items() if value != text} == {}


# --------------------------------------------------------------------------------------------
# Tokens, cursors and other devices' ids


def forged(
    w: World,
    *,
    user: int | None = None,
    version: int = 0,
    ttl: int = 600,
    device: str | None = None,
    secret: str = TEST_SECRET,
) -> dict[str, str]:
    token = issue_token(secret, w.user_id() if user is None else user, version, ttl, device)
    return {"Authorization": f"Bearer {token}"}


def tampered(w: World) -> dict[str, str]:
    token = w.device()["Authorization"].removeprefix("Bearer ")
    prefix, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["sub"] = w.user_id("lina")
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return {"Authorization": f"Bearer {prefix}.{forged_body}.{signature}"}


TOKENS: dict[str, tuple[Callable[[World], dict[str, str]], tuple[int, str]]] = {
    "missing": (lambda w: {}, (401, "unauthenticated")),
    "basic-scheme": (lambda w: {"Authorization": "Basic emhhbmd3ZWk6cGF0cm9s"},
                     (401, "unauthenticated")),
    "empty-bearer": (lambda w: {"Authorization": "Bearer "}, (401, "unauthenticated")),
    "payload-edited": (tampered, (401, "invalid_token")),
    "signed-with-another-key": (lambda w: forged(w, secret="another-key", device=w.phone.device_id),
                                (401, "invalid_token")),
    "expired": (lambda w: forged(w, ttl=-10, device=w.phone.device_id), (401, "token_expired")),
    "another-users-device": (lambda w: forged(w, device=w.lina.device_id), (401, "invalid_token")),
    "unknown-device": (lambda w: forged(w, device=str(uuid.uuid4())), (401, "invalid_token")),
    "unknown-user": (lambda w: forged(w, user=2**31 - 1), (401, "invalid_token")),
    "user-id-past-int32": (lambda w: forged(w, user=2**40), (401, "invalid_token")),
    "stale-token-version": (lambda w: forged(w, version=99, device=w.phone.device_id),
                            (401, "invalid_token")),
    "device-secret-as-token": (lambda w: {"Authorization": "Bearer xds1.abcdef"},
                               (401, "invalid_token")),
    "revoked-device": (lambda w: w.revoked, (401, "device_revoked")),
    "deactivated-user": (lambda w: w.retired, (401, "user_inactive")),
}  # fmt: skip


def authenticated_calls(w: World, headers: dict[str, str]) -> list[tuple[str, Any]]:
    pid = w.photo["photo_id"]
    target = {k: w.photo[k] for k in ("sha256", "size", "content_type")}
    tus = {
        **headers,
        **TUS,
        "Upload-Length": str(w.photo["size"]),
        "Upload-Metadata": metadata(pid.encode()),
    }
    c = w.client
    return [
        ("me", lambda: c.get("/api/v1/auth/me", headers=headers)),
        ("pull", lambda: c.post("/api/v1/sync/pull", json=sync_body(w, w.phone, cursor=None),
                                headers=headers)),
        ("push", lambda: c.post("/api/v1/sync/push", json=sync_body(w, w.phone, mutations=[]),
                                headers=headers)),
        ("upload-target", lambda: c.post(f"/api/v1/photos/{pid}/upload-target", json=target,
                                         headers=headers)),
        ("tus", lambda: c.post("/api/v1/uploads", headers=tus)),
        ("photo", lambda: c.get(f"/api/v1/photos/{pid}", headers=headers)),
        ("case", lambda: c.post("/api/v1/cases", json=case_body(), headers=headers)),
        ("user", lambda: c.post("/api/v1/users", json={"username": f"tok{w.n()}",
                                "password": "long enough", "role": "admin"}, headers=headers)),
    ]  # fmt: skip


@pytest.mark.parametrize(("make", "expected"), list(TOKENS.values()), ids=list(TOKENS))
def test_bad_tokens_are_refused_everywhere(
    world: World, make: Callable[[World], dict[str, str]], expected: tuple[int, str]
) -> None:
    with nothing_stored(world):
        for name, call in authenticated_calls(world, make(world)):
            try:
                refused(call(), *expected)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None


def test_a_password_token_cannot_sync(world: World) -> None:
    headers = world.api.token_for("lead")
    with nothing_stored(world):
        for _name, call in authenticated_calls(world, headers)[1:3]:
            refused(call(), 403, "device_token_required")


def pull(w: World, phone: SyncClient, cursor: Any, headers: dict[str, str] | None = None) -> Any:
    return w.client.post(
        "/api/v1/sync/pull",
        content=dumps(sync_body(w, phone, cursor=cursor)),
        headers={**(headers or w.device(phone)), **JSON},
    )


def test_bad_cursors(world: World) -> None:
    w = world
    first = pull(w, w.lina, None)
    assert first.status_code == 200 and first.json()["cursor"], first.text
    lina_cursor = first.json()["cursor"]
    # Replayed: the same cursor again is the same answer, never a reset or a gap.
    again = pull(w, w.lina, lina_cursor)
    assert again.status_code == 200 and again.json()["reset"] is False
    assert again.json()["changes"] == pull(w, w.lina, lina_cursor).json()["changes"]
    # Another user's device's cursor: reset (the protocol's answer to every odd cursor).
    foreign = pull(w, w.twin, lina_cursor)
    assert foreign.status_code == 200, foreign.text
    assert foreign.json()["reset"] is True and foreign.json()["changes"] == []
    with nothing_stored(w):
        for cursor in (5, {"c": 1}, ["c1"], True, "c" * 100_000, "c1.\x00.x"):
            refused(pull(w, w.twin, cursor), 422, "invalid_message")
        # The grid list's cursor is refused when it does not hold a grid code.
        for cursor in (base64.urlsafe_b64encode(b"\x01\x02").decode(), "%%%", "=" * 8):
            answer = w.client.get("/api/v1/grids", params={"cursor": cursor}, headers=w.lead)
            refused(answer, 422, "invalid_cursor")


def test_another_devices_id_in_a_body(world: World) -> None:
    w = world
    own = w.device(w.phone)
    with nothing_stored(w):
        for device_id in (w.twin.device_id, w.lina.device_id, str(uuid.uuid4())):
            for path, members in (
                ("/api/v1/sync/push", {"mutations": []}),
                ("/api/v1/sync/pull", {"cursor": None}),
            ):
                body = {**sync_body(w, w.phone, **members), "device_id": device_id}
                refused(w.client.post(path, json=body, headers=own), 403, "device_mismatch")
        upper = {**sync_body(w, w.phone, cursor=None), "device_id": str(w.phone.device_id).upper()}
        refused(w.client.post("/api/v1/sync/pull", json=upper, headers=own), 422, "invalid_message")
    # Duplicate keys: the last one wins, as with every JSON parser the app may use.
    base = dumps(sync_body(w, w.phone, cursor=None)).decode()
    other_last = base[:-1] + f', "device_id": "{w.twin.device_id}"}}'
    answer = w.client.post("/api/v1/sync/pull", content=other_last, headers={**own, **JSON})
    refused(answer, 403, "device_mismatch")
    own_last = (
        base.replace(f'"{w.phone.device_id}"', f'"{w.twin.device_id}"')[:-1]
        + f', "device_id": "{w.phone.device_id}"}}'
    )
    answer = w.client.post("/api/v1/sync/pull", content=own_last, headers={**own, **JSON})
    assert answer.status_code == 200, answer.text


# --------------------------------------------------------------------------------------------
# Sync mutations with bad arguments: rejected inside a 200, nothing of them kept

BAD_MUTATIONS: dict[str, tuple[str, Any, str | None]] = {
    "lon-nan-literal": ("report.create", report_args(location__lon=Raw("NaN")), "invalid_args"),
    "lon-infinity-literal": ("report.create", report_args(location__lon=Raw("Infinity")),
                             "invalid_args"),
    "lat-minus-infinity-literal": ("report.create", report_args(location__lat=Raw("-Infinity")),
                                   "invalid_args"),
    "lon-1e400": ("report.create", report_args(location__lon=Raw("1e400")), "invalid_args"),
    "lon-nan-string": ("report.create", report_args(location__lon="NaN"), "invalid_args"),
    "lon-as-string": ("report.create", report_args(location__lon="120.0005"), "invalid_args"),
    "lon-true": ("report.create", report_args(location__lon=True), "invalid_args"),
    "lat-91": ("report.create", report_args(location__lat=91), "invalid_args"),
    "crs-epsg": ("report.create", report_args(location__crs="EPSG:4326"), "invalid_args"),
    "crs-upper-case": ("report.create", report_args(location__crs="WGS84"), "invalid_args"),
    "crs-mars": ("report.create", report_args(location__crs="mars"), "invalid_args"),
    "accuracy-negative": ("report.create", report_args(location__accuracy_m=-1), "invalid_args"),
    "accuracy-nan": ("report.create", report_args(location__accuracy_m=Raw("NaN")),
                     "invalid_args"),
    "location-as-list": ("report.create", report_args(location=list(HERE)), "invalid_args"),
    "description-blank": ("report.create", report_args(description=" \u3000 "), "invalid_args"),
    "category-letters": ("report.create", report_args(category_code="ABCD"), "invalid_args"),
    "category-number": ("report.create", report_args(category_code=504), "invalid_args"),
    "captured-at-words": ("report.create", report_args(captured_at="yesterday"), "invalid_args"),
    "captured-at-without-offset": ("report.create",
                                   report_args(captured_at="2026-11-23T08:14:40"), "invalid_args"),
    "report-id-upper-case": ("report.create",
                             report_args(report_id=str(uuid.uuid4()).upper()), "invalid_args"),
    "report-id-not-a-uuid": ("report.create", report_args(report_id="report-1"), "invalid_args"),
    "photo-sha-upper-case": ("report.create", report_args(photos=[
        {**declaration(b"x"), "sha256": "A" * 64}]), "invalid_args"),
    "photo-size-zero": ("report.create", report_args(photos=[{**declaration(b"x"), "size": 0}]),
                        "invalid_args"),
    "photo-size-too-large": ("report.create", report_args(
        photos=[{**declaration(b"x"), "size": 50_000_001}]), "invalid_args"),
    "photo-gif": ("report.create", report_args(
        photos=[{**declaration(b"x"), "content_type": "image/gif"}]), "invalid_args"),
    "21-photos": ("report.create", report_args(photos=[declaration(bytes([i])) for i in range(21)]),
                  "invalid_args"),
    "unknown-argument": ("report.create", {**report_args(), "priority": "high"}, "invalid_args"),
    "args-as-list": ("report.create", [], None),
    "update-base-version-string": ("report.update", {"report_id": str(uuid.uuid4()),
                                   "base_version": "1", "changes": {}}, "invalid_args"),
    "unknown-mutation": ("report.destroy", {}, "unknown_mutation"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args", "code"), list(BAD_MUTATIONS.values()), ids=list(BAD_MUTATIONS)
)
def test_bad_mutation_arguments_are_rejected(
    world: World, name: str, args: Any, code: str | None
) -> None:
    w = world
    with nothing_stored(w, ignore=("sync_mutations", "devices")):
        answer = push_raw(w, name, args)
        if code is None:  # not a mutation at all: the envelope is malformed
            refused(answer, 422, "invalid_message")
            return
        assert answer.status_code == 200, answer.text
        (result,) = answer.json()["results"]
        assert (result["status"], result["code"]) == ("rejected", code), result


# --------------------------------------------------------------------------------------------
# Path and query parameters, sizes


def get(path: str, who: str = "lead", **params: Any) -> Call:
    return lambda w: w.client.get(path, params=params, headers=getattr(w, who))


def post(path: str, who: str = "lead", body: Any = None) -> Call:
    return lambda w: w.client.post(path, json=body or {}, headers=getattr(w, who))


PATHS: dict[str, tuple[Call, tuple[int, str]]] = {
    "case-id-past-int32": (get(f"/api/v1/cases/{2**31}"), NOT_VALID),
    "case-id-zero": (get("/api/v1/cases/0"), NOT_VALID),
    "case-id-negative": (get("/api/v1/cases/-1"), NOT_VALID),
    "case-id-float": (get("/api/v1/cases/1e3"), NOT_VALID),
    "case-action-unknown": (post("/api/v1/cases/1/actions/destroy"), NOT_VALID),
    "case-action-5000-chars": (post("/api/v1/cases/1/actions/" + "a" * 5000), NOT_VALID),
    "case-verifier-id-past-int32": (post(f"/api/v1/cases/{2**31}/verifier",
                                         body={"username": "zhangwei"}), NOT_VALID),
    "case-duplicates-id-past-int32": (get(f"/api/v1/cases/{2**31}/duplicates"), NOT_VALID),
    "cases-limit-zero": (get("/api/v1/cases", limit=0), NOT_VALID),
    "cases-limit-million": (get("/api/v1/cases", limit=10**6), NOT_VALID),
    "cases-query-10000-chars": (get("/api/v1/cases", q="a" * 10_000), NOT_VALID),
    "cases-status-unknown": (get("/api/v1/cases", status="bogus"), NOT_VALID),
    "cases-created-from-without-offset": (get("/api/v1/cases", created_from="2026-01-01T09:00"),
                                          (422, "invalid_time_range")),
    "overdue-limit-zero": (get("/api/v1/cases/overdue", limit=0), NOT_VALID),
    "tile-z-25": (get("/api/v1/tiles/cases/25/0/0.mvt"), (422, "tile_out_of_range")),
    "tile-x-past-2**z": (get("/api/v1/tiles/cases/3/8/0.mvt"), (422, "tile_out_of_range")),
    "tile-z-negative": (get("/api/v1/tiles/grids/-1/0/0.mvt"), (422, "tile_out_of_range")),
    "tile-z-2**70": (get(f"/api/v1/tiles/grids/{2**70}/0/0.mvt"), (422, "tile_out_of_range")),
    "tile-png": (get("/api/v1/tiles/grids/0/0/0.png"), (404, "not_found")),
    "category-one-digit": (get("/api/v1/categories/1"), NOT_VALID),
    "category-seven-digits": (get("/api/v1/categories/1234567"), NOT_VALID),
    "category-circled-digits": (get("/api/v1/categories/①②"), NOT_VALID),
    "device-id-37-chars": (post("/api/v1/devices/" + "x" * 37 + "/revoke", "admin"), NOT_VALID),
    "device-id-unknown": (post("/api/v1/devices/nope/revoke", "admin"), (404, "device_not_found")),
    "devices-user-past-int32": (get("/api/v1/devices", "admin", user_id=2**31), NOT_VALID),
    "user-id-past-int32": (post(f"/api/v1/users/{2**31}/deactivate", "admin"), NOT_VALID),
    "user-id-zero": (post("/api/v1/users/0/unit", "admin", {"unit_code": None}), NOT_VALID),
    "enrollment-user-past-int32": (post(f"/api/v1/users/{2**31}/enrollment-codes", "admin"),
                                   NOT_VALID),
    "report-id-10000-chars": (get("/api/v1/reports/" + "a" * 10_000), NOT_VALID),
    "report-id-unknown": (get(f"/api/v1/reports/{'x' * 36}"), (404, "report_not_found")),
    "grid-version-zero": (get("/api/v1/grids", version=0), NOT_VALID),
    "grid-zone-tier-unknown": (get("/api/v1/grids", zone_tier="bogus"), NOT_VALID),
    "grid-format-xml": (get("/api/v1/grids", format="xml"), NOT_VALID),
    "grid-bbox-nan": (get("/api/v1/grids", bbox="nan,nan,nan,nan"), (422, "invalid_bbox")),
    "grid-bbox-infinite": (get("/api/v1/grids", bbox="-inf,0,inf,1"), (422, "invalid_bbox")),
    "grid-bbox-past-180": (get("/api/v1/grids", bbox="-200,0,200,1"), (422, "invalid_bbox")),
    "cases-bbox-1e400": (get("/api/v1/cases", bbox="1e400,0,1,1"), (422, "invalid_bbox")),
    "assignments-at-year-99999": (get("/api/v1/grids/330106001001001/assignments",
                                      at="99999-01-01"), NOT_VALID),
    "deadline-limit-nan": (get("/api/v1/calendar/deadline", start="2026-01-05T09:00:00+08:00",
                               limit="NaNh"), (422, "invalid_input")),
}  # fmt: skip


@pytest.mark.parametrize(("call", "expected"), list(PATHS.values()), ids=list(PATHS))
def test_path_and_query_parameters_out_of_range(
    world: World, call: Call, expected: tuple[int, str]
) -> None:
    with nothing_stored(world):
        refused(call(world), *expected)


def test_bodies_over_the_configured_limits(world: World) -> None:
    w = world
    too_big = b'{"username": "' + b"x" * MAX_REQUEST + b'"}'
    with nothing_stored(w):
        for method, path, headers, _code in json_endpoints(w):
            answer = w.client.request(method, path, content=too_big, headers={**headers, **JSON})
            refused(answer, 413, "payload_too_large")
        grid = b" " * (LIMITS["grid_import_max_bytes"] + 1) + grid_file()  # under the request limit
        refused(upload_grid_file(w, grid), 413, "payload_too_large")
    # A photo declared (by a valid report) above the server's photo limit: refused at once.
    big = {**declaration(b"x"), "size": LIMITS["photo_max_bytes"] + 1}
    pushed = push_raw(w, "report.create", report_args(photos=[big]))
    assert pushed.json()["results"][0]["status"] == "applied", pushed.text
    with nothing_stored(w, ignore=("photo_uploads",)):
        target = w.client.post(
            f"/api/v1/photos/{big['photo_id']}/upload-target",
            json={k: big[k] for k in ("sha256", "size", "content_type")},
            headers=w.device(w.twin),
        )
        refused(target, 413, "photo_too_large")
        tus = w.client.post(
            "/api/v1/uploads",
            headers={
                **w.device(w.twin),
                **TUS,
                "Upload-Length": str(big["size"]),
                "Upload-Metadata": metadata(big["photo_id"].encode()),
            },
        )
        refused(tus, 413, "photo_too_large")


def test_snapshot_sees_what_a_request_stores(world: World) -> None:
    """The guard itself: an accepted request does show up in the comparison."""
    before = stored(world.api)
    made = world.client.post("/api/v1/cases", json=case_body(), headers=world.lead)
    assert made.status_code == 201, made.text
    diff = changed(before, stored(world.api))
    assert {"cases", "case_events", "audit_log"} <= set(diff), diff


def test_the_corpus_templates_are_themselves_good(world: World) -> None:
    """Each corpus entry fails for its own reason, not because its template was bad."""
    assert upload_grid_file(world, grid_file()).status_code == 201
    dry_run = upload_file(world, "/api/v1/categories/import", category_file(), dry_run=True)
    assert dry_run.status_code == 200, dry_run.text
    calendar = upload_file(world, "/api/v1/calendar/import", calendar_file())
    assert calendar.status_code == 200, calendar.text
