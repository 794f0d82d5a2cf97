""""Кассы": registers that registered themselves through the API, in a real browser."""
import pytest

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Store
from stoloto.services import terminals
from tests.e2e.test_contract_registration import log_in
from tests.integration.test_processes import activated_contract

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
    assert page.locator(".alert-success", has_text="зарегистрировано 1, ожидают 0").count() == 1
    assert page.locator("table.model-list tbody tr", has_text="Зарегистрирована").count() == 1
