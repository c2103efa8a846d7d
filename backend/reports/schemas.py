"""Bodies of the reports API (the command centre's view; phones use sync)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ReportOut(BaseModel):
    """A report as phones receive it (docs/sync-protocol.md §3), plus server bookkeeping."""

    report: dict[str, Any] = Field(description="The report as delivered by sync")
    deleted: bool
