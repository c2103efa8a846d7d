"""The reference client's durable state: one SQLite file (docs/sync-protocol.md 4.4).

Everything the client knows lives here, so killing the app at any instant and reopening the
file restores it: credentials, the mutation counter, the outbox, the confirmed records, the pull
cursor, the results log and the conflicts. Rules that make that true:

* WAL journal with ``synchronous=FULL``: a commit is on disk when it returns, so a mutation the
  user saw "saved" survives a power cut.
* Every change is one transaction (``BEGIN IMMEDIATE``). An outbox entry leaves the outbox only
  in the transaction that records its result; a pull page's records and the cursor after it
  commit together, so a crash never leaves a cursor ahead of the records it stands for.
* The results log keeps each processed mutation's content too (name, args, client_time): if
  the server ever forgets mutations it had processed (restored from a backup) and answers
  ``mutation_gap``, the client can re-send exactly what it sent before (same id, same content).

A real app keeps the device secret in the platform keystore; the reference client keeps it
here because it has no keystore.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sync_protocol.digest import digest_of
from sync_protocol.messages import Change, Directive, MutationResult, ResultStatus
from sync_protocol.store_rows import ConflictEntry, Credentials, LoggedResult, OutboxEntry

__all__ = ["ConflictEntry", "Credentials", "LoggedResult", "OutboxEntry", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS credentials (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id TEXT NOT NULL,
    device_secret TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    username TEXT NOT NULL,
    access_token TEXT,
    token_expires_at TEXT
);
CREATE TABLE IF NOT EXISTS sync_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    next_mutation_id INTEGER NOT NULL,
    cursor TEXT,
    server_last_mutation_id INTEGER NOT NULL,
    directives TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_time TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
    device_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    client_time TEXT,
    status TEXT NOT NULL,
    code TEXT,
    message TEXT,
    result TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (device_id, mutation_id)
);
CREATE TABLE IF NOT EXISTS conflicts (
    device_id TEXT NOT NULL,
    mutation_id INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id TEXT NOT NULL,
    fields TEXT NOT NULL,
    server TEXT NOT NULL,
    mine TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (device_id, mutation_id)
);
INSERT OR IGNORE INTO sync_state VALUES (1, 1, NULL, 0, '[]');
"""
_DELETE_RECORD = "DELETE FROM records WHERE entity = ? AND id = ?"


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _obj(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


class Store:
    """One open SQLite file. Not thread-safe: one client, one connection."""

    def __init__(self, path: str | Path) -> None:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE), never implicit.
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        with self.transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit: everything inside commits together or not at all."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _one(self, sql: str, *params: object) -> tuple[object, ...] | None:
        row: tuple[object, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    # -- credentials ------------------------------------------------------------------------

    def credentials(self) -> Credentials | None:
        row = self._one(
            "SELECT device_id, device_secret, user_id, username, access_token, "
            "token_expires_at FROM credentials"
        )
        return None if row is None else Credentials(*row)  # type: ignore[arg-type]

    def adopt_device(
        self,
        device_id: str,
        device_secret: str,
        user_id: int,
        username: str,
        token: str,
        token_expires_at: str,
    ) -> None:
        """Store new device credentials (enrollment).

        A new device numbers its mutations from 1 (section 4.4), so mutations still in the
        outbox are renumbered 1..n in their order; the old device's cursor and records are
        dropped because cursors are bound to a device and the scope is pulled again.
        """
        with self.transaction() as db:
            old = self.credentials()
            if old is None or old.device_id != device_id:
                first = self._one("SELECT MIN(id), COUNT(*) FROM outbox")
                assert first is not None
                head, count = first
                if isinstance(head, int) and isinstance(count, int):
                    # Two steps so no intermediate id collides with a row not yet moved.
                    db.execute("UPDATE outbox SET id = -id")
                    db.execute("UPDATE outbox SET id = -id - ?", (head - 1,))
                next_id = count + 1 if isinstance(count, int) else 1
                db.execute(
                    "UPDATE sync_state SET next_mutation_id = ?, cursor = NULL, "
                    "server_last_mutation_id = 0",
                    (next_id,),
                )
                db.execute("DELETE FROM records")
            db.execute("DELETE FROM credentials")
            db.execute(
                "INSERT INTO credentials VALUES (1, ?, ?, ?, ?, ?, ?)",
                (device_id, device_secret, user_id, username, token, token_expires_at),
            )

    def save_token(self, token: str, expires_at: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE credentials SET access_token = ?, token_expires_at = ?", (token, expires_at)
            )

    # -- outbox -----------------------------------------------------------------------------

    def next_mutation_id(self) -> int:
        row = self._one("SELECT next_mutation_id FROM sync_state")
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def enqueue(
        self, name: str, args: dict[str, object], client_time: str | None, created_at: str
    ) -> int:
        """Append a mutation with the next number; the number and the row commit together."""
        with self.transaction() as db:
            mutation_id = self.next_mutation_id()
            db.execute(
                "INSERT INTO outbox VALUES (?, ?, ?, ?, ?)",
                (mutation_id, name, _dumps(args), client_time, created_at),
            )
            db.execute("UPDATE sync_state SET next_mutation_id = ?", (mutation_id + 1,))
        return mutation_id

    def outbox(self, limit: int | None = None) -> list[OutboxEntry]:
        rows = self._db.execute(
            "SELECT id, name, args, client_time, created_at FROM outbox ORDER BY id LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
        return [OutboxEntry(r[0], r[1], _obj(r[2]), r[3], r[4]) for r in rows]

    def record_results(
        self,
        device_id: str,
        pairs: Sequence[tuple[OutboxEntry, MutationResult]],
        entities: dict[str, str],
        server_last_mutation_id: int,
        received_at: str,
    ) -> None:
        """Log results and retire their mutations, in one transaction.

        ``retry`` is logged but its mutation stays. ``gone`` removes the local record;
        ``conflict`` is kept for the user to redo. ``entities`` maps mutation names to the
        entity they touch (for results without a ``record``).
        """
        with self.transaction() as db:
            for entry, result in pairs:
                db.execute(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        device_id,
                        entry.id,
                        entry.name,
                        _dumps(entry.args),
                        entry.client_time,
                        result.status.value,
                        result.code,
                        result.message,
                        _dumps(result.to_json()),
                        received_at,
                    ),
                )
                if result.status == ResultStatus.retry:
                    continue
                db.execute("DELETE FROM outbox WHERE id = ?", (entry.id,))
                entity = result.record.entity if result.record else entities.get(entry.name, "")
                record_id = result.record.id if result.record else str(entry.args.get("report_id"))
                if result.status == ResultStatus.gone:
                    db.execute(
                        "DELETE FROM records WHERE entity = ? AND id = ?", (entity, record_id)
                    )
                elif result.status == ResultStatus.conflict:
                    db.execute(
                        "INSERT OR REPLACE INTO conflicts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            device_id,
                            entry.id,
                            entity,
                            record_id,
                            _dumps(list(result.fields or ())),
                            _dumps(result.server or {}),
                            _dumps(entry.args),
                            received_at,
                        ),
                    )
            db.execute(
                "UPDATE sync_state SET server_last_mutation_id = ?", (server_last_mutation_id,)
            )

    def archived(self, device_id: str, first: int, last: int) -> list[OutboxEntry] | None:
        """Mutations ``first..last`` as they were sent, from the results log; None if any is
        missing (then they cannot be re-sent)."""
        rows = self._db.execute(
            "SELECT mutation_id, name, args, client_time, received_at FROM results "
            "WHERE device_id = ? AND mutation_id BETWEEN ? AND ? ORDER BY mutation_id",
            (device_id, first, last),
        ).fetchall()
        if len(rows) != last - first + 1:
            return None
        return [OutboxEntry(r[0], r[1], _obj(r[2]), r[3], r[4]) for r in rows]

    def requeue(self, entries: Sequence[OutboxEntry]) -> None:
        """Put already-processed mutations back (same id, same content) for a re-send."""
        with self.transaction() as db:
            for e in entries:
                db.execute(
                    "INSERT INTO outbox VALUES (?, ?, ?, ?, ?)",
                    (e.id, e.name, _dumps(e.args), e.client_time, e.created_at),
                )

    def results_log(self) -> list[LoggedResult]:
        rows = self._db.execute(
            "SELECT mutation_id, name, args, status, code, message, result, received_at "
            "FROM results WHERE device_id = (SELECT device_id FROM credentials) "
            "ORDER BY mutation_id"
        ).fetchall()
        return [
            LoggedResult(
                r[0],
                r[1],
                _obj(r[2]),
                r[3],
                r[4],
                r[5],
                MutationResult.from_json(json.loads(r[6])),
                r[7],
            )
            for r in rows
        ]

    def conflicts(self) -> list[ConflictEntry]:
        rows = self._db.execute(
            "SELECT mutation_id, entity, record_id, fields, server, mine, created_at "
            "FROM conflicts WHERE device_id = (SELECT device_id FROM credentials) "
            "ORDER BY mutation_id"
        ).fetchall()
        return [
            ConflictEntry(r[0], r[1], r[2], json.loads(r[3]), _obj(r[4]), _obj(r[5]), r[6])
            for r in rows
        ]

    # -- records and cursor -----------------------------------------------------------------

    def cursor(self) -> str | None:
        row = self._one("SELECT cursor FROM sync_state")
        assert row is not None
        return row[0] if isinstance(row[0], str) else None

    def server_last_mutation_id(self) -> int:
        row = self._one("SELECT server_last_mutation_id FROM sync_state")
        assert row is not None and isinstance(row[0], int)
        return row[0]

    def apply_page(self, changes: Sequence[Change], cursor: str | None, last_id: int) -> None:
        """Apply a pull page and move the cursor past it, atomically (section 5).

        A ``put`` wins only with a higher version than the local copy (pages may repeat
        records); a ``delete`` removes the record whatever its version.
        """
        with self.transaction() as db:
            for change in changes:
                if change.op == "delete":
                    db.execute(
                        "DELETE FROM records WHERE entity = ? AND id = ?",
                        (change.entity, change.id),
                    )
                    continue
                db.execute(
                    "INSERT INTO records VALUES (?, ?, ?, ?) ON CONFLICT (entity, id) DO UPDATE "
                    "SET version = excluded.version, data = excluded.data "
                    "WHERE excluded.version > records.version",
                    (change.entity, change.id, change.version, _dumps(change.data)),
                )
            db.execute(
                "UPDATE sync_state SET cursor = ?, server_last_mutation_id = ?", (cursor, last_id)
            )

    def reset_records(self) -> None:
        """Forget the records and the cursor; never the outbox (section 5, ``reset``)."""
        with self.transaction() as db:
            db.execute("DELETE FROM records")
            db.execute("UPDATE sync_state SET cursor = NULL")

    def records(self, entity: str) -> dict[str, dict[str, object]]:
        rows = self._db.execute(
            "SELECT id, data FROM records WHERE entity = ? ORDER BY id", (entity,)
        ).fetchall()
        return {r[0]: _obj(r[1]) for r in rows}

    def record_version(self, entity: str, record_id: str) -> int | None:
        row = self._one(
            "SELECT version FROM records WHERE entity = ? AND id = ?", entity, record_id
        )
        return None if row is None else int(str(row[0]))

    def digest(self) -> tuple[str, int]:
        rows = self._db.execute("SELECT entity, id, version FROM records")
        return digest_of((r[0], r[1], r[2]) for r in rows)

    # -- directives -------------------------------------------------------------------------

    def directives(self) -> list[Directive]:
        row = self._one("SELECT directives FROM sync_state")
        assert row is not None and isinstance(row[0], str)
        return [Directive.from_json(d) for d in json.loads(row[0])]

    def save_directives(self, directives: Sequence[Directive]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE sync_state SET directives = ?", (_dumps([d.to_json() for d in directives]),)
            )
