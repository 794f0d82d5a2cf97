"""Benchmark: where a registration's wall time goes under concurrency, statement by statement.

32 threads of one process register new registers through the API (Flask test client) against the
Stoloto stand answering in 100 ms, as one gunicorn worker with 32 threads would; SQLAlchemy's
events count and time every statement and commit. Prints, per registration: statements, commits,
milliseconds spent in each kind of statement (waits for locks included) and in the Stoloto call.
Usage:
    .venv/bin/python bench/registration_statements.py [--database-url=…] [--threads=32] [--count=1000]
"""
import re
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
import drain  # noqa: E402


def kind(statement: str) -> str:
    """A statement's first words and table: `UPDATE terminals`, `SELECT … FROM stores`."""
    words = statement.split()
    verb = words[0].upper() if words else "?"
    table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement, re.IGNORECASE)
    return f"{verb} {table.group(1) if table else ''}".strip()


def main() -> None:
    argv = sys.argv[1:]
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-statements-"))
    url = _setup.database_url(argv, folder)
    threads, count = int(_setup.option(argv, "threads", "32")), int(_setup.option(argv, "count", "1000"))
    from sqlalchemy import event
    with _setup.sis_beside_stand(folder, 5745, url) as (app, stand_url, stand_ca, _):
        stand = (stand_url, stand_ca)
        with app.app_context():
            from stoloto.extensions import db
            from stoloto.models import Store
            contract_id = _setup.active_contract("STATEMENTS-1", -(-2 * count // 1000), stand)
            db.session.add_all([Store(code=str(101 + i), contract_id=contract_id, source="set") for i in range(100)])
            db.session.commit()
            engine = db.engine
        spent, counted, local = defaultdict(float), defaultdict(int), threading.local()

        @event.listens_for(engine, "before_cursor_execute", insert=True)  # first: a wait for SQLite's turn counts
        def _before(conn, cursor, statement, parameters, context, executemany):
            local.started = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn, cursor, statement, parameters, context, executemany):
            name = kind(statement)
            spent[name] += time.perf_counter() - local.started
            counted[name] += 1

        def timed(original, name: str):
            def run(dbapi_connection):
                started = time.perf_counter()
                try:
                    return original(dbapi_connection)
                finally:
                    spent[name] += time.perf_counter() - started
                    counted[name] += 1
            return run
        for name in ("commit", "rollback"):
            setattr(engine.dialect, f"do_{name}", timed(getattr(engine.dialect, f"do_{name}"), name.upper()))

        from stoloto.clients import stoloto as stoloto_client
        original_send = stoloto_client.StolotoClient._send

        def send(self, *args, **kwargs):
            started = time.perf_counter()
            try:
                return original_send(self, *args, **kwargs)
            finally:
                spent["Stoloto call"] += time.perf_counter() - started
                counted["Stoloto call"] += 1
        stoloto_client.StolotoClient._send = send
        headers = {"Authorization": f"Bearer {_setup.TOKEN}"}
        client = app.test_client()
        client.post("/api/v1/cash-registers/registration", headers=headers, json={"store_code": "101",
                                                                                   "cash_number": 9999})
        spent.clear()
        counted.clear()
        drain.set_latency(stand, drain.LATENCY_MS)
        failures = []

        def work(first: int) -> None:
            own = app.test_client()
            for n in range(first, count, threads):
                answer = own.post("/api/v1/cash-registers/registration", headers=headers,
                                  json={"store_code": str(101 + n % 100), "cash_number": 1 + n // 100})
                if answer.status_code != 200:
                    failures.append(answer.status_code)
        started = time.perf_counter()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        seconds = time.perf_counter() - started
        drain.set_latency(stand, 0)
    database = "PostgreSQL" if "postgresql" in url else "SQLite"
    print(f"{database}: {count} registrations by {threads} threads in {seconds:.1f} s = {count / seconds:.0f}/s "
          f"(ceiling {threads} × 10/s = {threads * 10}/s); answers other than 200: {len(failures)}")
    print(f"wall per registration {threads * seconds / count * 1000:.1f} ms; of it, per registration:")
    for name, seconds_in in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"  {name:28s} {counted[name] / count:5.2f} × {seconds_in / counted[name] * 1000:6.2f} ms"
              f" = {seconds_in / count * 1000:6.2f} ms")


if __name__ == "__main__":
    main()
