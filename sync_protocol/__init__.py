"""Xuncha's offline sync protocol (docs/sync-protocol.md), standard library only.

Shared by the server (message parsing, mutation validation, conflict rules, cursors, digests)
and by the reference client, so both sides implement the same document with the same code.
Nothing here may import the backend or a third-party package: a test parses every module and
fails on any other import.

Protocol: ``messages`` (push/pull bodies; ``push``/``pull`` hold them), ``enrollment``
(section 2 bodies), ``directives``, ``problems``, ``mutations`` (argument rules),
``conflicts`` (section 4.3), ``cursor``, ``digest``, ``versions``, ``errors``, ``timefmt``,
``schemas`` (JSON Schema) and ``examples/`` (golden exchanges).
Reference client: ``client`` (``SyncClient``), ``store`` (its SQLite file), ``transport``,
``batching``, ``outcomes``.
"""
