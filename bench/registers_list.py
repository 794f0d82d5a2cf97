"""Benchmark: the "Кассы" list with 200,000 registers and 30,000 stores — median time and SQL queries per page.

Usage: .venv/bin/python bench/registers_list.py [--database-url=postgresql+psycopg://postgres@127.0.0.1/test]
"""
import re
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pages  # noqa: E402
import _setup  # noqa: E402

STORES, REGISTERS, ROUNDS = 30_000, 200_000, 15
PAGES = {
    "first page": "/registers/",
    "page 1000": "/registers/?page=1000",
    "last page": "/registers/?page=3999",
    "pending only": "/registers/?flt0_0=pending",
    "one store": "/registers/?flt0_2=15123",
    "one contract": "/registers/?flt0_3={contract}",
    "sorted by last attempt": "/registers/?sort=7",
    "search: terminal": "/registers/?search=1000123",
    "search: store code": "/registers/?search=15123",
    "search: serial": "/registers/?search=SN0123456",
    "search: store/cash": "/registers/?search=15123/2",
    "a register's details": "/registers/details/?id=123456",
}


def fill(contract_ids: list[int]) -> None:
    from stoloto.extensions import db
    from stoloto.models import CashRegister, Store, Terminal, TerminalBatch
    batch = TerminalBatch(contract_id=contract_ids[0], request_id="00000000-0000-4000-8000-00000000b001",
                          requested_count=REGISTERS, status="done")
    db.session.add(batch)
    db.session.flush()
    db.session.execute(insert(Store), [{"code": str(100 + i), "contract_id": contract_ids[i % len(contract_ids)],
                                        "name": f"Магазин №{100 + i}", "source": "set"} for i in range(STORES)])
    db.session.execute(insert(Terminal), [{"number": f"{1000000 + i}", "contract_id": contract_ids[0],
                                           "batch_id": batch.id, "status": "registered"} for i in range(REGISTERS)])
    store_ids = db.session.scalars(select(Store.id).order_by(Store.id)).all()
    terminal_ids = db.session.scalars(select(Terminal.id).order_by(Terminal.id)).all()
    rows = []
    for i in range(REGISTERS):
        pending = i % 10 == 0
        rows.append({"store_id": store_ids[i % STORES], "cash_number": 1 + i // STORES,
                     "serial_number": f"SN{i:07d}", "state": "pending" if pending else "registered",
                     "reason": "NO_FREE_TERMINALS" if pending else None,
                     "terminal_id": None if pending else terminal_ids[i],
                     "contract_id": contract_ids[(i % STORES) % len(contract_ids)]})
    for start in range(0, REGISTERS, 20_000):
        db.session.execute(insert(CashRegister), rows[start:start + 20_000])
    db.session.commit()


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-list-"))
    app = _setup.make_app(_setup.database_url(sys.argv[1:], folder), folder)
    with app.app_context():
        from stoloto.extensions import db
        from stoloto.models import Contract
        from stoloto.services import users
        contracts = [Contract(number=f"LIST-{n}", status="active", agent_inn="7707083893") for n in range(3)]
        db.session.add_all(contracts)
        db.session.commit()
        contract_ids = [c.id for c in contracts]
        started = time.perf_counter()
        fill(contract_ids)
        print(f"filled {STORES} stores and {REGISTERS} registers in {time.perf_counter() - started:.1f} s")
        users.create_user("viewer", "viewer", "bench-password-1")
        engine = db.engine
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/auth/login", data={"login": "viewer", "password": "bench-password-1", "csrf_token": token})

    print(_pages.HEADER)
    medians = []
    pages = {name: url.format(contract=contract_ids[1]) for name, url in PAGES.items()}
    for timing in _pages.time_pages(client, engine, pages, ROUNDS):
        medians.append(timing.median_ms)
        print(timing.line("≤ 100 ms, ≤ 6 queries"))
    print(f"worst median: {max(medians):.1f} ms (target: ≤ 100 ms and ≤ 6 queries per page)")


if __name__ == "__main__":
    main()
