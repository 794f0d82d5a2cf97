"""Engine settings: WAL and a busy timeout for SQLite, so web, jobs and API can share one file."""
import fcntl
import os
import threading
import time

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

    _one_writer_at_a_time(engine, _ProcessTurn(engine.url.database))


# Statements that take SQLite's write lock (a transaction's first one takes it until the commit).
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class _ProcessTurn:
    """The processes' turns at the write lock: an flock on a file beside the database, taken by the thread
    that holds its process's turn. The kernel hands it on as soon as it is released, where SQLite's busy
    handler sleeps 1, 2, 5 … 100 ms between tries; a process that dies holding it releases it.
    Opened in each process after the fork (gunicorn's workers create their app, and so their engine, there).
    """

    def __init__(self, database: str | None):
        private = not database or database == ":memory:" or database.startswith("file:")
        self.path = None if private else database + "-writer"
        self._fd, self._pid = -1, 0

    def acquire(self, deadline: float) -> bool:
        if self.path is None:
            return True
        if self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600), os.getpid()
        pause = 0.0001
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False  # SQLite's busy handler decides, as before
                time.sleep(pause)
                pause = min(pause * 2, 0.001)

    def release(self) -> None:
        if self.path is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def _one_writer_at_a_time(engine: Engine, processes: _ProcessTurn) -> None:
    """The threads of one process take turns at SQLite's write lock through a Python lock, and the
    processes through an flock (_ProcessTurn).

    SQLite has one writer; a connection that finds the write lock taken sleeps in its busy handler
    (1, 2, 5, 10… ms) however soon the lock is free. With 32 threads registering at once those sleeps
    cost a registration more than its statements (bench/registration_statements.py): a thread waiting
    here wakes as soon as the writer before it commits. A thread that waits longer than the busy
    timeout goes on to SQLite, which then decides as before.
    """
    gate, holders = threading.Lock(), set()  # holders: ids of the DBAPI connections holding the gate

    def release(connection, closed: bool = False) -> None:
        dbapi_connection = getattr(connection, "dbapi_connection", connection)  # the pool's proxy, or sqlite3's
        if id(dbapi_connection) in holders and (closed or not dbapi_connection.in_transaction):
            holders.discard(id(dbapi_connection))
            processes.release()
            gate.release()

    @event.listens_for(engine, "before_cursor_execute")
    def _take_turn(conn, cursor, statement, parameters, context, executemany):
        dbapi_connection = cursor.connection
        if id(dbapi_connection) not in holders and statement.lstrip()[:7].upper().startswith(_WRITES):
            deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
            if gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
                if processes.acquire(deadline):
                    holders.add(id(dbapi_connection))
                else:
                    gate.release()

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
