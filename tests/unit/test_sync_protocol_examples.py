"""Golden examples (sync_protocol/examples): parse, round-trip exactly, match the schemas.

The examples are what phone teams replay against their implementation, so each one is checked
against the dataclasses, the published JSON Schemas and the rules (mutation validation, the
digest definition, the version policy) it illustrates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sync_protocol import enrollment, messages, schemas
from sync_protocol.digest import digest_of
from sync_protocol.mutations import MutationArgsError, validate_mutation
from sync_protocol.problems import Problem
from sync_protocol.versions import AppVersionPolicy

EXAMPLES = Path(__file__).resolve().parents[2] / "sync_protocol" / "examples"
FILES = sorted(EXAMPLES.glob("*.json"))
ENDPOINTS: dict[str, tuple[Any, str, Any, str]] = {
    "POST /api/v1/devices/enroll": (
        enrollment.EnrollRequest,
        "EnrollRequest",
        enrollment.EnrollResponse,
        "EnrollResponse",
    ),
    "POST /api/v1/devices/token": (
        enrollment.TokenRequest,
        "DeviceTokenRequest",
        enrollment.TokenResponse,
        "DeviceTokenResponse",
    ),
    "POST /api/v1/sync/push": (
        messages.PushRequest,
        "PushRequest",
        messages.PushResponse,
        "PushResponse",
    ),
    "POST /api/v1/sync/pull": (
        messages.PullRequest,
        "PullRequest",
        messages.PullResponse,
        "PullResponse",
    ),
}


def load(name: str) -> dict[str, Any]:
    example: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return example


def test_the_examples_section_8_promises_exist() -> None:
    names = {path.name for path in FILES}
    assert {
        "enrollment.json",
        "first-pull.json",
        "push-every-status.json",
        "push-replayed.json",
        "push-gap.json",
        "pull-reset.json",
        "upgrade-required-pull.json",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_example_parses_round_trips_and_matches_schema(path: Path) -> None:
    example = json.loads(path.read_text(encoding="utf-8"))
    assert set(example) == {"description", "endpoint", "status", "request", "response"}
    request_cls, request_schema, response_cls, response_schema = ENDPOINTS[example["endpoint"]]
    request = request_cls.from_json(example["request"])
    assert request.to_json() == example["request"]
    assert (
        list(Draft202012Validator(schemas.SCHEMAS[request_schema]).iter_errors(example["request"]))
        == []
    )
    if example["status"] >= 400:
        response_cls, response_schema = Problem, "Problem"
        assert example["response"]["status"] == example["status"]
    response = response_cls.from_json(example["response"])
    assert response.to_json() == example["response"]
    errors = Draft202012Validator(schemas.SCHEMAS[response_schema]).iter_errors(example["response"])
    assert list(errors) == []


@pytest.mark.parametrize("name", ["push-every-status.json", "push-replayed.json"])
def test_push_results_agree_with_mutation_validation(name: str) -> None:
    example = load(name)
    request = messages.PushRequest.from_json(example["request"])
    response = messages.PushResponse.from_json(example["response"])
    by_id = {result.id: result for result in response.results}
    for mutation in request.mutations:
        result = by_id.get(mutation.id)
        try:
            validate_mutation(mutation.name, mutation.args)
        except MutationArgsError as exc:
            assert result is not None and result.status == messages.ResultStatus.rejected
            assert (result.code, result.message) == (exc.code, exc.message)
        else:
            assert result is None or result.status != messages.ResultStatus.rejected


def test_push_every_status_shows_every_status_and_stops_at_retry() -> None:
    example = load("push-every-status.json")
    response = messages.PushResponse.from_json(example["response"])
    request = messages.PushRequest.from_json(example["request"])
    assert {r.status for r in response.results} == set(messages.ResultStatus)
    assert response.results[-1].status == messages.ResultStatus.retry
    assert len(response.results) < len(request.mutations)  # later mutations have no result
    assert any(r.ignored_fields for r in response.results)


def test_replay_returns_the_original_results() -> None:
    original = {r["id"]: r for r in load("push-every-status.json")["response"]["results"]}
    example = load("push-replayed.json")
    assert (
        example["request"]["mutations"]
        == load("push-every-status.json")["request"]["mutations"][
            : len(example["request"]["mutations"])
        ]
    )
    for result in example["response"]["results"]:
        assert result.pop("replayed") is True
        assert result == original[result["id"]]


def test_first_pull_digest_is_the_digest_of_its_records() -> None:
    response = messages.PullResponse.from_json(load("first-pull.json")["response"])
    puts = [(c.entity, c.id, c.version) for c in response.changes]
    assert {c.entity for c in response.changes} == {"grid", "report"}
    assert not response.has_more
    assert (response.digest, response.record_count) == digest_of(puts)


def test_gap_names_the_expected_id() -> None:
    example = load("push-gap.json")
    problem = Problem.from_json(example["response"])
    first = example["request"]["mutations"][0]["id"]
    assert problem.code == "mutation_gap" and problem.expected_id is not None
    assert problem.expected_id < first


def test_reset_and_upgrade_examples() -> None:
    reset = messages.PullResponse.from_json(load("pull-reset.json")["response"])
    assert reset.reset and reset.changes == () and reset.cursor is None
    upgrade = load("upgrade-required-pull.json")
    problem = Problem.from_json(upgrade["response"])
    policy = AppVersionPolicy("1.3.0", "1.5.0")
    assert policy.is_too_old(upgrade["request"]["app_version"])
    assert list(problem.directives) == policy.directives_for(upgrade["request"]["app_version"])
    push = load("push-upgrade-directives.json")
    assert push["response"]["directives"] == upgrade["response"]["directives"]
