""""Кассы" over HTTP: filters work and a page costs a fixed, small number of SQL queries (no N+1)."""
import pytest
from sqlalchemy import event, insert

from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store, Terminal, TerminalBatch


@pytest.fixture
def registers(app):
    with app.app_context():
        contracts = []
        for number in ("К-1", "К-2"):
            contract = Contract(number=number, status="active", agent_inn="7707083893")
            db.session.add(contract)
            db.session.flush()
            contracts.append(contract.id)
        batch = TerminalBatch(contract_id=contracts[0], request_id="00000000-0000-4000-8000-000000000001",
                              requested_count=300, status="done")
        db.session.add(batch)
        db.session.flush()
        db.session.execute(insert(Store), [{"code": str(100 + i), "contract_id": contracts[i % 2],
                                            "source": "set"} for i in range(60)])
        stores = dict(db.session.execute(db.select(Store.code, Store.id)).all())
        db.session.execute(insert(Terminal), [{"number": f"0{500000 + i}", "contract_id": contracts[0],
                                               "batch_id": batch.id, "status": "registered"} for i in range(120)])
        terminal_ids = [t for t, in db.session.execute(db.select(Terminal.id).order_by(Terminal.id))]
        db.session.execute(insert(CashRegister), [
            {"store_id": stores[str(100 + i % 60)], "cash_number": 1 + i // 60,
             "state": "registered" if i < 120 else "pending",
             "reason": None if i < 120 else "NO_FREE_TERMINALS",
             "terminal_id": terminal_ids[i] if i < 120 else None,
             "contract_id": contracts[(i % 60) % 2]} for i in range(180)])
        db.session.commit()
        return contracts


def count_queries(app, call):
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return response, len(statements)


@pytest.mark.parametrize("query", ["", "?flt0_0=pending", "?flt0_2=101", "?flt0_3={contract}", "?page=2",
                                   "?sort=6"])
def test_a_page_of_registers_costs_at_most_six_queries(app, web, registers, query):
    browser = web("viewer")
    url = "/registers/" + query.format(contract=registers[1])
    response, queries = count_queries(app, lambda: browser.get(url))
    assert response.status_code == 200
    assert queries <= 6, queries


def test_filters_narrow_the_list(app, web, registers):
    browser = web("viewer")
    page = browser.get("/registers/?flt0_0=pending").get_data(as_text=True)
    assert page.count("Ожидает регистрации") >= 50 and "Зарегистрирована</span>" not in page
    by_store = browser.get("/registers/?flt0_2=101").get_data(as_text=True)
    assert by_store.count('<td class="col-store.code"') == 3  # store 101 has registers 1, 2 and 3
    by_contract = browser.get(f"/registers/?flt0_3={registers[1]}").get_data(as_text=True)
    assert by_contract.count('<td class="col-store.code"') == 50  # a full page: 30 stores × 3 registers
