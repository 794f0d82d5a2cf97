"""Engine settings: WAL and a busy timeout for SQLite, so web, jobs and API can share one file."""
import os
import threading

from sqlalchemy import event
from sqlalchemy.engine import Engine

SQLITE_BUSY_TIMEOUT_MS = 15000


def configure_engine(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    _create_private(engine.url.database)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, connection_record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    _one_writer_at_a_time(engine)


# Statements that take SQLite's write lock (a transaction's first one takes it until the commit).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _one_writer_at_a_time(engine: Engine) -> None:
    """The threads of one process take turns at SQLite's write lock through a Python lock.

    SQLite has one writer; a connection that finds the write lock taken sleeps in its busy handler
    (1, 2, 5, 10… ms) however soon the lock is free. With 32 threads registering at once those sleeps
    cost a registration more than its statements (bench/registration_statements.py): a thread waiting
    here wakes as soon as the writer before it commits. Other processes still meet at the busy handler.
    A thread that waits longer than the busy timeout goes on to SQLite, which then decides as before.
    """
    gate, holders = threading.Lock(), set()  # holders: ids of the DBAPI connections holding the gate

    def release(connection, closed: bool = False) -> None:
        dbapi_connection = getattr(connection, "dbapi_connection", connection)  # the pool's proxy, or sqlite3's
        if id(dbapi_connection) in holders and (closed or not dbapi_connection.in_transaction):
            holders.discard(id(dbapi_connection))
            gate.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _take_turn(conn, cursor, statement, parameters, context, executemany):
        dbapi_connection = cursor.connection
        if id(dbapi_connection) not in holders and statement.lstrip()[:7].upper().startswith(_WRITES):
            if gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                holders.add(id(dbapi_connection))

    @event.listens_for(engine, "after_cursor_execute")
    def _autocommitted(conn, cursor, statement, parameters, context, executemany):
        release(cursor.connection)  # a statement outside a transaction (autocommit) is done with the lock

    @event.listens_for(engine, "handle_error")
    def _failed(context):
        if context.connection is not None and not context.connection.invalidated:
            release(context.connection.connection)

    def released_after(original, closes: bool = False):
        def ended(dbapi_connection):
            try:
                return original(dbapi_connection)
            finally:
                release(dbapi_connection, closes)
        return ended

    dialect = engine.dialect  # the pool's reset on return rolls back through it too
    for name in ("do_commit", "do_rollback", "do_close"):
        setattr(dialect, name, released_after(getattr(dialect, name), name == "do_close"))


def _create_private(path: str | None) -> None:
    """Creates the database file 0600 (like instance/secret_key): it holds password hashes and keys.

    SQLite creates the -wal and -shm files with the database file's own mode, so they are private too.
    """
    if not path or path == ":memory:" or path.startswith("file:") or os.path.exists(path):
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except FileNotFoundError:
        return  # no such folder: SQLite says so in its own words on the first connection
