"""Queries of the sync bookkeeping tables."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.sync.models import ProcessedMutation
from sync_protocol.messages import MutationResult, ResultStatus


def store_result(
    session: Session,
    device_id: str,
    mutation_id: int,
    name: str,
    result: MutationResult,
    produced_version: int | None,
) -> None:
    session.add(
        ProcessedMutation(
            device_id=device_id,
            mutation_id=mutation_id,
            name=name,
            status=result.status.value,
            result=result.to_json(),
            record_id=result.record.id if result.record else None,
            record_version=produced_version,
        )
    )
    session.flush()


def replayed_result(session: Session, device_id: str, mutation_id: int) -> MutationResult:
    """The result given the first time, marked as a replay."""
    stored = session.get(ProcessedMutation, (device_id, mutation_id))
    if stored is None:  # pruned bookkeeping: the mutation was processed, its answer is gone
        return MutationResult(
            id=mutation_id,
            status=ResultStatus.rejected,
            code="result_unavailable",
            message="this mutation was processed long ago; its result is no longer kept",
            replayed=True,
        )
    return replace(MutationResult.from_json(stored.result), replayed=True)


def own_versions(session: Session, device_id: str, record_id: str) -> frozenset[int]:
    """Versions of a record produced by this device's own applied mutations."""
    rows = session.scalars(
        select(ProcessedMutation.record_version).where(
            ProcessedMutation.device_id == device_id,
            ProcessedMutation.record_id == record_id,
            ProcessedMutation.record_version.is_not(None),
        )
    )
    return frozenset(int(v) for v in rows if v is not None)
