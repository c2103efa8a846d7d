"""Protocol and app versions (docs/sync-protocol.md section 7).

Two different things are versioned. The *protocol* version is the shape of the messages; a
server refuses one it does not speak (``400 unsupported_protocol``). The *app* version decides
whether the server nags (``upgrade_recommended``) or insists (``upgrade_required``). Even a
too-old app may still push: forcing an upgrade must never strand work done offline, which is
one of the failures field apps are known for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sync_protocol.directives import Directive, DirectiveType
from sync_protocol.errors import ProtocolError

PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOLS: tuple[int, ...] = (1,)

# MAJOR.MINOR[.PATCH][-pre-release][+build]. Each number at most 9 digits so a hostile header
# cannot make us build huge integers; pre-release and build parts are accepted but ignored.
_SEMVER = re.compile(
    r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:\.(0|[1-9][0-9]{0,8}))?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
MAX_APP_VERSION_LENGTH = 64

SemVer = tuple[int, int, int]


def parse_semver(text: str) -> SemVer:
    """``1.4`` → (1, 4, 0); ``1.4.2-beta+7`` → (1, 4, 2).

    The pre-release part is deliberately ignored: a ``1.5.0-beta`` build is compared as 1.5.0,
    because testers run pre-releases against the production server and must not be told to
    "upgrade" to the release they are testing. Leading zeros are refused as in SemVer 2.0.
    """
    if (
        not isinstance(text, str)
        or len(text) > MAX_APP_VERSION_LENGTH
        or (match := _SEMVER.fullmatch(text)) is None
    ):
        raise ProtocolError(
            "invalid_app_version", f"app version {str(text)[:70]!r} is not MAJOR.MINOR[.PATCH]"
        )
    return int(match[1]), int(match[2]), int(match[3] or 0)


def check_protocol(version: int) -> None:
    """Refuse a protocol version this implementation does not speak."""
    if isinstance(version, bool) or version not in SUPPORTED_PROTOCOLS:
        raise ProtocolError(
            "unsupported_protocol",
            f"protocol version {version!r} is not supported",
            extra={"supported": list(SUPPORTED_PROTOCOLS)},
        )


@dataclass(frozen=True)
class AppVersionPolicy:
    """The server's two settings: the minimum and the recommended app version."""

    min_version: str
    recommended_version: str
    _min: SemVer = field(init=False, repr=False, compare=False)
    _recommended: SemVer = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Validate at start-up: a typo in the configuration must not surface as a 400 to phones.
        try:
            minimum, recommended = (
                parse_semver(self.min_version),
                parse_semver(self.recommended_version),
            )
        except ProtocolError as exc:
            raise ValueError(exc.message) from None
        if minimum > recommended:
            raise ValueError("the minimum app version is above the recommended one")
        object.__setattr__(self, "_min", minimum)
        object.__setattr__(self, "_recommended", recommended)

    def is_too_old(self, app_version: str) -> bool:
        return parse_semver(app_version) < self._min

    def directives_for(self, app_version: str) -> list[Directive]:
        """The directive a response to this app should carry (at most one).

        ``min_app_version`` names the version to reach: the minimum for ``upgrade_required``,
        the recommended one for ``upgrade_recommended``.
        """
        version = parse_semver(app_version)
        if version < self._min:
            return [self.required_directive()]
        if version < self._recommended:
            return [
                Directive(
                    DirectiveType.upgrade_recommended,
                    f"巡查 App 有新版本 {self.recommended_version}，建议升级。",
                    self.recommended_version,
                )
            ]
        return []

    def required_directive(self) -> Directive:
        return Directive(
            DirectiveType.upgrade_required,
            f"请将巡查 App 升级到 {self.min_version} 或更高版本；未同步的数据会保留并可继续上传。",
            self.min_version,
        )

    def enforce(self, app_version: str, *, is_push: bool) -> list[Directive]:
        """Directives for a sync call, raising ``426 upgrade_required`` where section 7 says so.

        Pushes from too-old apps are still accepted (offline work is never stranded); every
        other sync call is refused with the same directive in the problem document.
        """
        directives = self.directives_for(app_version)
        if not is_push and self.is_too_old(app_version):
            raise ProtocolError(
                "upgrade_required",
                f"app version {app_version} is below the minimum {self.min_version}",
                extra={"directives": [d.to_json() for d in directives]},
            )
        return directives
