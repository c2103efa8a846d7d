"""JSON logs, one object per line, each carrying the request id when there is one.

No secret reaches a log line (docs/security.md): the access log names the route template,
never the path or query; the engine hides SQL parameters (backend.core.db); libraries that
print credentials at DEBUG (botocore's signed headers, SQLAlchemy's parameters and rows) are
kept above DEBUG; and every record, whatever handler it goes to, passes :func:`redact` —
bearer and access tokens, device secrets, enrollment codes, presigned-URL signatures, our
media grant tokens, password fields, password hashes and URL passwords are replaced.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Final

from backend.core.request_context import current_request_id

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is kept.
_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}

REDACTED: Final = "[redacted]"
_SENSITIVE_KEYS: Final = (
    "password|new_password|device_secret|access_token|refresh_token|secret_key|"
    "s3_secret_key|audit_key|authorization|code_hash|secret_hash|password_hash"
)
# (pattern, replacement), applied in order. Each leaves a marker, so a redacted line still
# says what was there.
_PATTERNS: Final[list[tuple[re.Pattern[str], str]]] = [
    # Authorization: Bearer <token> (and Basic), in headers, reprs and messages.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # Our access tokens (xat1.<payload>.<signature>) and device secrets (xds1.<random>).
    (re.compile(r"\bxat1\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?"), f"xat1.{REDACTED}"),
    (re.compile(r"\bxds1\.[A-Za-z0-9_-]+"), f"xds1.{REDACTED}"),
    # Enrollment codes as handed out (backend.devices.service: 3 × 4 of this alphabet).
    (
        re.compile(r"\b[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}\b"),
        "[redacted-code]",
    ),
    # The local store's signed media URLs: the path segment is the grant.
    (
        re.compile(r"(/media/(?:direct|signed)/)[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?"),
        rf"\1{REDACTED}",
    ),
    # S3 presigned URLs (X-Amz-Signature=, SigV2 Signature=) and signed headers (Signature=).
    (re.compile(r"(?i)(\bSignature=)[^&\s\"',;]+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)(\bX-Amz-Security-Token=)[^&\s\"',;]+"), rf"\1{REDACTED}"),
    # Sensitive fields in JSON, dict reprs, forms and query strings.
    (
        re.compile(
            rf"(?i)([\"']?\b(?:{_SENSITIVE_KEYS})[\"']?\s*[:=]\s*)([\"'])(?:\\.|(?!\2).)*\2"
        ),
        rf"\1\2{REDACTED}\2",
    ),
    (
        re.compile(rf"(?i)(\b(?:{_SENSITIVE_KEYS})=)[^&\s\"',;)}}]+"),
        rf"\1{REDACTED}",
    ),
    # argon2 password hashes.
    (re.compile(r"\$argon2(?:id|i|d)\$[A-Za-z0-9+/=$,.-]+"), f"$argon2{REDACTED}"),
    # Passwords in URLs: scheme://user:password@host.
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/\s@\"']+:)[^@\s/\"']+@"), rf"\1{REDACTED}@"),
]
_SENSITIVE_KEY: Final = re.compile(rf"(?i)^(?:{_SENSITIVE_KEYS})$")


def redact(text: str) -> str:
    """``text`` with every secret we know the shape of replaced by a marker."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Strings redacted, containers walked; values under a sensitive key dropped whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SENSITIVE_KEY.match(k) else redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def _redact_record(record: logging.LogRecord) -> None:
    """Redact a record's message, traceback and stack in place (once, when it is made)."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler reports it as logging always does
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = redact(text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def install_redaction() -> None:
    """Redact every log record of this process as it is created, so no handler — ours,
    uvicorn's, a test's, one an operator adds — ever sees a secret. Idempotent."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "xuncha_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    factory.xuncha_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = REDACTED if _SENSITIVE_KEY.match(key) else redact_value(value)
        if record.exc_info:
            entry["exc"] = redact(record.exc_text or self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=lambda v: redact(str(v)))


class PlainFormatter(logging.Formatter):
    """``LEVEL logger message`` (XUNCHA_LOG_JSON=false), redacted like the JSON lines."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


#: Loggers that print credentials or personal data below these levels: botocore logs signed
#: request headers (Authorization) and signing steps at DEBUG; SQLAlchemy logs statement
#: parameters at INFO and result rows (password hashes) at DEBUG. ``database_echo`` still
#: echoes statements (the engine hides their parameters).
QUIET_LIBRARIES: Final[dict[str, int]] = {
    "botocore": logging.INFO,
    "boto3": logging.INFO,
    "s3transfer": logging.INFO,
    "urllib3": logging.INFO,
    "sqlalchemy": logging.WARNING,
}


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route our and uvicorn's loggers through one stderr handler, redacted."""
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name, floor in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(max(root.level, floor))
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our middleware writes one access line per request, with the request id and route.
    logging.getLogger("uvicorn.access").disabled = True
