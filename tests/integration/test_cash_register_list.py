""""Кассы" over HTTP: filters work and a page costs a fixed, small number of SQL queries (no N+1)."""
import re

import pytest

from stoloto.extensions import db
from stoloto.models import CashRegister, Store
from tests.conftest import count_queries, statements_run
from tests.factories import active_contract_with_a_used_number


@pytest.mark.parametrize("query", ["", "?flt0_0=pending", "?flt0_2=101", "?flt0_3={contract}", "?page=2",
                                   "?sort=7"])
def test_a_page_of_registers_costs_at_most_seven_queries(app, web, many_registers, query):
    browser = web("viewer")
    url = "/registers/" + query.format(contract=many_registers[1])
    response, queries = count_queries(app, lambda: browser.get(url))
    assert response.status_code == 200
    assert queries <= 7, queries  # six for the list, one for the header's certificates ending soon


def test_filters_narrow_the_list(app, web, many_registers):
    browser = web("viewer")
    page = browser.get("/registers/?flt0_0=pending").get_data(as_text=True)
    assert page.count("Ожидает регистрации") >= 50 and "Зарегистрирована</span>" not in page
    by_store = browser.get("/registers/?flt0_2=101").get_data(as_text=True)
    assert by_store.count('<td class="col-store.code"') == 3  # store 101 has registers 1, 2 and 3
    by_contract = browser.get(f"/registers/?flt0_3={many_registers[1]}").get_data(as_text=True)
    assert by_contract.count('<td class="col-store.code"') == 50  # a full page: 30 stores × 3 registers



@pytest.mark.parametrize(("query", "where", "offset"), [
    ("?page=2", True, 100), ("?page=3", True, 150), ("?flt0_0=pending&page=1", CashRegister.state == "pending", 50),
    ("?search=2&page=1", CashRegister.cash_number == 2, 50)])
def test_a_page_shows_its_rows_in_order(app, web, many_registers, query, where, offset):
    # The list takes a page's ids first and the rows' store, contract and terminal for those ids only.
    with app.app_context():
        expected = db.session.scalars(db.select(CashRegister.id).where(where).order_by(CashRegister.id.desc())
                                      .limit(50).offset(offset)).all()
    page = web("viewer").get("/registers/" + query).get_data(as_text=True)
    assert [int(i) for i in re.findall(r'href="/registers/details/\?id=(\d+)', page)] == expected
    assert page.count('<a href="/stores/details/?id=') == len(expected)


# --- search: terminal number, store code, cash number, serial number ------------------------------

@pytest.fixture
def keyed(app):
    """Registers whose keys differ: store 501 (cash 1 with terminal 0700001, cash 2), store 502 (cash 7, and cash 9
    whose serial has a slash)."""
    with app.app_context():
        contract, terminal = active_contract_with_a_used_number("К-7", "0700001")
        first, second = Store(code="501", contract_id=contract.id), Store(code="502", contract_id=contract.id)
        db.session.add_all([first, second])
        db.session.flush()
        seventh = CashRegister(store_id=second.id, cash_number=7, serial_number="SN-C7", contract_id=contract.id)
        db.session.add_all([
            CashRegister(store_id=first.id, cash_number=1, serial_number="SN-A1", terminal_id=terminal.id,
                         contract_id=contract.id, state="registered"),
            CashRegister(store_id=first.id, cash_number=2, serial_number="SN-B2", contract_id=contract.id), seventh,
            CashRegister(store_id=second.id, cash_number=9, serial_number="AB/12", contract_id=contract.id)])
        db.session.commit()
        return {"contract": contract.id, "501": first.id, "502": second.id, "502/7": seventh.id}


def serials_listed(response) -> list[str]:
    assert response.status_code == 200
    return sorted(re.findall(r'<td class="col-serial_number">\s*(\S+?)\s*</td>', response.get_data(as_text=True)))


@pytest.mark.parametrize(("text", "found"), [
    ("0700001", ["SN-A1"]),           # terminal number
    ("502", ["AB/12", "SN-C7"]),      # store code
    ("501", ["SN-A1", "SN-B2"]),
    ("7", ["SN-C7"]),                 # cash number
    ("SN-B2", ["SN-B2"]),             # serial number
    (" SN-B2 ", ["SN-B2"]),
    ("501/2", ["SN-B2"]),             # «магазин/касса», as the journal names a register
    ("501 / 1", ["SN-A1"]),
    ("AB/12", ["AB/12"]),             # a serial with a slash is still a serial
    ("нет такой", []),
])
def test_search_finds_registers_by_terminal_store_cash_or_serial(web, keyed, text, found):
    assert serials_listed(web("viewer").get("/registers/", query_string={"search": text})) == found


@pytest.mark.parametrize("text", ["9" * 11, "9" * 25, "-7", "501/" + "9" * 11, "501/-2", "/", "501/", "/7",
                                  "x" * 10_000, "5" * 10_000, "0700001" * 10])
def test_search_text_no_register_can_match_lists_nothing(web, keyed, text):
    # Digits past int4, text longer than any key: the database is never asked to compare what it cannot hold.
    response = web("viewer").get("/registers/", query_string={"search": text})
    assert serials_listed(response) == []


def test_a_search_page_costs_one_count_and_a_few_queries(app, web, keyed):
    browser = web("viewer")
    response, statements = statements_run(app, lambda: browser.get("/registers/?search=501"))
    assert serials_listed(response) == ["SN-A1", "SN-B2"]
    assert sum("count(" in statement.lower() for statement in statements) == 1
    assert len(statements) <= 8, statements  # with the header's certificates ending soon


# --- links to the store and the contract ------------------------------------------------------------

def test_registers_link_to_their_store_and_contract(web, keyed):
    browser = web("viewer")
    page = browser.get("/registers/?search=502").get_data(as_text=True)
    assert f'<a href="/stores/details/?id={keyed["502"]}">502</a>' in page
    assert f'<a href="/contracts/details/?id={keyed["contract"]}">К-7</a>' in page
    details = browser.get(f"/registers/details/?id={keyed['502/7']}").get_data(as_text=True)
    assert f'<a href="/stores/details/?id={keyed["502"]}">502</a>' in details
    assert f'<a href="/contracts/details/?id={keyed["contract"]}">К-7</a>' in details
    store_page = browser.get(f"/stores/details/?id={keyed['502']}")
    assert store_page.status_code == 200 and "502" in store_page.get_data(as_text=True)


def test_stores_link_to_their_contract(web, keyed):
    browser = web("viewer")
    link = f'<a href="/contracts/details/?id={keyed["contract"]}">К-7</a>'
    assert link in browser.get("/stores/?search=502").get_data(as_text=True)
    assert link in browser.get(f"/stores/details/?id={keyed['502']}").get_data(as_text=True)
    contract_page = browser.get(f"/contracts/details/?id={keyed['contract']}")
    assert contract_page.status_code == 200 and "К-7" in contract_page.get_data(as_text=True)

