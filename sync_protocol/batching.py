"""Splitting the outbox into push requests within the limits of section 4.2.

A request carries at most 200 mutations and 1 MiB of body. Sizes are measured on the exact
bytes the transport sends (compact UTF-8 JSON, :func:`encode_json`), so a batch that fits here
fits on the wire: Chinese text is three bytes a character, not one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sync_protocol.messages import MAX_BATCH_BYTES, MAX_BATCH_MUTATIONS, encode_json


def request_size(envelope: Mapping[str, object], mutations: Sequence[object]) -> int:
    """Bytes of ``envelope`` with ``mutations`` as its mutation list."""
    return len(encode_json({**envelope, "mutations": list(mutations)}))


def take_batch(
    mutations: Sequence[Mapping[str, object]],
    envelope: Mapping[str, object],
    *,
    max_count: int = MAX_BATCH_MUTATIONS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> int:
    """How many leading ``mutations`` (wire form) fit in one request.

    Always at least one when any is given: a mutation too large on its own must reach the
    server and be refused there (413), rather than silently stall the queue here. The client
    checks sizes at enqueue time so that does not happen.
    """
    if not mutations:
        return 0
    # The list of n items encodes as "[" + ",".join(items) + "]": the envelope with an empty
    # list already counts the brackets; each item adds its bytes plus a comma after the first.
    size = request_size(envelope, [])
    count = 0
    for item in mutations[:max_count]:
        added = len(encode_json(dict(item))) + (1 if count else 0)
        if count and size + added > max_bytes:
            break
        size += added
        count += 1
    return count
