"""Benchmark: SIS on PostgreSQL with 1,000,000 registers, 100,000 stores and 50 contracts.

    .venv/bin/python bench/scale_pg.py --generate [--database-url=postgresql+psycopg://postgres@127.0.0.1/bench_scale]
    .venv/bin/python bench/scale_pg.py --measure  [--database-url=…]
    .venv/bin/python bench/scale_pg.py --measure --import-only [--repeat=5] [--database-url=…]

--generate drops the database's tables, migrates it and fills it with COPY (target: under two minutes).
--measure times the pages in-process (median of ROUNDS, SQL statements counted by an event listener),
EXPLAINs the job's selection of waiting registers, imports 100,000 new SET shops beside a raw COPY of
the same rows, then serves the same pages and the import from one gunicorn worker and reports its RSS.
"""
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pages  # noqa: E402
import _setup  # noqa: E402

CONTRACTS, STORES, REGISTERS_PER_STORE, FREE_PER_CONTRACT = 50, 100_000, 10, 1_000
MOVED_EVERY = 1_000  # one store in a thousand was bound to another contract: its registers wait for the job
REGISTERS = STORES * REGISTERS_PER_STORE
FIRST_CODE = 100_001  # store codes FIRST_CODE … FIRST_CODE + STORES - 1; SET's new shops come after them
NEW_SHOPS = 100_000
ROUNDS = 11
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_scale"
REASONS = ("NO_FREE_TERMINALS", "STOLOTO_UNAVAILABLE", "STOLOTO_REFUSED", "CONTRACT_NOT_ACTIVE")
USER, PASSWORD = "operator", "bench-password-1"


def pending(register: int) -> bool:
    """One register in ten waits, spread over stores and cash numbers."""
    return (register * 2654435761) % 100 < 10


def terminal_number(register: int) -> str:
    return f"{70_000_000 + register}"


def copy(cursor, table: str, columns: tuple[str, ...], rows) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as stream:
        for row in rows:
            stream.write_row(row)


def generate(database_url: str, folder: Path) -> None:
    started = time.perf_counter()
    app = _setup.make_app(database_url, folder)
    now = datetime.now(UTC).replace(tzinfo=None)
    with app.app_context():
        from stoloto.extensions import db
        from stoloto.services import users
        users.create_user(USER, "operator", PASSWORD)
        connection = db.engine.raw_connection()
        cursor = connection.cursor()
        copy(cursor, "contracts", ("id", "number", "agent_inn", "agent_name", "status", "created_at", "updated_at"),
             ((c, f"SCALE-{c:03d}", "7707083893", f"ООО «Сеть {c}»", "active", now, now)
              for c in range(1, CONTRACTS + 1)))
        copy(cursor, "terminal_batches", ("id", "contract_id", "request_id", "requested_count", "status",
                                          "received_count", "attempts", "created_at", "completed_at"),
             ((c, c, str(uuid.UUID(int=c)), REGISTERS, "done", REGISTERS, 1, now, now)
              for c in range(1, CONTRACTS + 1)))
        contract_of = [1 + store % CONTRACTS for store in range(STORES)]
        # The contract a store's registers are registered under: the one before, for a moved store.
        registered_under = [1 + (store - 1) % CONTRACTS if store % MOVED_EVERY == 0 else contract_of[store]
                            for store in range(STORES)]
        copy(cursor, "stores", ("id", "code", "contract_id", "name", "source", "created_at", "updated_at"),
             ((1 + s, str(FIRST_CODE + s), contract_of[s], f"Магазин №{FIRST_CODE + s}", "set", now, now)
              for s in range(STORES)))
        print(f"  contracts, stores: {time.perf_counter() - started:.1f} s")
        # Terminal id = register id + 1 for a registered register; the free ones come after.
        copy(cursor, "terminals", ("id", "number", "contract_id", "batch_id", "status", "created_at"),
             ((1 + r, terminal_number(r), registered_under[r // REGISTERS_PER_STORE],
               registered_under[r // REGISTERS_PER_STORE], "registered", now)
              for r in range(REGISTERS) if not pending(r)))
        copy(cursor, "terminals", ("id", "number", "contract_id", "batch_id", "status", "created_at"),
             ((REGISTERS + 1 + f, f"{90_000_000 + f}", 1 + f % CONTRACTS, 1 + f % CONTRACTS, "free", now)
              for f in range(CONTRACTS * FREE_PER_CONTRACT)))
        print(f"  terminals: {time.perf_counter() - started:.1f} s")

        def register_rows():
            for r in range(REGISTERS):
                store, waiting = r // REGISTERS_PER_STORE, pending(r)
                attempt = now - timedelta(seconds=r) if not waiting or r % 3 else None
                yield (1 + r, 1 + store, 1 + r % REGISTERS_PER_STORE, f"SN{r:08d}", f"FN{r:012d}", "POS",
                       "pending" if waiting else "registered", REASONS[r % len(REASONS)] if waiting else None,
                       registered_under[store], registered_under[store] != contract_of[store],
                       None if waiting else 1 + r, attempt, None if waiting else attempt, now, now)
        copy(cursor, "cash_registers", ("id", "store_id", "cash_number", "serial_number", "fiscal_number",
                                        "cash_type", "state", "reason", "contract_id", "store_moved", "terminal_id",
                                        "last_attempt_at", "registered_at", "created_at", "updated_at"),
             register_rows())
        print(f"  cash registers: {time.perf_counter() - started:.1f} s")
        copy(cursor, "registration_attempts", ("id", "cash_register_id", "created_at", "state", "reason",
                                               "terminal_number"),
             ((1 + r, 1 + r, now, "pending" if pending(r) else "registered",
               REASONS[r % len(REASONS)] if pending(r) else None, None if pending(r) else terminal_number(r))
              for r in range(REGISTERS)))
        print(f"  registration attempts: {time.perf_counter() - started:.1f} s")
        fill_counters(cursor, now)
        print(f"  «Обзор»'s counters: {time.perf_counter() - started:.1f} s")
        for table in ("contracts", "terminal_batches", "stores", "terminals", "cash_registers",
                      "registration_attempts"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        connection.driver_connection.autocommit = True
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does to a table of this age
        connection.close()
    print(f"generated {CONTRACTS} contracts, {STORES} stores, {REGISTERS} registers "
          f"({sum(1 for r in range(REGISTERS) if pending(r))} waiting, "
          f"{STORES // MOVED_EVERY * REGISTERS_PER_STORE} of stores moved to another contract) "
          f"in {time.perf_counter() - started:.1f} s (target: under 120 s)")


def fill_counters(cursor, now: datetime) -> None:
    """stoloto/stats.py's counters as SIS would have counted the rows above (as migration 0016 counts them in),
    spread over every slot as concurrent registrations spread them, and 24 hours of calls to Stoloto: «Обзор»
    reads these, never the registers."""
    local_day = "(({column}) AT TIME ZONE 'UTC' AT TIME ZONE 'Europe/Moscow')::date"

    def spread(value: str) -> str:  # slot s gets an eighth, slot 0 the remainder too
        return f"{value} / 8 + CASE WHEN s = 0 THEN {value} % 8 ELSE 0 END"
    cursor.execute(f"""
        INSERT INTO daily_registrations (day, contract_id, outcome, slot, count)
        SELECT day, contract_id, outcome, s, {spread("n")} FROM (
            SELECT {local_day.format(column="registered_at")} AS day, contract_id, 'registered' AS outcome,
                   count(*) AS n
            FROM cash_registers WHERE registered_at IS NOT NULL GROUP BY 1, 2
            UNION ALL
            SELECT {local_day.format(column="a.created_at")}, r.contract_id,
                   CASE WHEN a.reason = 'STOLOTO_REFUSED' THEN 'refused' ELSE 'waiting' END, count(*)
            FROM registration_attempts a JOIN cash_registers r ON r.id = a.cash_register_id
            WHERE a.state = 'pending' GROUP BY 1, 2, 3) counted CROSS JOIN generate_series(0, 7) s""")
    cursor.execute(f"""
        INSERT INTO daily_terminals (day, contract_id, slot, issued, used)
        SELECT day, contract_id, s, {spread("issued")}, {spread("used")} FROM (
            SELECT {local_day.format(column="created_at")} AS day, contract_id, count(*) AS issued,
                   count(*) FILTER (WHERE status <> 'free') AS used
            FROM terminals GROUP BY 1, 2) counted CROSS JOIN generate_series(0, 7) s""")
    hours = [now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=h) for h in range(24)]
    copy(cursor, "hourly_stoloto_calls", ("hour", "endpoint", "slot", "calls", "refusals", "failures"),
         ((hour, endpoint, slot, 500 + 37 * h, h % 5 if slot == 0 else 0, h % 3 if slot == 0 else 0)
          for h, hour in enumerate(hours) for endpoint in ("registration", "batches") for slot in range(8)))


# --- measure ------------------------------------------------------------------------------------

def pages() -> dict[str, str]:
    some_register = 123_457
    return {
        "Кассы: first page": "/registers/",
        "Кассы: page 10,000": "/registers/?page=9999",
        "Кассы: state filter": "/registers/?flt0_0=pending",
        "Кассы: reason filter": "/registers/?flt0_1=STOLOTO_REFUSED",
        "Кассы: store filter": f"/registers/?flt0_2={FIRST_CODE + 54_321}",
        "Кассы: contract filter": "/registers/?flt0_3=17",
        "Кассы: search terminal": f"/registers/?search={terminal_number(some_register)}",
        "Обзор": "/",
        "register's page": f"/registers/details/?id={some_register + 1}",
        "Магазины: first page": "/stores/",
    }


TARGETS = {"Обзор": 200, "register's page": 50}


def log_in(get, post) -> None:
    page = get("/auth/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    post("/auth/login", {"login": USER, "password": PASSWORD, "csrf_token": token})


def measure_pages(app) -> bool:
    from stoloto.extensions import db
    client = app.test_client()
    log_in(lambda url: client.get(url).get_data(as_text=True), lambda url, data: client.post(url, data=data))
    with app.app_context():
        engine = db.engine
    print(_pages.HEADER)
    met = True
    for timing in _pages.time_pages(client, engine, pages(), ROUNDS):
        target = TARGETS.get(timing.name, 100)
        store_list = timing.name.startswith("Магазины")
        met &= timing.median_ms <= target or store_list
        shown = re.search(r"(Список|List) \(([^)]*)\)", timing.html)
        note = f"  (tab: «{shown.group(0)}»)" if shown else ""
        print(timing.line((f"≤ {target} ms" if not store_list else "none set") + note))
    return met


def explain_job(app) -> bool:
    """EXPLAIN ANALYZE of the job's selection of waiting registers, as services.registers.waiting_selection()
    builds it: a claim of one register per worker (the default «Одновременных запросов к Столото»), and 500."""
    from stoloto import settings
    from stoloto.extensions import db
    from stoloto.services import registers
    met = True
    with app.app_context():
        for batch in (settings.BY_KEY[settings.STOLOTO_CONCURRENCY].default, 500):
            compiled = registers.waiting_selection(batch).compile(db.engine, compile_kwargs={"literal_binds": True})
            plan = "\n".join(db.session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}")).scalars())
            db.session.rollback()  # FOR UPDATE … SKIP LOCKED took the rows
            if batch != 500:
                print(f"job selection, services.registers.waiting_selection({batch}):\n{compiled}")
            print(plan)
            full_scan = "Seq Scan on cash_registers" in plan or "ix_cash_registers_waiting" not in plan
            read = "FULL SCAN of cash_registers" if full_scan else "ix_cash_registers_waiting"
            print(f"job selection of {batch}: {read}, {re.search(r'Execution Time: (.*)', plan).group(1)} "
                  "(target: an index, never a full scan)")
            met &= not full_scan
    return met


def measure_import(app, set_url: str) -> tuple[bool, float, float]:
    """import_from_set of NEW_SHOPS new shops, then a raw COPY of the same rows into the same table."""
    from stoloto import settings
    from stoloto.extensions import db
    from stoloto.models import Store
    from stoloto.services import stores
    with app.app_context():
        settings.save({settings.SET_CENTRUM_URL: set_url}, "bench")
        started = time.perf_counter()
        for _ in stores.setcentrum_client().shops():  # a stream: read to its end
            pass
        fetch = time.perf_counter() - started
        started = time.perf_counter()
        added = stores.import_from_set("bench")
        elapsed = time.perf_counter() - started
        assert added == NEW_SHOPS, added
        rows = db.session.execute(text("SELECT code, name, address, source, created_at, updated_at FROM stores "
                                       "WHERE code::bigint >= :first"), {"first": FIRST_CODE + STORES}).all()
        db.session.execute(Store.__table__.delete().where(text("code::bigint >= :first")),
                           {"first": FIRST_CODE + STORES})
        db.session.commit()
        connection = db.engine.raw_connection()
        cursor = connection.cursor()
        started = time.perf_counter()
        copy(cursor, "stores", ("code", "name", "address", "source", "created_at", "updated_at"), rows)
        connection.commit()
        raw = time.perf_counter() - started
        cursor.execute("DELETE FROM stores WHERE code::bigint >= %s", (FIRST_CODE + STORES,))
        connection.commit()
        connection.close()
    ratio = elapsed / raw
    met = elapsed <= 5 and ratio <= 3
    print(f"import of {NEW_SHOPS} new SET shops into {STORES}: {elapsed:.2f} s; raw COPY of the same rows "
          f"{raw:.2f} s → {ratio:.1f}× (HTTP fetch and parse alone {fetch:.2f} s)\n"
          f"  target: ≤ 5 s and ≤ 3× raw: {'met' if met else 'NOT met'}")
    return met, elapsed, ratio


def measure_imports(app, repeat: int) -> None:
    """--import-only [--repeat=N]: the import against its raw COPY N times over; the medians."""
    set_url = f"http://127.0.0.1:{SET_PORT}"
    results = []
    with set_stand():
        _setup.wait_http(set_url + "/api/v1/shops", seconds=60)
        try:
            for _ in range(repeat):
                results.append(measure_import(app, set_url))
                remove_new_shops(app)
        finally:
            remove_new_shops(app)
    elapsed, ratio = (statistics.median(result[i] for result in results) for i in (1, 2))
    print(f"median of {repeat}: import {elapsed:.2f} s, {ratio:.1f}× raw COPY "
          f"(runs: {', '.join(f'{r[2]:.1f}×' for r in results)}); target: ≤ 5 s and ≤ 3× raw")


def gunicorn_rss(database_url: str, folder: Path, set_url: str) -> float:
    """One gunicorn worker (4 threads) serves every page ROUNDS times and one import; its peak RSS in MB."""
    port = 5391
    env = {**_setup.sis_env(database_url, folder), "SIS_SCHEDULER": "0", "SIS_WORKERS": "1", "PORT": str(port),
           "HOST": "127.0.0.1", "PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus")}
    (folder / "prometheus").mkdir(exist_ok=True)
    with _setup.process([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"],
                        env) as server:
        base = f"http://127.0.0.1:{port}"
        _setup.wait_http(base + "/healthz")
        session = requests.Session()
        log_in(lambda url: session.get(base + url).text, lambda url, data: session.post(base + url, data=data))
        peak = 0.0

        def sample(after: str):
            nonlocal peak
            for pid in worker_pids(server.pid):
                with open(f"/proc/{pid}/status") as handle:
                    sizes = dict(line.split(":", 1) for line in handle if line.startswith(("VmHWM", "VmRSS")))
                # VmHWM: the peak resident set of the worker's life so far
                print(f"  worker RSS after {after}: {int(sizes['VmRSS'].split()[0]) / 1024:.0f} MB, "
                      f"peak {int(sizes['VmHWM'].split()[0]) / 1024:.0f} MB")
                peak = max(peak, int(sizes["VmHWM"].split()[0]) / 1024)
        sample("start and login")
        for url in pages().values():
            for _ in range(ROUNDS):
                assert session.get(base + url).status_code == 200, url
        sample("every page")
        page = session.get(base + "/stores/").text
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        answer = session.post(base + "/stores/import/", data={"csrf_token": token})
        assert answer.status_code in (200, 302), answer.status_code
        sample(f"the import of {NEW_SHOPS} shops")
        return peak


def remove_new_shops(app) -> None:
    """Leaves the database as --generate made it, for the next run."""
    from stoloto.extensions import db
    with app.app_context():
        db.session.execute(text("DELETE FROM stores WHERE code::bigint >= :first"), {"first": FIRST_CODE + STORES})
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE stores"))  # else the next run's estimates count dead rows


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


SET_PORT = 5392


def set_stand():
    """SET Centrum in its own process, as in production: its serving does not share the import's CPU time."""
    return _setup.process([sys.executable, "-m", "stoloto.stands.setcentrum_stand", "--port", str(SET_PORT),
                           "--shops", str(STORES + NEW_SHOPS), "--start", str(FIRST_CODE)])


def wire_large_list() -> None:
    """--wire: «Кассы» as the lead is to wire it (admin_views/large_lists.LargeListMixin first in the bases, a
    total under the list), until admin_views/registers.py does so itself."""
    from admin_views.large_lists import LargeListMixin
    from admin_views.registers import CashRegisterView
    if not issubclass(CashRegisterView, LargeListMixin):
        CashRegisterView.__bases__ = (LargeListMixin, *CashRegisterView.__bases__)
    CashRegisterView.simple_list_pager = False
    print("«Кассы» wired with LargeListMixin and a total (--wire)")


def measure(database_url: str, folder: Path) -> None:
    import logging
    logging.disable(logging.WARNING)
    if "--wire" in sys.argv:
        wire_large_list()
    app = _setup.open_app(database_url, folder)
    if "--import-only" in sys.argv:
        measure_imports(app, int(_setup.option(sys.argv[1:], "repeat", "5")))
        return
    met = measure_pages(app)
    met &= explain_job(app)
    if "--pages-only" in sys.argv:
        return
    set_url = f"http://127.0.0.1:{SET_PORT}"
    with set_stand():
        _setup.wait_http(set_url + "/api/v1/shops", seconds=60)
        try:
            if "--pages-only" not in sys.argv:
                met &= measure_import(app, set_url)[0]
            rss = gunicorn_rss(database_url, folder, set_url)
        finally:
            remove_new_shops(app)
    print(f"gunicorn worker peak RSS: {rss:.0f} MB (target: under 200 MB)")
    met &= rss < 200
    print("all targets met" if met else "some targets NOT met")
    sys.exit(0 if met else 1)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-scale-"))
    url = _setup.option(sys.argv[1:], "database-url", DEFAULT_URL)
    if "--generate" in sys.argv:
        generate(url, folder)
    if "--measure" in sys.argv:
        measure(url, folder)
    if "--generate" not in sys.argv and "--measure" not in sys.argv:
        print(__doc__)


if __name__ == "__main__":
    main()
