"""Routes whose sync endpoint runs, and returns, in one thread-pool call.

FastAPI runs a plain ``def`` endpoint in the thread pool and then validates its return value
in a second thread-pool call, while the request's transaction (committed by the
function-scoped session dependency afterwards) is still open. Under load that second call
waits for a free thread holding a pooled connection and whatever locks the endpoint took,
while the threads are busy waiting for connections: a deadlock broken only by the pool
timeout. Wrapping the endpoint in a coroutine that makes one thread-pool call keeps the
whole endpoint in one thread and lets FastAPI validate the response on the event loop
(it is quick, pure work). ADR 0001 has the whole story.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool


class OneThreadRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, in_one_thread(endpoint), **kwargs)


def in_one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A coroutine running ``endpoint`` in one thread-pool call (async ones stay as they are).

    ``functools.wraps`` keeps the signature and ``__wrapped__``, from which FastAPI reads
    the parameters, their annotations' module and the response model.
    """
    if not inspect.isfunction(endpoint) or (
        inspect.iscoroutinefunction(endpoint)
        or inspect.isgeneratorfunction(endpoint)
        or inspect.isasyncgenfunction(endpoint)
    ):
        return endpoint  # coroutines, streams and callable objects: as FastAPI runs them

    @functools.wraps(endpoint)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(endpoint, *args, **kwargs)

    return run
