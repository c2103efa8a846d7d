"""Push/pull messages: strict parsing, invariants, exact round trips, schema agreement."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sync_protocol import schemas
from sync_protocol.errors import ProtocolError
from sync_protocol.messages import (
    MAX_BATCH_MUTATIONS,
    Change,
    Directive,
    DirectiveType,
    Mutation,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    RecordRef,
    ResultStatus,
    encode_json,
)
from sync_protocol.timefmt import format_rfc3339

DEVICE = "9b2f6c1e-4a3d-4f0e-8b7a-2c5d9e1f3a40"
NOW = "2026-11-23T00:16:05Z"


def push_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocol_version": 1,
        "app_version": "1.4.2",
        "device_id": DEVICE,
        "mutations": [
            {"id": 7, "name": "report.create", "args": {"x": 1}, "client_time": NOW},
            {"id": 8, "name": "report.update", "args": {}},
        ],
    }
    body.update(overrides)
    return body


def pull_response(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "changes": [
            {"entity": "grid", "id": "99010100200934", "op": "put", "version": 1, "data": {}},
            {"entity": "report", "id": "r", "op": "delete", "version": 5, "reason": "deleted"},
        ],
        "cursor": "c1.abc.def",
        "has_more": False,
        "reset": False,
        "digest": "5d41402abc4b2a76b9719d911017c592",
        "record_count": 214,
        "last_mutation_id": 8,
        "directives": [],
        "server_time": NOW,
    }
    body.update(overrides)
    return body


def code_of(call: Any, *args: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        call(*args)
    return info.value.code


# -- push requests ---------------------------------------------------------------------------


def test_push_request_round_trips() -> None:
    body = push_body()
    request = PushRequest.from_json(body)
    assert request.mutations[1] == Mutation(8, "report.update", {})
    assert request.to_json() == body


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"protocol_version": 2}, "unsupported_protocol"),
        ({"protocol_version": True}, "invalid_message"),
        ({"protocol_version": "1"}, "invalid_message"),
        ({"app_version": "1.x"}, "invalid_app_version"),
        ({"app_version": ""}, "invalid_message"),
        ({"device_id": "9B2F6C1E-4A3D-4F0E-8B7A-2C5D9E1F3A40"}, "invalid_message"),
        ({"device_id": "9b2f6c1e4a3d4f0e8b7a2c5d9e1f3a40"}, "invalid_message"),
        ({"mutations": {}}, "invalid_message"),
        ({"mutations": [{"id": 0, "name": "a", "args": {}}]}, "invalid_message"),
        ({"mutations": [{"id": 1.0, "name": "a", "args": {}}]}, "invalid_message"),
        ({"mutations": [{"id": True, "name": "a", "args": {}}]}, "invalid_message"),
        ({"mutations": [{"id": 1, "name": "", "args": {}}]}, "invalid_message"),
        ({"mutations": [{"id": 1, "name": "a", "args": []}]}, "invalid_message"),
        ({"mutations": [{"id": 1, "name": "a", "args": {}, "extra": 1}]}, "invalid_message"),
        ({"mutations": [{"id": 1, "name": "a"}]}, "invalid_message"),
        ({"mutations": [{"id": 2**53, "name": "a", "args": {}}]}, "invalid_message"),
        ({"extra": True}, "invalid_message"),
    ],
)
def test_push_request_refusals(overrides: dict[str, Any], code: str) -> None:
    assert code_of(PushRequest.from_json, push_body(**overrides)) == code


def test_protocol_version_is_checked_before_the_rest() -> None:
    # A future protocol may shape the body differently: the answer must say "unsupported",
    # not "invalid", so the app knows what to do.
    body = {"protocol_version": 2, "anything": "else"}
    with pytest.raises(ProtocolError) as info:
        PushRequest.from_json(body)
    assert info.value.code == "unsupported_protocol"
    assert info.value.status_hint == 400
    assert info.value.extra == {"supported": [1]}


def test_error_messages_name_the_field_path() -> None:
    body = push_body(mutations=[{"id": 1, "name": "a", "args": {}}, {"id": 2, "name": 3}])
    with pytest.raises(ProtocolError, match=r"mutations\[1\]\.name"):
        PushRequest.from_json(body)


def test_batch_limits() -> None:
    too_many = [{"id": i, "name": "a", "args": {}} for i in range(1, MAX_BATCH_MUTATIONS + 2)]
    with pytest.raises(ProtocolError) as info:
        PushRequest.from_json(push_body(mutations=too_many))
    assert (info.value.code, info.value.status_hint) == ("batch_too_large", 413)
    exactly = too_many[:MAX_BATCH_MUTATIONS]
    assert len(PushRequest.from_json(push_body(mutations=exactly)).mutations) == 200
    gap = [{"id": 1, "name": "a", "args": {}}, {"id": 3, "name": "a", "args": {}}]
    with pytest.raises(ProtocolError) as info:
        PushRequest.from_json(push_body(mutations=gap))
    assert (info.value.code, info.value.status_hint) == ("invalid_batch", 422)
    backwards = [{"id": 2, "name": "a", "args": {}}, {"id": 1, "name": "a", "args": {}}]
    assert code_of(PushRequest.from_json, push_body(mutations=backwards)) == "invalid_batch"


def test_an_empty_push_is_allowed() -> None:
    assert PushRequest.from_json(push_body(mutations=[])).mutations == ()


def test_non_object_bodies_are_refused() -> None:
    for body in (None, [], "x", 1, True):
        assert code_of(PushRequest.from_json, body) == "invalid_message"
        assert code_of(PullResponse.from_json, body) == "invalid_message"


# -- results and push responses ----------------------------------------------------------------

REF = {"entity": "report", "id": "r1", "version": 3}


@pytest.mark.parametrize(
    "result",
    [
        {"id": 1, "status": "applied", "record": REF},
        {"id": 1, "status": "applied", "record": REF, "ignored_fields": ["status"]},
        {"id": 1, "status": "rejected", "code": "invalid_args", "message": "m"},
        {"id": 1, "status": "conflict", "record": REF, "fields": ["a"], "server": {"a": 1}},
        {"id": 1, "status": "gone"},
        {"id": 1, "status": "locked", "record": REF, "message": "closed"},
        {"id": 1, "status": "retry", "retry_after": 30},
        {"id": 1, "status": "applied", "record": REF, "replayed": True},
    ],
)
def test_valid_results_round_trip(result: dict[str, Any]) -> None:
    assert MutationResult.from_json(result).to_json() == result
    assert Draft202012Validator(schemas.MUTATION_RESULT).is_valid(result)


@pytest.mark.parametrize(
    "result",
    [
        {"id": 1, "status": "applied"},  # no record
        {"id": 1, "status": "rejected"},  # no code
        {"id": 1, "status": "retry"},  # no retry_after
        {"id": 1, "status": "conflict", "record": REF},  # no fields/server
        {"id": 1, "status": "conflict", "record": REF, "fields": [], "server": {}},
        {"id": 1, "status": "gone", "retry_after": 3},
        {"id": 1, "status": "rejected", "code": "x", "ignored_fields": ["status"]},
        {"id": 1, "status": "applied", "record": REF, "fields": ["a"], "server": {"a": 1}},
        {"id": 1, "status": "rejected", "code": "Not-Snake"},
        {"id": 1, "status": "done", "record": REF},
        {"id": 1, "status": "applied", "record": {"entity": "case", "id": "1", "version": 1}},
        {"id": 1, "status": "applied", "record": {**REF, "version": 0}},
        {"id": 1, "status": "applied", "record": REF, "replayed": "yes"},
    ],
)
def test_invalid_results_are_refused_by_parser_and_schema(result: dict[str, Any]) -> None:
    assert code_of(MutationResult.from_json, result) == "invalid_message"
    assert not Draft202012Validator(schemas.MUTATION_RESULT).is_valid(result)


def test_conflicting_fields_need_their_server_values() -> None:
    # Beyond what the schema can express: each conflicting field has a value in "server".
    result = {"id": 1, "status": "conflict", "record": REF, "fields": ["a"], "server": {"b": 1}}
    assert code_of(MutationResult.from_json, result) == "invalid_message"


def test_null_and_absent_optional_members_are_equivalent() -> None:
    explicit = {"id": 1, "status": "gone", "record": None, "code": None, "replayed": False}
    assert MutationResult.from_json(explicit).to_json() == {"id": 1, "status": "gone"}


def test_push_response_invariants() -> None:
    applied = {"id": 7, "status": "applied", "record": REF}
    retry = {"id": 8, "status": "retry", "retry_after": 5}
    ok = {"results": [applied, retry], "last_mutation_id": 7, "directives": [], "server_time": NOW}
    assert PushResponse.from_json(ok).to_json() == ok
    # A retry at or below last_mutation_id: a racing duplicate processed it meanwhile.
    assert PushResponse.from_json({**ok, "last_mutation_id": 8}).results[1].id == 8
    # Lists are accepted when building messages, and frozen.
    built = PushResponse(
        results=[MutationResult.from_json(applied)], last_mutation_id=7, server_time=NOW
    )
    assert built == PushResponse.from_json({**ok, "results": [applied]})
    assert isinstance(built.results, tuple)
    for bad in (
        {**ok, "results": [retry, {**applied, "id": 9}]},  # something after retry
        {**ok, "results": [applied, {**retry, "id": 9}]},  # not consecutive
        {**ok, "last_mutation_id": 6},  # an applied result above last_mutation_id
        {**ok, "server_time": "2026-11-23 00:16:05"},
        {**ok, "directives": None},
    ):
        assert code_of(PushResponse.from_json, bad) == "invalid_message"


# -- pull ----------------------------------------------------------------------------------------


def test_pull_request_defaults_and_limits() -> None:
    minimal = {"protocol_version": 1, "app_version": "1.4", "device_id": DEVICE}
    request = PullRequest.from_json(minimal)
    assert (request.cursor, request.limit) == (None, 500)
    assert request.to_json() == {**minimal, "cursor": None, "limit": 500}
    for limit in (0, 1001, "5", 2.5):
        assert code_of(PullRequest.from_json, {**minimal, "limit": limit}) == "invalid_message"
    assert code_of(PullRequest.from_json, {**minimal, "cursor": ""}) == "invalid_message"
    assert code_of(PullRequest.from_json, {**minimal, "cursor": "x" * 1025}) == "invalid_message"


def test_pull_response_round_trips() -> None:
    body = pull_response()
    response = PullResponse.from_json(body)
    assert response.changes[1].reason == "deleted"
    assert response.to_json() == body
    without_digest = pull_response(has_more=True)
    del without_digest["digest"], without_digest["record_count"]
    assert PullResponse.from_json(without_digest).to_json() == without_digest


@pytest.mark.parametrize(
    "overrides",
    [
        {"digest": None},  # record_count without digest
        {"record_count": None},
        {"has_more": True},  # a digest only when up to date
        {"digest": "5D41402ABC4B2A76B9719D911017C592"},
        {"digest": "5d41402abc4b2a76b9719d911017c59"},
        {"reset": True},  # a reset carries no changes, digest or cursor
        {"cursor": None},  # a cursor unless reset
        {"changes": [{"entity": "report", "id": "r", "op": "put", "version": 1}]},
        {"changes": [{"entity": "report", "id": "r", "op": "delete", "version": 1}]},
        {
            "changes": [
                {"entity": "report", "id": "r", "op": "delete", "version": 1, "reason": "moved"}
            ]
        },
        {
            "changes": [
                {
                    "entity": "report",
                    "id": "r",
                    "op": "put",
                    "version": 1,
                    "data": {},
                    "reason": "deleted",
                }
            ]
        },
        {"changes": [{"entity": "report", "id": "", "op": "put", "version": 1, "data": {}}]},
        {"has_more": 0},
        {"server_time": "yesterday"},
        {"directives": [{"type": "self_destruct", "message": ""}]},
    ],
)
def test_pull_response_refusals(overrides: dict[str, Any]) -> None:
    body = pull_response(**overrides)
    body = {k: v for k, v in body.items() if v is not None or k == "cursor"}
    assert code_of(PullResponse.from_json, body) == "invalid_message"
    assert not Draft202012Validator(schemas.PULL_RESPONSE).is_valid(body)


def test_reset_response() -> None:
    body = pull_response(changes=[], cursor=None, reset=True)
    del body["digest"], body["record_count"]
    assert PullResponse.from_json(body).reset


def test_encode_json_is_compact_utf8_and_refuses_nan() -> None:
    assert encode_json({"a": "张", "b": [1, 2]}) == '{"a":"张","b":[1,2]}'.encode()
    with pytest.raises(ValueError):
        encode_json({"x": float("nan")})


# -- property-based: every valid message round-trips and matches its schema --------------------

texts = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | texts
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(texts, json_values, max_size=4)
uuids = st.uuids().map(str)
# Years 2..9998: at the very ends of datetime's range, historical zone offsets with seconds
# (which format_rfc3339 converts to UTC) would leave the representable range.
times = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.timezones()
).map(format_rfc3339)
codes = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
names = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FFF, blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)
app_versions = st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)).map(
    lambda v: f"{v[0]}.{v[1]}.{v[2]}"
)
directives = st.builds(
    Directive,
    type=st.sampled_from(DirectiveType),
    message=texts,
    min_app_version=st.none() | app_versions,
)
refs = st.builds(
    RecordRef,
    entity=st.sampled_from(["report", "grid"]),
    id=names,
    version=st.integers(1, 2**53 - 1),
)


@st.composite
def results(draw: st.DrawFn, id: int, status: ResultStatus) -> MutationResult:
    kwargs: dict[str, Any] = {"id": id, "status": status, "replayed": draw(st.booleans())}
    kwargs["message"] = draw(st.none() | texts)
    kwargs["code"] = draw(codes) if status == ResultStatus.rejected else draw(st.none() | codes)
    if status in (ResultStatus.applied, ResultStatus.conflict):
        kwargs["record"] = draw(refs)
    else:
        kwargs["record"] = draw(st.none() | refs)
    if status == ResultStatus.applied:
        kwargs["ignored_fields"] = draw(st.none() | st.lists(names, max_size=3).map(tuple))
    if status == ResultStatus.conflict:
        fields = draw(st.lists(names, min_size=1, max_size=3, unique=True))
        kwargs["fields"] = tuple(fields)
        kwargs["server"] = {f: draw(json_values) for f in fields}
    if status == ResultStatus.retry:
        kwargs["retry_after"] = draw(st.integers(0, 86_400))
    return MutationResult(**kwargs)


@st.composite
def push_responses(draw: st.DrawFn) -> PushResponse:
    first = draw(st.integers(1, 10_000))
    statuses = draw(st.lists(st.sampled_from(ResultStatus), max_size=8))
    # Only the last result may be a retry: keep a retry only in last position.
    statuses = [s for s in statuses[:-1] if s != ResultStatus.retry] + statuses[-1:]
    items = tuple(draw(results(first + i, s)) for i, s in enumerate(statuses))
    processed = [r.id for r in items if r.status != ResultStatus.retry]
    last = max(processed, default=first - 1)
    return PushResponse(
        results=items,
        last_mutation_id=last,
        server_time=draw(times),
        directives=tuple(draw(st.lists(directives, max_size=2))),
    )


@st.composite
def push_requests(draw: st.DrawFn) -> PushRequest:
    first = draw(st.integers(1, 10_000))
    count = draw(st.integers(0, 5))
    mutations = tuple(
        Mutation(first + i, draw(names), draw(objects), draw(st.none() | times))
        for i in range(count)
    )
    return PushRequest(1, draw(app_versions), draw(uuids), mutations)


changes = st.one_of(
    st.builds(
        Change,
        entity=st.sampled_from(["report", "grid"]),
        id=names,
        op=st.just("put"),
        version=st.integers(1, 2**40),
        data=objects,
    ),
    st.builds(
        Change,
        entity=st.sampled_from(["report", "grid"]),
        id=names,
        op=st.just("delete"),
        version=st.integers(1, 2**40),
        reason=st.sampled_from(["deleted", "out_of_scope"]),
    ),
)


@st.composite
def pull_responses(draw: st.DrawFn) -> PullResponse:
    common = {
        "last_mutation_id": draw(st.integers(0, 2**40)),
        "server_time": draw(times),
        "directives": tuple(draw(st.lists(directives, max_size=2))),
    }
    if draw(st.booleans()):
        return PullResponse(changes=(), cursor=None, has_more=False, reset=True, **common)
    has_more = draw(st.booleans())
    digest = None if has_more else draw(st.none() | st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
    return PullResponse(
        changes=tuple(draw(st.lists(changes, max_size=4))),
        cursor=draw(
            st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
        ),
        has_more=has_more,
        digest=digest,
        record_count=None if digest is None else draw(st.integers(0, 10**6)),
        **common,
    )


pull_requests = st.builds(
    PullRequest,
    protocol_version=st.just(1),
    app_version=app_versions,
    device_id=uuids,
    cursor=st.none()
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=50),
    limit=st.integers(1, 1000),
)

CASES = [
    (PushRequest, push_requests(), schemas.PUSH_REQUEST),
    (PushResponse, push_responses(), schemas.PUSH_RESPONSE),
    (PullRequest, pull_requests, schemas.PULL_REQUEST),
    (PullResponse, pull_responses(), schemas.PULL_RESPONSE),
]


@pytest.mark.parametrize(
    ("cls", "strategy", "schema"), CASES, ids=lambda c: getattr(c, "__name__", "")
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_generated_messages_round_trip_and_match_the_schema(
    cls: Any, strategy: Any, schema: dict[str, Any], data: st.DataObject
) -> None:
    message = data.draw(strategy)
    wire = json.loads(encode_json(message.to_json()))  # exactly what travels
    assert cls.from_json(wire) == message
    assert cls.from_json(wire).to_json() == wire
    errors = list(Draft202012Validator(schema).iter_errors(wire))
    assert errors == []


@settings(max_examples=200, deadline=None)
@given(push_responses(), st.data())
def test_a_mutated_message_is_refused_or_still_valid(
    response: PushResponse, data: st.DataObject
) -> None:
    """Dropping any member never yields a message that parses into something different."""
    wire = response.to_json()
    if not wire["results"]:
        return
    broken = copy.deepcopy(wire)
    index = data.draw(st.integers(0, len(broken["results"]) - 1))
    key = data.draw(st.sampled_from(sorted(broken["results"][index])))
    del broken["results"][index][key]
    try:
        parsed = PushResponse.from_json(broken)
    except ProtocolError as exc:
        assert exc.code == "invalid_message"
    else:  # only optional members may go
        assert key in ("message", "code", "record", "replayed", "ignored_fields")
        assert parsed.to_json() == broken


# -- error codes ----------------------------------------------------------------------------------


def test_every_raised_code_is_catalogued_with_its_status() -> None:
    """Servers render codes from ERROR_CODES; a code raised but not listed would be a 400."""
    import ast
    from pathlib import Path

    from sync_protocol.errors import ERROR_CODES

    package = Path(__file__).resolve().parents[2] / "sync_protocol"
    raised = set()
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("ProtocolError", "MutationArgsError")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                raised.add(node.args[0].value)
    assert raised - set(ERROR_CODES) == set()
    assert {"invalid_message", "invalid_cursor", "batch_too_large", "invalid_batch"} <= set(
        ERROR_CODES
    )
    assert all(status in (None, 400, 409, 413, 422, 426) for status in ERROR_CODES.values())


def test_problem_document_carries_code_and_extras() -> None:
    from sync_protocol.problems import Problem, problem_document

    error = ProtocolError("unsupported_protocol", "protocol 2", extra={"supported": [1]})
    document = problem_document(error)
    assert document["status"] == 400 and document["supported"] == [1]
    parsed = Problem.from_json(document)
    assert (parsed.code, parsed.supported) == ("unsupported_protocol", (1,))
    assert Draft202012Validator(schemas.PROBLEM).is_valid(document)


def test_builders_may_pass_plain_strings_but_not_wrong_ones() -> None:
    result = MutationResult(id=1, status="gone")  # type: ignore[arg-type]
    assert result.status is ResultStatus.gone and result.to_json()["status"] == "gone"
    assert Directive("reset", "重新同步").type is DirectiveType.reset  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        MutationResult(id=1, status="done")  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):
        Change(entity="grid", id="g", op="upsert", version=1, data={})  # type: ignore[arg-type]
    with pytest.raises(ProtocolError):  # a version the phones would refuse fails on the server
        Change(entity="grid", id="g", op="delete", version=0, reason="out_of_scope")
