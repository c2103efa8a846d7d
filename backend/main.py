"""ASGI entry point for uvicorn workers: settings come from XUNCHA_* environment variables."""

from fastapi import FastAPI

from backend.app import create_app
from backend.core.logging import configure_logging
from backend.core.settings import load_settings


def create_app_from_env() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    return create_app(settings)
