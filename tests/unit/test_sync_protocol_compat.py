"""Evolution of the wire format (docs/sync-protocol.md section 1).

Servers may add members to responses and phones must ignore those they do not know, because
phones cannot be upgraded in lockstep with the server. Requests stay strict: the server refuses
unknown members, so a typo in a field name never vanishes silently. Unknown *values* of known
members (a future result status, op or directive type) are not tolerated on either side.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sync_protocol._decode import Fields
from sync_protocol.enrollment import (
    EnrolledUser,
    EnrollRequest,
    EnrollResponse,
    TokenRequest,
    TokenResponse,
)
from sync_protocol.errors import InvalidMessage, ProtocolError
from sync_protocol.messages import (
    Change,
    Directive,
    Mutation,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    RecordRef,
)
from sync_protocol.mutations import MutationArgsError, validate_mutation
from sync_protocol.problems import Problem

EXAMPLES = Path(__file__).resolve().parents[2] / "sync_protocol" / "examples"
EXTRA = "added_by_a_later_server"
# Any JSON value: a later server decides what it sends.
EXTRA_VALUE: object = {"nested": [1, None, "张"], "flag": True}
# Record payloads and the server's values of a conflict are kept as sent, not decoded member
# by member; what they contain is the record's business, not the protocol's.
OPAQUE = frozenset({"data", "server"})

NOW = "2026-11-23T00:16:05Z"
DEVICE = "9b2f6c1e-4a3d-4f0e-8b7a-2c5d9e1f3a40"
REF = {"entity": "report", "id": "r1", "version": 3}
DIRECTIVE = {"type": "upgrade_recommended", "message": "升级", "min_app_version": "1.5.0"}
USER = {"id": 12, "username": "zhangwei", "display_name": "张伟", "role": "inspector"}

Parse = Callable[[object], Any]


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


def object_paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path of every JSON object in ``value`` (itself included), opaque payloads excluded."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        found.append(path)
        for key, item in value.items():
            if key not in OPAQUE:
                found += object_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += object_paths(item, (*path, index))
    return found


def with_extra(value: object, path: tuple[str | int, ...]) -> Any:
    """A copy of ``value`` with an unknown member added to the object at ``path``."""
    copied: Any = copy.deepcopy(value)
    target = copied
    for step in path:
        target = target[step]
    assert EXTRA not in target
    target[EXTRA] = EXTRA_VALUE
    return copied


def label(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path) or "body"


# -- server -> phone: unknown members are ignored ------------------------------------------------

RESPONSES: list[tuple[str, Parse, dict[str, Any]]] = [
    ("PushResponse", PushResponse.from_json, example("push-every-status.json")["response"]),
    (
        "PushResponse+directives",
        PushResponse.from_json,
        example("push-upgrade-directives.json")["response"],
    ),
    ("MutationResult", MutationResult.from_json, {"id": 1, "status": "applied", "record": REF}),
    ("RecordRef", RecordRef.from_json, REF),
    ("PullResponse", PullResponse.from_json, example("first-pull.json")["response"]),
    ("PullResponse/reset", PullResponse.from_json, example("pull-reset.json")["response"]),
    (
        "Change/put",
        Change.from_json,
        {"entity": "grid", "id": "99010100200934", "op": "put", "version": 1, "data": {"a": 1}},
    ),
    (
        "Change/delete",
        Change.from_json,
        {"entity": "report", "id": "r", "op": "delete", "version": 5, "reason": "out_of_scope"},
    ),
    ("Directive", Directive.from_json, DIRECTIVE),
    ("EnrollResponse", EnrollResponse.from_json, example("enrollment.json")["response"]),
    ("EnrolledUser", lambda obj: EnrolledUser.from_json(obj, "user"), USER),
    ("TokenResponse", TokenResponse.from_json, example("token-refresh.json")["response"]),
]


@pytest.mark.parametrize(
    ("parse", "wire"), [r[1:] for r in RESPONSES], ids=[r[0] for r in RESPONSES]
)
def test_a_response_ignores_an_unknown_member_at_any_depth(
    parse: Parse, wire: dict[str, Any]
) -> None:
    expected = parse(wire)
    paths = object_paths(wire)
    assert paths
    for path in paths:
        extended = with_extra(wire, path)
        parsed = parse(extended)
        assert parsed == expected, label(path)
        # Only the known members travel on: to_json is what this version understands.
        assert parsed.to_json() == wire, label(path)


def test_a_response_ignores_several_unknown_members_at_once() -> None:
    wire = example("push-every-status.json")["response"]
    extended = copy.deepcopy(wire)
    for path in object_paths(wire):
        extended = with_extra(extended, path)
    extended["another_one"] = None
    assert PushResponse.from_json(extended) == PushResponse.from_json(wire)


def test_the_enrolled_user_may_carry_new_members() -> None:
    wire = example("enrollment.json")["response"]
    extended = {**wire, "user": {**wire["user"], "phone": "+86 138 0000 0000"}}
    parsed = EnrollResponse.from_json(extended)
    assert parsed.user == EnrolledUser(12, "zhangwei", "张伟", "inspector")
    assert parsed.to_json() == wire


def test_a_problem_keeps_unknown_members_and_ignores_them_in_its_directives() -> None:
    document = example("upgrade-required-pull.json")["response"]
    expected = Problem.from_json(document)
    extended = with_extra(document, ())
    extended["directives"] = [with_extra(d, ()) for d in document["directives"]]
    parsed = Problem.from_json(extended)
    assert parsed == expected and parsed.directives == expected.directives
    assert parsed.members[EXTRA] == EXTRA_VALUE  # problems keep their extension members
    assert parsed.to_json() == extended


@pytest.mark.parametrize(
    ("parse", "name", "overrides"),
    [
        # An unknown name does not excuse a known member's bad value: types and ranges hold.
        (PushResponse.from_json, "push-every-status.json", {"last_mutation_id": "13"}),
        (PushResponse.from_json, "push-every-status.json", {"server_time": "yesterday"}),
        (PushResponse.from_json, "push-every-status.json", {"results": None}),
        (PullResponse.from_json, "first-pull.json", {"has_more": "no"}),
        (PullResponse.from_json, "first-pull.json", {"digest": "not-a-digest"}),
        (EnrollResponse.from_json, "enrollment.json", {"expires_in": 0}),
        (EnrollResponse.from_json, "enrollment.json", {"device_id": DEVICE.upper()}),
        (TokenResponse.from_json, "token-refresh.json", {"access_token": ""}),
    ],
)
def test_known_members_keep_their_checks(
    parse: Parse, name: str, overrides: dict[str, Any]
) -> None:
    body = {**example(name)["response"], **overrides, EXTRA: EXTRA_VALUE}
    with pytest.raises(ProtocolError) as info:
        parse(body)
    assert info.value.code == "invalid_message"


@pytest.mark.parametrize(
    ("parse", "wire"),
    [
        # Unknown *values* are not evolution this version can follow: still refused.
        (MutationResult.from_json, {"id": 1, "status": "deferred", "record": REF}),
        (RecordRef.from_json, {**REF, "entity": "case"}),
        (Change.from_json, {"entity": "grid", "id": "g", "op": "patch", "version": 1, "data": {}}),
        (
            Change.from_json,
            {"entity": "report", "id": "r", "op": "delete", "version": 2, "reason": "archived"},
        ),
        (Directive.from_json, {"type": "wipe_device", "message": "m"}),
        (
            PushResponse.from_json,
            {
                "results": [],
                "last_mutation_id": 0,
                "directives": [{"type": "wipe_device", "message": "m"}],
                "server_time": NOW,
            },
        ),
    ],
)
def test_unknown_enum_values_are_still_refused(parse: Parse, wire: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        parse(wire)
    assert info.value.code == "invalid_message"


# -- phone -> server: unknown members are refused ------------------------------------------------

REQUESTS: list[tuple[str, Parse, dict[str, Any]]] = [
    ("PushRequest", PushRequest.from_json, example("push-every-status.json")["request"]),
    ("Mutation", Mutation.from_json, {"id": 7, "name": "report.delete", "args": {}}),
    ("PullRequest", PullRequest.from_json, example("first-pull.json")["request"]),
    (
        "PullRequest/minimal",
        PullRequest.from_json,
        {"protocol_version": 1, "app_version": "1.4.2", "device_id": DEVICE},
    ),
    ("EnrollRequest", EnrollRequest.from_json, example("enrollment.json")["request"]),
    ("TokenRequest", TokenRequest.from_json, example("token-refresh.json")["request"]),
]


@pytest.mark.parametrize(("parse", "wire"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS])
def test_a_request_refuses_an_unknown_member(parse: Parse, wire: dict[str, Any]) -> None:
    parse(wire)  # valid as it is
    with pytest.raises(ProtocolError) as info:
        parse(with_extra(wire, ()))
    assert info.value.code == "invalid_message"
    assert EXTRA in info.value.message and "unknown field" in info.value.message


def test_a_mutation_inside_a_push_refuses_an_unknown_member() -> None:
    wire = example("push-every-status.json")["request"]
    with pytest.raises(ProtocolError) as info:
        PushRequest.from_json(with_extra(wire, ("mutations", 2)))
    assert info.value.code == "invalid_message"
    assert f"mutations[2].{EXTRA}" in info.value.message


@pytest.mark.parametrize(
    "name", ["push-every-status.json", "push-upgrade-directives.json", "push-replayed.json"]
)
def test_mutation_args_refuse_an_unknown_member_at_any_depth(name: str) -> None:
    """Args are validated per mutation: an unknown member rejects that mutation (invalid_args)."""
    request = example(name)["request"]
    checked = 0
    for index, mutation in enumerate(request["mutations"]):
        try:
            validate_mutation(mutation["name"], mutation["args"])
        except ProtocolError:
            continue  # already invalid for another reason (the examples show rejections)
        for path in object_paths(mutation["args"]):
            args = with_extra(mutation["args"], path)
            # The envelope does not look into args; the batch still parses...
            body = copy.deepcopy(request)
            body["mutations"][index]["args"] = args
            PushRequest.from_json(body)
            # ...and the mutation itself is rejected, naming the member.
            with pytest.raises(MutationArgsError) as info:
                validate_mutation(mutation["name"], args)
            assert info.value.code == "invalid_args", label(path)
            assert EXTRA in info.value.message, label(path)
            checked += 1
    assert checked


def test_every_request_side_class_was_checked() -> None:
    """Guards the split: the classes a phone sends are exactly the strict ones."""
    names = {r[0].split("/")[0] for r in REQUESTS}
    assert names == {"PushRequest", "Mutation", "PullRequest", "EnrollRequest", "TokenRequest"}
    responses = {r[0].split("/")[0].split("+")[0] for r in RESPONSES}
    assert responses | {"Problem"} == {
        "PushResponse",
        "MutationResult",
        "RecordRef",
        "PullResponse",
        "Change",
        "Directive",
        "EnrollResponse",
        "EnrolledUser",
        "TokenResponse",
        "Problem",
    }


# -- the decoder itself --------------------------------------------------------------------------


def test_fields_refuse_unknown_keys_unless_told_to_ignore_them() -> None:
    value = {"known": 1, "typo": 2}
    strict = Fields(value, "obj", InvalidMessage)
    assert strict.integer("known", lo=0) == 1
    with pytest.raises(InvalidMessage, match=r"unknown field\(s\): obj\.typo"):
        strict.finish()
    lenient = Fields(value, "obj", InvalidMessage, unknown="ignore")
    assert lenient.integer("known", lo=0) == 1
    lenient.finish()
    with pytest.raises(InvalidMessage, match=r"obj\.known: expected an integer"):
        Fields({"known": "1"}, "obj", InvalidMessage, unknown="ignore").integer("known", lo=0)
    with pytest.raises(ValueError):
        Fields(value, "obj", InvalidMessage, unknown="sometimes")  # type: ignore[arg-type]
