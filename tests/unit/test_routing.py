"""Every endpoint runs in one thread-pool call (backend/core/routing.py, ADR 0001): a route
added with a plain APIRouter would bring back the thread hop that deadlocked under load."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from backend.app import create_app
from backend.core.deps import SessionDep, get_session, get_snapshot_session
from backend.core.routing import OneThreadRoute, in_one_thread
from backend.core.settings import load_settings

_SESSIONS = {get_session, get_snapshot_session}


def _api_routes(app: FastAPI) -> list[APIRoute]:
    contexts = list(routing.iter_route_contexts(app.routes))  # through included routers
    routes = [getattr(c, "original_route", c) for c in contexts]
    return [r for r in routes if isinstance(r, APIRoute)]


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependencies(sub)


def _is_async(call: Callable[..., Any] | None) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def sync_dependencies_on_the_session(app: FastAPI) -> list[str]:
    """Sync dependencies that take the request's session: FastAPI runs each in a thread-pool
    call of its own, so a query there would hold the connection across the hop."""
    return sorted(
        {
            f"{route.path}: {getattr(sub.call, '__qualname__', sub.call)}"
            for route in _api_routes(app)
            for sub in _dependencies(route.dependant)
            if sub.call is not None
            and not _is_async(sub.call)
            and any(d.call in _SESSIONS for d in sub.dependencies)
        }
    )


def test_every_api_route_runs_its_endpoint_in_one_thread(tmp_path: Path) -> None:
    app = create_app(load_settings(var_dir=tmp_path))
    routes = _api_routes(app)
    assert len(routes) > 50
    # A sync endpoint must come wrapped (OneThreadRoute); an async one may be on any route.
    hopping = [
        f"{sorted(r.methods)} {r.path}"
        for r in routes
        if not inspect.iscoroutinefunction(r.endpoint)
    ]
    assert not hopping, f"sync endpoints on a plain route (use OneThreadRoute): {hopping}"
    assert sum(isinstance(r, OneThreadRoute) for r in routes) > 50


def test_a_wrapped_endpoint_keeps_its_signature_and_leaves_the_event_loop() -> None:
    def endpoint(count: int, name: str = "x") -> dict[str, object]:
        return {"count": count, "name": name, "thread": threading.current_thread().name}

    wrapped = in_one_thread(endpoint)
    assert inspect.signature(wrapped) == inspect.signature(endpoint)
    assert inspect.unwrap(wrapped) is endpoint

    async def call() -> tuple[dict[str, object], str]:
        return await wrapped(3, name="y"), threading.current_thread().name

    answer, loop_thread = asyncio.run(call())
    assert answer["count"] == 3 and answer["name"] == "y"
    assert answer["thread"] != loop_thread


def test_async_endpoints_are_left_alone() -> None:
    async def endpoint() -> None:
        return None

    assert in_one_thread(endpoint) is endpoint


def test_no_sync_dependency_takes_the_request_session(tmp_path: Path) -> None:
    app = create_app(load_settings(var_dir=tmp_path))
    with_session = [
        r for r in _api_routes(app) if any(d.call in _SESSIONS for d in _dependencies(r.dependant))
    ]
    assert len(with_session) > 40  # the walk does reach the session dependencies
    assert sync_dependencies_on_the_session(app) == []


def _sync_lookup(session: SessionDep) -> Session:
    return session


def test_a_sync_dependency_on_the_session_is_caught() -> None:
    router = APIRouter(route_class=OneThreadRoute)

    @router.get("/thing")
    def thing(found: Annotated[Session, Depends(_sync_lookup)]) -> None:
        return None

    app = FastAPI()
    app.include_router(router)
    assert sync_dependencies_on_the_session(app) == ["/thing: _sync_lookup"]
