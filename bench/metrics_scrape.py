"""Benchmark: GET /metrics on a database with 200,000 registers and 30,000 stores — median time and SQL queries.

Usage: .venv/bin/python bench/metrics_scrape.py [--database-url=postgresql+psycopg://postgres@127.0.0.1/test]
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
from registers_list import REGISTERS, STORES, fill  # noqa: E402

ROUNDS = 25


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-metrics-"))
    app = _setup.make_app(_setup.database_url(sys.argv[1:], folder), folder)
    with app.app_context():
        from stoloto.extensions import db
        from stoloto.models import Contract
        contracts = [Contract(number=f"LIST-{n}", status="active", agent_inn="7707083893") for n in range(3)]
        db.session.add_all(contracts)
        db.session.commit()
        fill([c.id for c in contracts])
        engine = db.engine
    print(f"{STORES} stores, {REGISTERS} registers, {REGISTERS} terminals")
    client = app.test_client()
    statements = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(1))
    timings = []
    for _ in range(ROUNDS):
        statements.clear()
        started = time.perf_counter()
        response = client.get("/metrics")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    print(f"GET /metrics: median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms, "
          f"{len(statements)} SQL queries, {len(response.data)} bytes")


if __name__ == "__main__":
    main()
