"""Every endpoint runs in one thread-pool call (backend/core/routing.py, ADR 0001): a route
added with a plain APIRouter would bring back the thread hop that deadlocked under load."""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path

from fastapi import routing
from fastapi.routing import APIRoute

from backend.app import create_app
from backend.core.routing import OneThreadRoute, in_one_thread
from backend.core.settings import load_settings


def test_every_api_route_runs_its_endpoint_in_one_thread(tmp_path: Path) -> None:
    app = create_app(load_settings(var_dir=tmp_path))
    contexts = list(routing.iter_route_contexts(app.routes))  # through included routers
    routes = [getattr(c, "original_route", c) for c in contexts]
    routes = [r for r in routes if isinstance(r, APIRoute)]
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
