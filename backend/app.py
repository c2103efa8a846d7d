"""The application factory: settings in, a ready FastAPI app out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.accounts import security
from backend.accounts.router import router as accounts_router
from backend.cases.departments_router import router as departments_router
from backend.cases.duplicates_router import router as case_duplicates_router
from backend.cases.review_router import router as case_review_router
from backend.cases.router import router as cases_router
from backend.categories.router import router as categories_router
from backend.core.body_limit import BodySizeLimitMiddleware
from backend.core.db import transaction
from backend.core.health import router as health_router
from backend.core.middleware import RequestContextMiddleware
from backend.core.problems import install_problem_handlers
from backend.core.runtime import Runtime
from backend.core.settings import Settings, load_settings
from backend.devices.router import router as devices_router
from backend.grids.assignments_router import router as assignments_router
from backend.grids.router import router as grids_router
from backend.grids.versions_router import router as versions_router
from backend.media.router import router as media_router
from backend.media.tus_headers import TusResumableHeader
from backend.media.tus_router import router as tus_router
from backend.reports.router import router as reports_router
from backend.sync.router import router as sync_router
from backend.worktime.router import router as calendar_router

log = logging.getLogger("xuncha.app")

DESCRIPTION = """
Xuncha (巡查) is the backend that city-management inspectors' phones sync with.

Errors are RFC 9457 `application/problem+json` documents with a stable `code`.
Locations always carry their coordinate system (`wgs84`, `gcj02`, `bd09`, `cgcs2000`).
"""


def _warm_grid_index(runtime: Runtime) -> None:
    """Build the active version's matcher before the first report needs it (~1 s per 10k)."""
    try:
        with transaction(runtime.sessions) as session:
            runtime.grid_indexes.active(session)
    except SQLAlchemyError as exc:  # not migrated yet: the first match will build it
        log.warning("grid index not prebuilt: %s", str(exc).splitlines()[0])


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else load_settings())
    owned = runtime is None
    runtime = runtime or Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in this pool; its size is a setting because the shift-change
        # load test depends on it (docs/benchmarks.md).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        if security.FAST_HASHES:
            log.warning("%s=1: password hashes are weak (tests only)", security.FAST_HASHES_ENV)
        await run_in_threadpool(_warm_grid_index, runtime)
        worker = None
        if settings.runs_worker_in_process:
            from backend.jobs.worker import BackgroundWorker

            worker = BackgroundWorker(runtime)
            runtime.wakers.append(worker.wake)
            worker.start()
        yield
        if worker is not None:
            runtime.wakers.remove(worker.wake)
            await run_in_threadpool(worker.stop)
        if owned:
            runtime.close()

    app = FastAPI(
        title="Xuncha API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    # Added last = outermost: the request id and metrics cover the 413s too.
    app.add_middleware(TusResumableHeader)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=runtime.metrics)
    app.include_router(health_router)
    app.include_router(accounts_router)
    app.include_router(devices_router)
    app.include_router(sync_router)
    app.include_router(reports_router)
    # Before any /cases/{id} route: it owns /cases/export.geojson.
    app.include_router(case_review_router)
    app.include_router(categories_router)
    app.include_router(case_duplicates_router)
    app.include_router(cases_router)
    app.include_router(departments_router)
    app.include_router(calendar_router)
    app.include_router(media_router)
    app.include_router(tus_router)
    app.include_router(versions_router)
    app.include_router(grids_router)
    app.include_router(assignments_router)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:  # quick, pure: no thread needed
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
