"""Shared wire definitions of the push and pull messages: limits, encoding, envelope checks."""

from __future__ import annotations

import json
import re

from sync_protocol._decode import Fields
from sync_protocol.errors import InvalidMessage, ProtocolError
from sync_protocol.versions import check_protocol, parse_semver

MAX_BATCH_MUTATIONS = 200
MAX_BATCH_BYTES = 1 << 20
MAX_PULL_LIMIT = 1000
DEFAULT_PULL_LIMIT = 500
MAX_CURSOR_LENGTH = 1024
ENTITIES = ("report", "grid", "task")
MAX_RECORD_ID_LENGTH = 64
DIGEST_RE = re.compile(r"[0-9a-f]{32}", re.ASCII)
CODE_RE = re.compile(r"[a-z][a-z0-9_]{0,63}", re.ASCII)


def encode_json(obj: object) -> bytes:
    """The wire encoding: compact UTF-8 JSON. Batch sizes (1 MiB) are measured on this form."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def invalid(message: str) -> ProtocolError:
    return InvalidMessage(message)


def server_time(fields: Fields) -> str:
    return fields.time("server_time")


def check_envelope(fields: Fields) -> tuple[int, str]:
    """protocol_version first: a future protocol may shape everything else differently."""
    version = fields.integer("protocol_version", lo=0, hi=2**31 - 1)
    check_protocol(version)
    app_version = fields.text("app_version", min_len=1, max_len=64)
    parse_semver(app_version)
    return version, app_version
