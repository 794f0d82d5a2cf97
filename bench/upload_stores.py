"""Benchmark of «Загрузка из файла»: 50,000 stores in a CSV and in an XLSX, into a database holding 10,000.

Run on demand (it is not a test):  .venv/bin/python bench/upload_stores.py [--repeat 3] [--database-url=…]
Each run takes a fresh database (SQLite in a temporary folder, or the given PostgreSQL database, emptied
first), signs in as an operator and drives the panel over HTTP (Flask's test client, no network): the upload
with its preview page, then «Загрузить». It prints the median of each step, the CPU time this process
spent on them (the figure a machine shared with other work disturbs least; on SQLite the database's work
is in it too) and whether the target is met.
"""
import argparse
import io
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

ROWS, EXISTING, FIRST = 50_000, 10_000, 100_001
TARGET_SECONDS = 5.0
PASSWORD = "benchmark-password-123"
CONTRACT = "СТ-2026/001"


def make_file(kind: str) -> bytes:
    """ROWS new stores; every other one bound to the contract, addresses of a usual length."""
    from stoloto.store_file import table
    return table(kind, [(str(FIRST + i), f"Магазин у дома №{i}", f"г. Москва, ул. Профсоюзная, д. {i % 200}, "
                         f"корп. {i % 7}", CONTRACT if i % 2 else "") for i in range(ROWS)])


def prepare(folder: Path, database_url: str | None):
    url = database_url or f"sqlite:///{folder / 'sis.db'}"
    os.environ.update(SIS_INSTANCE_PATH=str(folder), DATABASE_URL=url, SIS_BOOTSTRAP_ADMIN="0", SIS_SCHEDULER="0")
    from flask_migrate import upgrade
    from sqlalchemy import MetaData, create_engine, insert

    if database_url:
        engine = create_engine(database_url)
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
        engine.dispose()
    from app import create_app
    from stoloto.extensions import db
    from stoloto.models import ROLE_OPERATOR, Store, utcnow
    from stoloto.services import contracts, users
    from stoloto.services.contracts import ContractInput

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        users.create_user("bench", ROLE_OPERATOR, PASSWORD)
        contracts.create_contract(ContractInput(number=CONTRACT, contract_date="15.01.2026",
                                                agent_inn="7707083893"), "bench")
        now = utcnow()
        db.session.execute(insert(Store.__table__), [
            {"code": str(1000 + i), "name": None, "address": None, "source": "set", "created_at": now,
             "updated_at": now} for i in range(EXISTING)])
        db.session.commit()
        from stoloto.models import User
        db.session.query(User).update({"must_change_password": False})
        db.session.commit()
    return app


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def run_once(kind: str, data: bytes, database_url: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as name:
        app = prepare(Path(name), database_url)
        client = app.test_client()
        login = client.get("/auth/login").get_data(as_text=True)
        client.post("/auth/login", data={"login": "bench", "password": PASSWORD, "csrf_token": csrf(login)})
        token = csrf(client.get("/stores/upload/").get_data(as_text=True))

        started, cpu = time.perf_counter(), time.process_time()
        preview = client.post("/stores/upload/", data={"csrf_token": token, "file": (io.BytesIO(data), f"s.{kind}")},
                              content_type="multipart/form-data", follow_redirects=True)
        previewed, previewed_cpu = time.perf_counter() - started, time.process_time() - cpu
        page = preview.get_data(as_text=True)
        assert "50 000" in page or "50000" in page, page[:2000]
        upload_token = re.search(r'name="token" value="([^"]+)"', page).group(1)

        started, cpu = time.perf_counter(), time.process_time()
        # The redirect to «Магазины» that follows is a page of its own, not part of the figure.
        done = client.post("/stores/upload/confirm/", data={"csrf_token": token, "token": upload_token})
        confirmed, confirmed_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert done.status_code == 302
        assert f"Загружено {ROWS} магазинов" in client.get("/stores/").get_data(as_text=True)

        from sqlalchemy import func, select

        from stoloto.extensions import db
        from stoloto.models import Store
        with app.app_context():
            assert db.session.scalar(select(func.count()).select_from(Store)) == ROWS + EXISTING
            db.engine.dispose()
    return {"preview": previewed, "confirm": confirmed, "total": previewed + confirmed,
            "cpu": previewed_cpu + confirmed_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind, each on a fresh database")
    parser.add_argument("--database-url", help="a PostgreSQL database to use (emptied first); default SQLite")
    args = parser.parse_args()
    import logging
    logging.disable(logging.WARNING)

    met = True
    print(f"{ROWS} new stores in a file, {EXISTING} already in SIS; "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}; median of {args.repeat} runs")
    for kind in ("csv", "xlsx"):
        data = make_file(kind)
        runs = [run_once(kind, data, args.database_url) for _ in range(args.repeat)]
        median = {key: statistics.median(run[key] for run in runs) for key in ("preview", "confirm", "total", "cpu")}
        print(f"  {kind.upper():4} ({len(data) / 2 ** 20:.1f} MB): upload + preview page {median['preview']:.2f} s, "
              f"«Загрузить» {median['confirm']:.2f} s, total {median['total']:.2f} s "
              f"(this process's CPU {median['cpu']:.2f} s)   runs: "
              + ", ".join(f"{run['total']:.2f}" for run in runs))
        met = met and median["total"] <= TARGET_SECONDS
    print(f"  target: each kind ≤ {TARGET_SECONDS:g} s in total: {'met' if met else 'NOT met'}")
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
