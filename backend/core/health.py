"""Liveness and readiness probes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend.core.deps import RuntimeDep
from backend.core.errors import XunchaError
from backend.core.routing import OneThreadRoute

router = APIRouter(route_class=OneThreadRoute, tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class CheckResult(BaseModel):
    ok: bool
    detail: str
    duration_ms: float


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


@router.get("/healthz", operation_id="healthz")
def healthz() -> Health:
    """The process is up (no dependencies checked)."""
    return Health()


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"model": Readiness, "description": "A dependency is unreachable"}},
)
def readyz(runtime: RuntimeDep) -> Readiness:
    """The database and the object store are reachable."""
    checks = {"database": _check_database(runtime), "object_store": _check_store(runtime)}
    ready = all(c.ok for c in checks.values())
    result = Readiness(status="ready" if ready else "not_ready", checks=checks)
    if not ready:
        return JSONResponse(result.model_dump(), status_code=503)  # type: ignore[return-value]
    return result


def _timed(probe: Callable[[], str]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except XunchaError as exc:
        detail, ok = exc.detail, False
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}"[:300], False
    elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
    return CheckResult(ok=ok, detail=detail, duration_ms=elapsed_ms)


def _check_database(runtime: RuntimeDep) -> CheckResult:
    def probe() -> str:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return runtime.engine.dialect.name

    return _timed(probe)


def _check_store(runtime: RuntimeDep) -> CheckResult:
    def probe() -> str:
        runtime.object_store.ping()
        return runtime.object_store.description

    return _timed(probe)
