"""JSON Schemas (draft 2020-12, usable as OpenAPI 3.1 components) of the sync messages.

For the phone teams and the OpenAPI document: the dataclasses in :mod:`sync_protocol.messages`
are the executable definition, these schemas the portable one. A test validates every golden
example and many generated messages against both, so the two cannot drift apart unnoticed.
Each schema is self-contained (no ``$ref``), so it can be copied anywhere as is.

What a schema cannot say is checked only by the dataclasses: consecutive mutation ids, that
nothing follows a ``retry`` result, semantic versions beyond their shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from sync_protocol.mutations import (
    CRS_VALUES,
    MAX_ADDRESS,
    MAX_DESCRIPTION,
    MAX_PHOTO_BYTES,
    MAX_PHOTOS,
    PHOTO_CONTENT_TYPES,
    PHOTO_ROLES,
    PROVIDERS,
    TASK_OUTCOMES,
)

Schema = dict[str, Any]

_SAFE_INT = 2**53 - 1
UUID: Schema = {
    "type": "string",
    "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}
TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "maxLength": 40,
    "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$",
}
APP_VERSION: Schema = {
    "type": "string",
    "maxLength": 64,
    "pattern": r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(\.(0|[1-9][0-9]{0,8}))?"
    r"(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$",
}
PROTOCOL_VERSION: Schema = {"type": "integer", "enum": [1], "description": "supported: [1]"}
CODE: Schema = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}
ENTITY: Schema = {"enum": ["report", "grid", "task"]}
RECORD_ID: Schema = {"type": "string", "minLength": 1, "maxLength": 64}
VERSION: Schema = {"type": "integer", "minimum": 1, "maximum": _SAFE_INT}
COUNTER: Schema = {"type": "integer", "minimum": 0, "maximum": _SAFE_INT}
CURSOR: Schema = {"type": "string", "minLength": 1, "maxLength": 1024}
FIELD_NAMES: Schema = {
    "type": "array",
    "maxItems": 50,
    "items": {"type": "string", "minLength": 1, "maxLength": 64},
}


def _object(properties: Schema, required: list[str], **extra: Any) -> Schema:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


DIRECTIVE = _object(
    {
        "type": {"enum": ["upgrade_recommended", "upgrade_required", "reset", "re_enroll"]},
        "message": {"type": "string", "maxLength": 1000},
        "min_app_version": {"type": "string", "minLength": 1, "maxLength": 64},
    },
    ["type", "message"],
    title="Directive",
)
DIRECTIVES: Schema = {"type": "array", "maxItems": 10, "items": DIRECTIVE}

MUTATION = _object(
    {
        "id": {"type": "integer", "minimum": 1, "maximum": _SAFE_INT},
        "name": {"type": "string", "minLength": 1, "maxLength": 64},
        "args": {"type": "object", "description": "validated per mutation; see section 4.1"},
        "client_time": {"type": ["string", "null"], "maxLength": 64},
    },
    ["id", "name", "args"],
    title="Mutation",
)

PUSH_REQUEST = _object(
    {
        "protocol_version": PROTOCOL_VERSION,
        "app_version": APP_VERSION,
        "device_id": UUID,
        "mutations": {
            "type": "array",
            "maxItems": 200,
            "items": MUTATION,
            "description": "consecutive ids; at most 200 and 1 MiB per request",
        },
    },
    ["protocol_version", "app_version", "device_id", "mutations"],
    title="PushRequest",
)

RECORD_REF = _object(
    {"entity": ENTITY, "id": RECORD_ID, "version": VERSION}, ["entity", "id", "version"]
)


def _when(status: str, then: Schema) -> Schema:
    return {"if": {"properties": {"status": {"const": status}}}, "then": then}


def _only_with(status: str, *names: str) -> Schema:
    return {
        "if": {"not": {"properties": {"status": {"const": status}}}},
        "then": {"not": {"anyOf": [{"required": [name]} for name in names]}},
    }


MUTATION_RESULT = _object(
    {
        "id": {"type": "integer", "minimum": 1, "maximum": _SAFE_INT},
        "status": {"enum": ["applied", "rejected", "conflict", "gone", "locked", "retry"]},
        "record": RECORD_REF,
        "code": CODE,
        "message": {"type": "string", "maxLength": 2000},
        "fields": FIELD_NAMES | {"minItems": 1},
        "server": {"type": "object"},
        "ignored_fields": FIELD_NAMES,
        "retry_after": {"type": "integer", "minimum": 0, "maximum": 86_400},
        "replayed": {"type": "boolean"},
    },
    ["id", "status"],
    title="MutationResult",
    description="None-valued members are omitted; absent 'replayed' means false",
    allOf=[
        _when("applied", {"required": ["record"]}),
        _when("rejected", {"required": ["code"]}),
        _when("conflict", {"required": ["record", "fields", "server"]}),
        _when("retry", {"required": ["retry_after"]}),
        _only_with("conflict", "fields", "server"),
        _only_with("applied", "ignored_fields"),
        _only_with("retry", "retry_after"),
    ],
)

PUSH_RESPONSE = _object(
    {
        "results": {"type": "array", "maxItems": 200, "items": MUTATION_RESULT},
        "last_mutation_id": COUNTER,
        "directives": DIRECTIVES,
        "server_time": TIMESTAMP,
    },
    ["results", "last_mutation_id", "directives", "server_time"],
    title="PushResponse",
)

PULL_REQUEST = _object(
    {
        "protocol_version": PROTOCOL_VERSION,
        "app_version": APP_VERSION,
        "device_id": UUID,
        "cursor": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 500},
    },
    ["protocol_version", "app_version", "device_id"],
    title="PullRequest",
)

CHANGE: Schema = {
    "title": "Change",
    "oneOf": [
        _object(
            {
                "entity": ENTITY,
                "id": RECORD_ID,
                "op": {"const": "put"},
                "version": VERSION,
                "data": {"type": "object"},
            },
            ["entity", "id", "op", "version", "data"],
        ),
        _object(
            {
                "entity": ENTITY,
                "id": RECORD_ID,
                "op": {"const": "delete"},
                "version": VERSION,
                "reason": {"enum": ["deleted", "out_of_scope"]},
            },
            ["entity", "id", "op", "version", "reason"],
        ),
    ],
}

_PULL_RESPONSE_REQUIRED = [
    "changes", "cursor", "has_more", "reset", "last_mutation_id", "directives", "server_time",
]  # fmt: skip
PULL_RESPONSE = _object(
    {
        "changes": {"type": "array", "maxItems": 1000, "items": CHANGE},
        "cursor": {"type": ["string", "null"], "minLength": 1, "maxLength": 1024},
        "has_more": {"type": "boolean"},
        "reset": {"type": "boolean"},
        "digest": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
        "record_count": COUNTER,
        "last_mutation_id": COUNTER,
        "directives": DIRECTIVES,
        "server_time": TIMESTAMP,
    },
    _PULL_RESPONSE_REQUIRED,
    title="PullResponse",
    dependentRequired={"digest": ["record_count"], "record_count": ["digest"]},
    allOf=[
        {
            "if": {"properties": {"reset": {"const": True}}},
            "then": {
                "properties": {"changes": {"maxItems": 0}, "cursor": {"type": "null"}},
                "not": {"required": ["digest"]},
            },
            "else": {"properties": {"cursor": {"type": "string"}}},
        },
        {
            "if": {"required": ["digest"]},
            "then": {"properties": {"has_more": {"const": False}}},
        },
    ],
)

ENROLL_REQUEST = _object(
    {
        "code": {"type": "string", "minLength": 1, "maxLength": 64},
        "device_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "platform": {"type": "string", "minLength": 1, "maxLength": 20},
        "app_version": APP_VERSION,
        "protocol_version": PROTOCOL_VERSION,
    },
    ["code", "device_name", "platform", "app_version", "protocol_version"],
    title="EnrollRequest",
)
_SECRET: Schema = {"type": "string", "minLength": 1, "maxLength": 512}
_EXPIRES_IN: Schema = {"type": "integer", "minimum": 1, "maximum": 86_400 * 30}
ENROLL_RESPONSE = _object(
    {
        "device_id": UUID,
        "device_secret": _SECRET,
        "access_token": _SECRET,
        "expires_in": _EXPIRES_IN,
        "user": _object(
            {
                "id": {"type": "integer", "minimum": 1},
                "username": {"type": "string", "minLength": 1, "maxLength": 64},
                "display_name": {"type": "string", "maxLength": 100},
                "role": {"type": "string", "minLength": 1, "maxLength": 40},
            },
            ["id", "username", "display_name", "role"],
        ),
        "server_time": TIMESTAMP,
    },
    ["device_id", "device_secret", "access_token", "expires_in", "user", "server_time"],
    title="EnrollResponse",
)
TOKEN_REQUEST = _object(
    {"device_id": UUID, "device_secret": _SECRET},
    ["device_id", "device_secret"],
    title="DeviceTokenRequest",
)
TOKEN_RESPONSE = _object(
    {"access_token": _SECRET, "expires_in": _EXPIRES_IN, "server_time": TIMESTAMP},
    ["access_token", "expires_in", "server_time"],
    title="DeviceTokenResponse",
)
PROBLEM: Schema = {
    "title": "Problem",
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": CODE,
        "expected_id": {"type": "integer", "minimum": 1},
        "supported": {"type": "array", "items": {"type": "integer"}},
        "directives": DIRECTIVES,
    },
    "required": ["status", "code"],
    "additionalProperties": True,
}

# Mutation arguments (section 4.1); unknown members are refused as in the validators.
LOCATION = _object(
    {
        "lon": {"type": "number", "minimum": -180, "maximum": 180},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "crs": {"enum": list(CRS_VALUES)},
        "accuracy_m": {"type": "number", "minimum": 0, "maximum": 100_000},
        "fix_time": TIMESTAMP,
        "provider": {"enum": list(PROVIDERS)},
    },
    ["lon", "lat", "crs", "accuracy_m", "fix_time", "provider"],
    title="Location",
)
_CATEGORY: Schema = {"type": "string", "pattern": "^[0-9]{2,6}$"}
_DESCRIPTION: Schema = {"type": "string", "minLength": 1, "maxLength": MAX_DESCRIPTION}
_DESCRIPTION_OR_EMPTY: Schema = {"type": "string", "maxLength": MAX_DESCRIPTION}
_ADDRESS: Schema = {"type": "string", "maxLength": MAX_ADDRESS}
PHOTO_DECLARATION = _object(
    {
        "photo_id": UUID,
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "size": {"type": "integer", "minimum": 1, "maximum": MAX_PHOTO_BYTES},
        "content_type": {"enum": list(PHOTO_CONTENT_TYPES)},
    },
    ["photo_id", "sha256", "size", "content_type"],
)

REPORT_CREATE_ARGS = _object(
    {
        "report_id": UUID,
        "category_code": _CATEGORY,
        "description": _DESCRIPTION,
        "address": _ADDRESS,
        "location": LOCATION,
        "captured_at": TIMESTAMP,
        "photos": {"type": "array", "maxItems": MAX_PHOTOS, "items": PHOTO_DECLARATION},
    },
    ["report_id", "category_code", "description", "address", "location", "captured_at", "photos"],
    title="ReportCreateArgs",
)
REPORT_UPDATE_ARGS = _object(
    {
        "report_id": UUID,
        "base_version": VERSION,
        "changes": {
            "type": "object",
            "minProperties": 1,
            "properties": {
                "category_code": _CATEGORY,
                "description": _DESCRIPTION,
                "address": _ADDRESS,
                "location": LOCATION,
                "status": {"description": "server-owned: ignored, reported in ignored_fields"},
                "assignee": {"description": "server-owned: ignored, reported in ignored_fields"},
            },
            "additionalProperties": False,
        },
    },
    ["report_id", "base_version", "changes"],
    title="ReportUpdateArgs",
)
REPORT_DELETE_ARGS = _object(
    {"report_id": UUID, "base_version": VERSION},
    ["report_id", "base_version"],
    title="ReportDeleteArgs",
)

REPORT_ADD_PHOTOS_ARGS = _object(
    {
        "report_id": UUID,
        "role": {"enum": list(PHOTO_ROLES)},
        "photos": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_PHOTOS,
            "items": PHOTO_DECLARATION,
        },
    },
    ["report_id", "role", "photos"],
    title="ReportAddPhotosArgs",
)

TASK_COMPLETE_ARGS = _object(
    {
        "task_id": UUID,
        "outcome": {
            "enum": list(TASK_OUTCOMES),
            "description": "handle tasks: done; verify tasks: fixed or not_fixed",
        },
        "comment": _DESCRIPTION_OR_EMPTY,
        "report_id": UUID,
        "location": LOCATION,
        "captured_at": TIMESTAMP,
        "photos": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_PHOTOS,
            "items": PHOTO_DECLARATION,
        },
    },
    ["task_id", "outcome", "comment", "report_id", "location", "captured_at", "photos"],
    title="TaskCompleteArgs",
)

SCHEMAS: Mapping[str, Schema] = MappingProxyType(
    {
        "Directive": DIRECTIVE,
        "Mutation": MUTATION,
        "PushRequest": PUSH_REQUEST,
        "MutationResult": MUTATION_RESULT,
        "PushResponse": PUSH_RESPONSE,
        "PullRequest": PULL_REQUEST,
        "Change": CHANGE,
        "PullResponse": PULL_RESPONSE,
        "EnrollRequest": ENROLL_REQUEST,
        "EnrollResponse": ENROLL_RESPONSE,
        "DeviceTokenRequest": TOKEN_REQUEST,
        "DeviceTokenResponse": TOKEN_RESPONSE,
        "Problem": PROBLEM,
        "Location": LOCATION,
        "ReportCreateArgs": REPORT_CREATE_ARGS,
        "ReportUpdateArgs": REPORT_UPDATE_ARGS,
        "ReportDeleteArgs": REPORT_DELETE_ARGS,
        "ReportAddPhotosArgs": REPORT_ADD_PHOTOS_ARGS,
        "TaskCompleteArgs": TASK_COMPLETE_ARGS,
    }
)
MUTATION_ARGS_SCHEMAS: Mapping[str, Schema] = MappingProxyType(
    {
        "report.create": REPORT_CREATE_ARGS,
        "report.update": REPORT_UPDATE_ARGS,
        "report.delete": REPORT_DELETE_ARGS,
        "report.add_photos": REPORT_ADD_PHOTOS_ARGS,
        "task.complete": TASK_COMPLETE_ARGS,
    }
)
