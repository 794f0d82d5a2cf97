""""Кассы": registers that registered themselves through the API, in a real browser."""
import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import CashRegister, Store
from stoloto.services import terminals
from tests.e2e.browser import UPDATE_TIMEOUT_MS, log_in
from tests.factories import activated_contract, active_contract_with_a_used_number, stocked_contract, waiting_registers
from tests.integration.register_runs import set_latency

pytestmark = pytest.mark.browser
TOKEN = "browser-test-token-0123456789"


def test_registers_tab_lists_states_and_shows_history(app, page, live_server, accounts, stand, screenshot):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        contract_id = activated_contract(stand, "КАССЫ-1")
        terminals.fetch_due_batches()
        db.session.add_all([Store(code="301", contract_id=contract_id, name="Магазин №301", source="manual"),
                            Store(code="302", contract_id=None, name="Магазин №302", source="manual")])
        db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for cash_number in (1, 2):
        assert client.post("/api/v1/cash-registers/registration", headers=headers,
                           json={"store_code": "301", "cash_number": cash_number, "serial_number": f"SN{cash_number}"}
                           ).status_code == 200
    stand.fault("registration", "html502", count=1)
    assert client.post("/api/v1/cash-registers/registration", headers=headers,
                       json={"store_code": "301", "cash_number": 3}).status_code == 202

    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Кассы')")
    rows = page.locator("table.model-list tbody tr")
    assert rows.count() == 3
    registered = page.locator("tr", has_text="SN1")
    assert registered.locator("text=Зарегистрирована").count() == 1
    pending = page.locator("tr", has=page.locator("text=Ожидает регистрации"))
    assert pending.count() == 1 and "Столото недоступен" in pending.inner_text()
    screenshot("09-cash-registers")

    page.goto(live_server + "/registers/?flt0_0=pending")
    assert page.locator("table.model-list tbody tr").count() == 1

    page.goto(live_server + "/registers/")
    registered.locator("a[title='Просмотр записи'], a .fa-eye").first.click()
    history = page.locator("[data-testid=register-history]").inner_text()
    assert "КАССЫ-1" in history and "Зарегистрирована" in history
    screenshot("10-cash-register-details")


def test_operator_registers_a_waiting_register_now(app, page, live_server, accounts, stand):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        contract_id = activated_contract(stand, "КАССЫ-2")
        terminals.fetch_due_batches()
        db.session.add(Store(code="311", contract_id=contract_id, name="Магазин №311", source="manual"))
        db.session.commit()
    stand.fault("registration", "html502", count=1)
    assert app.test_client().post("/api/v1/cash-registers/registration", headers={"Authorization": f"Bearer {TOKEN}"},
                                  json={"store_code": "311", "cash_number": 1}).status_code == 202

    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/registers/")
    row = page.locator("tr", has=page.locator("text=Ожидает регистрации"))
    row.locator("input.action-checkbox").check()
    page.once("dialog", lambda dialog: dialog.accept())  # "Зарегистрировать … сейчас?"
    page.click("a.dropdown-toggle:has-text('С отмеченными')")
    page.click("a.dropdown-item:has-text('Зарегистрировать сейчас')")
    expect(page.locator("[data-testid=register-run]")).to_have_text(
        "Регистрация касс: зарегистрировано 1, ожидают 0.", timeout=UPDATE_TIMEOUT_MS)
    page.reload()
    assert page.locator("table.model-list tbody tr", has_text="Зарегистрирована").count() == 1


def test_the_progress_of_registering_ticked_registers_updates_itself(app, page, live_server, accounts, stand,
                                                                      screenshot):
    with app.app_context():
        contract_id = stocked_contract(stand, "КАССЫ-3", 6)
        ids = waiting_registers(contract_id, "321", 6)
        settings.save({settings.STOLOTO_CONCURRENCY: 1}, "t")
    set_latency(stand, 1500)  # one at a time, 1.5 s each: the page polls (every 3 s) while the run goes on

    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/registers/")
    for register_id in ids[:4]:
        page.locator(f"input.action-checkbox[value='{register_id}']").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("a.dropdown-toggle:has-text('С отмеченными')")
    page.click("a.dropdown-item:has-text('Зарегистрировать сейчас')")
    notice = page.locator("[data-testid=register-run]")
    expect(notice).to_have_text(re.compile(r"Регистрация касс: [0-3] из 4…"))
    first = notice.inner_text()
    expect(notice).not_to_have_text(first, timeout=UPDATE_TIMEOUT_MS)  # updated without a reload
    screenshot("09c-register-run-progress")
    expect(notice).to_have_text("Регистрация касс: зарегистрировано 4, ожидают 0.", timeout=4 * UPDATE_TIMEOUT_MS)
    expect(notice).to_have_class(re.compile("alert-success"))
    set_latency(stand, 0)


@pytest.fixture
def many_registers(app):
    """121 registers: stores 601–660 with cash 1 and 2 (SN-<store>-<cash>), store 660 also cash 9; 601/1 has
    terminal 0800001."""
    with app.app_context():
        contract, terminal = active_contract_with_a_used_number("К-ПОИСК", "0800001")
        db.session.execute(insert(Store), [{"code": str(601 + i), "contract_id": contract.id,
                                            "name": f"Магазин №{601 + i}", "source": "manual"} for i in range(60)])
        stores = dict(db.session.execute(select(Store.code, Store.id)).all())
        rows = [{"store_id": stores[code], "cash_number": cash, "serial_number": f"SN-{code}-{cash}",
                 "contract_id": contract.id} for code in sorted(stores) for cash in (1, 2)]
        rows.append({"store_id": stores["660"], "cash_number": 9, "serial_number": "SN-660-9",
                     "contract_id": contract.id})
        rows[0].update(terminal_id=terminal.id, state="registered")
        db.session.execute(insert(CashRegister), rows)
        db.session.commit()
        return {"contract": contract.id, "store 655": stores["655"]}


def search(page, text: str) -> list[str]:
    page.fill("input[name=search]", text)
    page.press("input[name=search]", "Enter")
    page.wait_for_load_state("load")
    return sorted(page.locator("table.model-list td.col-serial_number").all_inner_texts())


def test_registers_are_found_by_each_key_and_link_to_store_and_contract(page, live_server, accounts,
                                                                         many_registers, screenshot):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Кассы')")
    assert search(page, "0800001") == ["SN-601-1"]             # terminal number
    assert search(page, "655") == ["SN-655-1", "SN-655-2"]     # store code
    assert search(page, "9") == ["SN-660-9"]                   # cash number
    assert search(page, "SN-642-2") == ["SN-642-2"]            # serial number
    assert search(page, "655/2") == ["SN-655-2"]               # «магазин/касса»
    screenshot("09a-cash-register-search")

    page.click("table.model-list td[class='col-store.code'] a:has-text('655')")
    assert page.url == f"{live_server}/stores/details/?id={many_registers['store 655']}"
    assert page.locator("td", has_text="Магазин №655").count() == 1
    page.go_back()
    page.click("table.model-list td[class='col-contract.number'] a:has-text('К-ПОИСК')")
    assert page.url == f"{live_server}/contracts/details/?id={many_registers['contract']}"
    assert page.locator("td", has_text="К-ПОИСК").count() >= 1

    page.click("a.nav-link:has-text('Магазины')")
    search(page, "655")
    page.click("table.model-list td.col-contract a:has-text('К-ПОИСК')")
    assert page.url == f"{live_server}/contracts/details/?id={many_registers['contract']}"


def test_the_pager_shows_the_total_and_jumps_to_a_page(page, live_server, accounts, many_registers, screenshot):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Кассы')")
    summary = page.locator("[data-testid=pager-summary]")
    assert summary.inner_text() == "1–50 из 121"
    page.fill("input[name=goto]", "3")
    page.click("[data-testid=pager-jump] button:has-text('Перейти')")
    page.wait_for_load_state("load")
    assert summary.inner_text() == "101–121 из 121"
    assert page.locator(".pagination .page-item.active").inner_text() == "3"
    assert page.locator("table.model-list tbody tr").count() == 21
    screenshot("09b-list-pager")

    search(page, "1")  # cash 1 of every store: 60 registers, two pages that the jump keeps to
    assert summary.inner_text() == "1–50 из 60"
    page.fill("input[name=goto]", "2")
    page.click("[data-testid=pager-jump] button:has-text('Перейти')")
    page.wait_for_load_state("load")
    assert summary.inner_text() == "51–60 из 60"
    assert re.search(r"[?&]search=1(&|$)", page.url)
