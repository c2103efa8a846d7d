"""ASGI entry point for uvicorn workers: settings come from XUNCHA_* environment variables."""

from fastapi import FastAPI

from backend.app import create_app
from backend.core.logging import configure_logging
from backend.core.memory import limit_malloc_arenas
from backend.core.settings import load_settings


def create_app_from_env() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    limit_malloc_arenas(settings.malloc_arenas)
    return create_app(settings)
