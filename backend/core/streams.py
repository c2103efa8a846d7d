"""Receiving a request body as a spooled temporary file (bounded memory), hashing as it comes.

Endpoints that take raw bytes (tus PATCH, direct PUT) declare this as a dependency; FastAPI
awaits it before the (synchronous) endpoint runs, so the endpoint gets a finished file and
the digests the caller asked for, and never holds the body in memory beyond 1 MiB.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from typing import IO, Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from backend.core.errors import PayloadTooLarge, RequestAborted

SPOOL_IN_MEMORY = 1 << 20
ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}


@dataclass
class SpooledBody:
    file: IO[bytes]
    length: int
    digests: dict[str, bytes] = field(default_factory=dict)

    def close(self) -> None:
        self.file.close()


async def spool_request(
    request: Request, limit: int, algorithms: tuple[str, ...] = ()
) -> SpooledBody:
    hashers: dict[str, Any] = {name: ALGORITHMS[name]() for name in algorithms}
    spooled = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned open
    total = 0
    try:
        async for block in request.stream():
            total += len(block)
            if total > limit:
                raise PayloadTooLarge(f"this request body is limited to {limit} bytes")
            for hasher in hashers.values():
                hasher.update(block)
            spooled.write(block)
    except ClientDisconnect:
        # A phone losing signal mid-chunk is normal, not a server error: nothing is kept.
        spooled.close()
        raise RequestAborted(f"the connection closed after {total} bytes") from None
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return SpooledBody(spooled, total, {name: h.digest() for name, h in hashers.items()})
