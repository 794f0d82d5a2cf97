"""The manual's "Активация договора" and "Получение номеров терминалов" in a real browser, against the stand."""
import pytest
from playwright.sync_api import expect

from stoloto.services import terminals
from tests.e2e.browser import activate, log_in

pytestmark = pytest.mark.browser


def add_and_prepare(page, base_url, number, contract_date="15.01.2026"):
    page.goto(base_url + "/contracts/new/")
    page.fill("input[name=number]", number)
    page.fill("input[name=contract_date]", contract_date)
    page.fill("input[name=agent_inn]", "7707083893")
    page.click("input[type=submit][value='Сохранить']")
    page.locator("tr", has_text=number).locator("button:has-text('Активировать договор')").click()
    expect(page.locator(".alert-success", has_text="Ожидание активации")).to_have_count(1)


def stand_action(page, base_url, number, title):
    page.goto(base_url + "/stand/")
    page.locator("tr", has_text=number).locator(f"button:has-text('{title}')").click()
    expect(page.locator(".alert-success")).to_have_count(1)


def test_contract_goes_from_created_to_active(app, page, live_server, accounts, demo_stand, screenshot):
    log_in(page, live_server, accounts["operator"])
    expect(page.locator("[data-testid=stand-banner]")).to_have_count(1)
    add_and_prepare(page, live_server, "ДЕМО-1")
    stand_action(page, live_server, "ДЕМО-1", "Зарегистрировать договор на стенде")

    activate(page, live_server, "ДЕМО-1")  # the key is not confirmed yet: Stoloto refuses
    refusal = page.locator(".alert-danger")
    assert "KEY_NOT_REGISTERED" in refusal.inner_text() and "Повторите попытку позже" in refusal.inner_text()
    expect(page.locator("tr", has_text="ДЕМО-1").locator("td", has_text="Ожидание активации")).to_have_count(1)
    screenshot("05-refusal")

    stand_action(page, live_server, "ДЕМО-1", "Подтвердить ключ")
    screenshot("06-stand")
    activate(page, live_server, "ДЕМО-1")
    expect(page.locator(".alert-success", has_text="Ожидание терминалов")).to_have_count(1)
    expect(page.locator("tr", has_text="ДЕМО-1").locator("td", has_text="Ожидание терминалов")).to_have_count(1)

    with app.app_context():
        terminals.fetch_due_batches()  # what the scheduler does every interval
    page.goto(live_server + "/contracts/")
    row = page.locator("tr", has_text="ДЕМО-1")
    expect(row.locator("td", has_text="Активный")).to_have_count(1)
    screenshot("07-active")
    row.locator("a[title='Просмотр записи'], a[title='View Record'], a .fa-eye").first.click()
    assert "Свободно: 5" in page.locator("[data-testid=pool]").inner_text()
    assert "SIS ДЕМО-1" in page.locator("[data-testid=certificate]").inner_text()
    screenshot("08-contract-details")


def test_requisites_error_shows_its_message_and_changes_nothing(page, live_server, accounts, demo_stand):
    log_in(page, live_server, accounts["operator"])
    add_and_prepare(page, live_server, "ДЕМО-2")
    demo_stand.register("ДЕМО-2", contract_date="2026-01-10")
    activate(page, live_server, "ДЕМО-2")
    message = page.locator(".alert-danger").inner_text()
    assert "CONTRACT_DATA_MISMATCH" in message and "Исправьте реквизиты договора" in message
    expect(page.locator("tr", has_text="ДЕМО-2").locator("td", has_text="Ожидание активации")).to_have_count(1)


def test_stoloto_down_never_shows_an_error_page(page, live_server, accounts, demo_stand):
    log_in(page, live_server, accounts["operator"])
    add_and_prepare(page, live_server, "ДЕМО-3")
    demo_stand.register("ДЕМО-3")
    demo_stand.fault("activate", "html502", count=1)
    activate(page, live_server, "ДЕМО-3")
    message = page.locator(".alert-danger").inner_text()
    assert "502" in message and "службу поддержки" in message
    expect(page.locator("tr", has_text="ДЕМО-3").locator("td", has_text="Ожидание активации")).to_have_count(1)
