"""Protocol and app versions (docs/sync-protocol.md 7)."""

from __future__ import annotations

import pytest

from sync_protocol.directives import DirectiveType
from sync_protocol.errors import ProtocolError
from sync_protocol.versions import (
    PROTOCOL_VERSION,
    SUPPORTED_PROTOCOLS,
    AppVersionPolicy,
    check_protocol,
    parse_semver,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.4", (1, 4, 0)),
        ("1.4.2", (1, 4, 2)),
        ("1.4.2-beta+7", (1, 4, 2)),
        ("1.4.2+build.5", (1, 4, 2)),
        ("1.4-rc.1", (1, 4, 0)),
        ("0.0.0", (0, 0, 0)),
        ("10.20.30", (10, 20, 30)),
        ("999999999.0.1", (999999999, 0, 1)),
    ],
)
def test_parse_semver(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_semver(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "v1.4.2",
        "1.4.2.3",
        "1.04",
        "01.4",
        "1.4.",
        "1..4",
        "1.4.2-",
        "1.4.2+",
        "1.4.2-beta..1",
        "1.4.2 ",
        " 1.4",
        "1.4\n",
        "１.4",
        "1.4.2-β",
        "1" * 10 + ".0",
        "1.0.0-" + "a" * 64,
        None,
        1.4,
    ],
)
def test_parse_semver_refuses(text: object) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_semver(text)  # type: ignore[arg-type]
    assert (info.value.code, info.value.status_hint) == ("invalid_app_version", 400)


def test_check_protocol() -> None:
    assert PROTOCOL_VERSION in SUPPORTED_PROTOCOLS
    check_protocol(1)
    for version in (0, 2, -1, True):
        with pytest.raises(ProtocolError) as info:
            check_protocol(version)
        assert info.value.code == "unsupported_protocol"
        assert info.value.extra["supported"] == [1]


POLICY = AppVersionPolicy(min_version="1.3.0", recommended_version="1.5")


@pytest.mark.parametrize(
    ("app", "expected", "too_old"),
    [
        ("1.2.9", DirectiveType.upgrade_required, True),
        ("1.3.0-beta", None, False),  # pre-releases compare as their release
        ("1.3.0", DirectiveType.upgrade_recommended, False),
        ("1.4.99", DirectiveType.upgrade_recommended, False),
        ("1.5", None, False),
        ("2.0.0", None, False),
    ],
)
def test_policy(app: str, expected: DirectiveType | None, too_old: bool) -> None:
    directives = POLICY.directives_for(app)
    if expected == DirectiveType.upgrade_recommended:
        assert [(d.type, d.min_app_version) for d in directives] == [(expected, "1.5")]
    elif expected == DirectiveType.upgrade_required:
        assert [(d.type, d.min_app_version) for d in directives] == [(expected, "1.3.0")]
        assert "1.3.0" in directives[0].message
    elif app == "1.3.0-beta":
        assert [d.type for d in directives] == [DirectiveType.upgrade_recommended]
    else:
        assert directives == []
    assert POLICY.is_too_old(app) is too_old


def test_too_old_apps_may_still_push_but_nothing_else() -> None:
    pushed = POLICY.enforce("1.0.0", is_push=True)
    assert [d.type for d in pushed] == [DirectiveType.upgrade_required]
    with pytest.raises(ProtocolError) as info:
        POLICY.enforce("1.0.0", is_push=False)
    assert (info.value.code, info.value.status_hint) == ("upgrade_required", 426)
    assert info.value.extra["directives"] == [d.to_json() for d in pushed]
    assert POLICY.enforce("1.5.0", is_push=False) == []


def test_policy_configuration_is_checked_at_start_up() -> None:
    with pytest.raises(ValueError):
        AppVersionPolicy("2.0", "1.0")
    with pytest.raises(ValueError):
        AppVersionPolicy("latest", "1.0")
