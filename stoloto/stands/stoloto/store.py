"""The Stoloto stand's storage: one SQLite file, one connection guarded by a lock (the server is threaded)."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    number_key TEXT PRIMARY KEY, contract_number TEXT NOT NULL, contract_date TEXT NOT NULL,
    agent_inn TEXT NOT NULL, terminal_limit INTEGER NOT NULL, agent_id TEXT,
    key_fingerprint TEXT, certificate TEXT, certificate_sha256 TEXT UNIQUE, activated_at TEXT);
CREATE TABLE IF NOT EXISTS confirmed_keys (fingerprint TEXT PRIMARY KEY, confirmed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, number_key TEXT NOT NULL, request_id TEXT NOT NULL,
    requested INTEGER NOT NULL, issued INTEGER NOT NULL, issued_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terminals (
    terminal_number TEXT PRIMARY KEY, number_key TEXT NOT NULL, batch_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    terminal_number TEXT PRIMARY KEY, store_code TEXT NOT NULL, cash_number INTEGER NOT NULL,
    serial_number TEXT, address TEXT, bound_at TEXT NOT NULL);
-- Certificates replaced by §1.4 or a re-keying §1.1, still accepted until valid_until (ISO 8601 UTC).
CREATE TABLE IF NOT EXISTS retired_certificates (
    certificate_sha256 TEXT PRIMARY KEY, number_key TEXT NOT NULL, valid_until TEXT NOT NULL,
    retired_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    request_key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL);
"""
# Wiped by /control/reset; `meta` stays, so numbers already handed out are never reused.
STATE_TABLES = ("contracts", "confirmed_keys", "batches", "terminals", "bindings", "retired_certificates",
                "idempotency")


class StandStore:
    """SQLite state of the Stoloto stand; every use goes through `transaction()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        with self.lock:
            if self._conn is None:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.row_factory = sqlite3.Row
                # WAL without an fsync per commit: survives a killed process (what the tests do),
                # and keeps the stand from being the slowest part of a benchmark.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                self._conn = conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self):
        """Serialize with the lock and commit (or roll back) as one SQLite transaction."""
        with self.lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("the stand storage is closed")
            if conn.in_transaction:
                # Nested use inside an outer transaction: the outer one commits.
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get_meta(self, name: str, default: str | None = None) -> str | None:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def next_number(self, name: str, first: int) -> int:
        """The next value of a persistent sequence."""
        return self.reserve_numbers(name, first, 1)[0]

    def reserve_numbers(self, name: str, first: int, count: int) -> range:
        """`count` consecutive values of a persistent sequence; meta keeps the next free value."""
        with self.transaction():
            start = int(self.get_meta(name, str(first)))
            self.set_meta(name, str(start + count))
        return range(start, start + count)

    def wipe(self) -> None:
        with self.transaction() as db:
            for table in STATE_TABLES:
                db.execute(f"DELETE FROM {table}")


def contract_key(number: str) -> str:
    """Lookup key of a contract number: case and whitespace do not make another contract."""
    return re.sub(r"\s+", "", number).casefold()
