"""Benchmark of "Загрузка списка магазинов": 50,000 SET shops, 10,000 already known, 40,000 to add.

Run on demand (it is not a test):  .venv/bin/python bench/import_stores.py [--repeat 3]
It prints how long import_from_set takes (HTTP fetch, parse, one-transaction bulk insert) next to a raw
sqlite3 executemany of the same 40,000 rows into an identical table, and whether the targets are met.
"""
import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a file from anywhere: the project root holds app.py and the stoloto package.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

SHOPS, EXISTING, FIRST = 50_000, 10_000, 101
TARGET_SECONDS, TARGET_RATIO = 3.0, 5.0
COLUMNS = ("code", "name", "address", "comment", "contract_id", "source", "created_at", "updated_at")


def prepare_sis(folder: Path, set_url: str):
    """A fresh migrated SQLite database with EXISTING stores whose codes are SET's first ones."""
    os.environ.update(SIS_INSTANCE_PATH=str(folder), DATABASE_URL=f"sqlite:///{folder / 'sis.db'}",
                      SIS_BOOTSTRAP_ADMIN="0", SIS_SCHEDULER="0", SET_CENTRUM_URL=set_url)
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app import create_app
    from stoloto.extensions import db
    from stoloto.models import Store, utcnow

    app = create_app()
    with app.app_context():
        upgrade()
        now = utcnow()
        db.session.execute(insert(Store.__table__), [
            {"code": str(FIRST + i), "name": f"Магазин №{FIRST + i}", "address": None, "comment": None,
             "contract_id": None, "source": "set", "created_at": now, "updated_at": now} for i in range(EXISTING)])
        db.session.commit()
    return app


def time_import(app) -> tuple[float, int]:
    from stoloto.services import stores
    with app.app_context():
        started = time.perf_counter()
        added = stores.import_from_set("bench")
        return time.perf_counter() - started, added


def time_fetch(set_url: str) -> float:
    """The HTTP fetch and parse alone, for the breakdown (not part of the import figure)."""
    from stoloto.clients.setcentrum import SetCentrumClient
    started = time.perf_counter()
    for _ in SetCentrumClient(set_url).shops():  # a stream: read to its end
        pass
    return time.perf_counter() - started


def time_raw_insert(folder: Path) -> float:
    """sqlite3 executemany of the rows the import added, into an identical table with the same 10,000 rows."""
    source = sqlite3.connect(folder / "sis.db")
    schema = [sql for (sql,) in source.execute(
        "SELECT sql FROM sqlite_master WHERE tbl_name IN ('contracts', 'stores') AND sql IS NOT NULL "
        "ORDER BY type = 'index'")]
    existing_codes = {str(FIRST + i) for i in range(EXISTING)}
    everything = source.execute(f"SELECT {', '.join(COLUMNS)} FROM stores ORDER BY id").fetchall()
    source.close()
    existing = [row for row in everything if row[0] in existing_codes]
    new_rows = [row for row in everything if row[0] not in existing_codes]

    raw = sqlite3.connect(folder / "raw.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):  # as stoloto.database sets
        raw.execute(f"PRAGMA {pragma}")
    for sql in schema:
        raw.execute(sql)
    placeholders = ", ".join("?" for _ in COLUMNS)
    statement = f"INSERT INTO stores ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    raw.execute("BEGIN")
    raw.executemany(statement, existing)
    raw.execute("COMMIT")
    started = time.perf_counter()
    raw.execute("BEGIN")
    raw.executemany(statement, new_rows)
    raw.execute("COMMIT")
    elapsed = time.perf_counter() - started
    assert raw.execute("SELECT count(*) FROM stores").fetchone()[0] == EXISTING + len(new_rows)
    raw.close()
    return elapsed


def run_once(set_url: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as name:
        folder = Path(name)
        app = prepare_sis(folder, set_url)
        fetch = time_fetch(set_url)
        total, added = time_import(app)
        assert added == SHOPS - EXISTING, added
        raw = time_raw_insert(folder)
        from stoloto.extensions import db
        with app.app_context():
            db.engine.dispose()
    return {"import": total, "fetch": fetch, "raw": raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh database (default 3)")
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)  # alembic and the stand log every step

    from stoloto.stands.setcentrum_stand import SetCentrumStand
    stand = SetCentrumStand(shops=SHOPS, start_number=FIRST).start()
    try:
        runs = [run_once(stand.url) for _ in range(args.repeat)]
    finally:
        stand.stop()

    def median(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    total, fetch, raw = median("import"), median("fetch"), median("raw")
    print(f"SET shops: {SHOPS}, already in SIS: {EXISTING}, added: {SHOPS - EXISTING}; "
          f"median of {len(runs)} runs on fresh SQLite databases")
    print(f"  import_from_set (fetch + parse + insert): {total:6.3f} s   runs: "
          + ", ".join(f"{run['import']:.3f}" for run in runs))
    print(f"    of which HTTP fetch + parse alone:      {fetch:6.3f} s")
    print(f"    so known codes + insert + commit ≈      {max(total - fetch, 0):6.3f} s")
    print(f"  raw sqlite3 executemany of the same rows: {raw:6.3f} s   runs: "
          + ", ".join(f"{run['raw']:.3f}" for run in runs))
    ratio = total / raw
    print(f"  import / raw insert: {ratio:.1f}×")
    met = total <= TARGET_SECONDS and ratio <= TARGET_RATIO
    print(f"  target ≤ {TARGET_SECONDS:g} s and ≤ {TARGET_RATIO:g}× raw: {'met' if met else 'NOT met'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
