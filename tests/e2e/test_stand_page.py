"""«Тестовый стенд» in a real browser: what it shows for a contract at each stage, and which buttons it has."""
import pytest

from stoloto.services import contracts, terminals
from stoloto.services.contracts import ContractInput
from tests.e2e.browser import activate, log_in

pytestmark = pytest.mark.browser

NUMBER = "СТЕНД-1"
COLUMNS = ("status", "registered", "key", "activated", "issued")


def stand_row(page, base_url, number=NUMBER):
    page.goto(base_url + "/stand/")
    return page.locator(f"tr[data-contract='{number}']")


def shown(row) -> tuple[str, ...]:
    return tuple(row.locator(f"[data-testid={name}]").inner_text().strip() for name in COLUMNS)


def buttons(row) -> list[str]:
    return [text.strip() for text in row.locator("button[name=what]").all_inner_texts()]


def press(page, row, title):
    row.locator("button", has_text=title).click()
    assert page.locator(".alert-success").count() == 1


def test_each_stage_shows_the_stand_side_and_only_the_next_step(app, page, live_server, accounts,
                                                                 demo_stand, screenshot):  # noqa: F811
    with app.app_context():
        contracts.create_contract(ContractInput(number="ЧЕРНОВИК-1"), "tester")
        contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026", agent_inn="7707083893"),
                                  "tester")
    log_in(page, live_server, accounts["operator"])

    row = stand_row(page, live_server)
    assert page.locator("tr[data-contract='ЧЕРНОВИК-1']").count() == 0
    assert "Черновики здесь не показаны" in page.locator("body").inner_text()
    assert shown(row) == ("Создан", "нет", "—", "нет", "—")
    assert buttons(row) == ["Зарегистрировать договор на стенде"]

    press(page, row, "Зарегистрировать договор на стенде")
    row = stand_row(page, live_server)
    assert shown(row) == ("Создан", "да", "—", "нет", "0")
    assert buttons(row) == []
    assert "«Активировать договор»" in row.locator("[data-testid=next]").inner_text()

    activate(page, live_server, NUMBER)  # «Создан» → «Ожидание активации»: SIS makes the key and the appendix
    page.locator("tr", has_text=NUMBER).locator("a[title='Открыть запись']").click()
    on_contract_page = page.locator("tr", has_text="Отпечаток открытого ключа").locator("td").last.locator("code")
    on_contract_page = on_contract_page.inner_text()  # the same text in the same monospace
    row = stand_row(page, live_server)
    assert row.locator("[data-testid=fingerprint] code").inner_text().strip() == on_contract_page.strip()
    assert shown(row) == ("Ожидание активации", "да", "нет", "нет", "0")
    assert buttons(row) == ["Подтвердить ключ"]
    screenshot("15-stand-page")

    press(page, row, "Подтвердить ключ")
    row = stand_row(page, live_server)
    assert shown(row) == ("Ожидание активации", "да", "да", "нет", "0")
    assert buttons(row) == []

    activate(page, live_server, NUMBER)  # Stoloto activates it
    row = stand_row(page, live_server)
    assert shown(row) == ("Ожидание терминалов", "да", "да", "да", "0")
    assert buttons(row) == []

    with app.app_context():
        terminals.fetch_due_batches()  # what the scheduler does every interval
    row = stand_row(page, live_server)
    assert shown(row) == ("Активный", "да", "да", "да", "5")
    assert buttons(row) == []


def test_requisites_that_differ_offer_their_update(app, page, live_server, accounts, demo_stand):  # noqa: F811
    with app.app_context():
        contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026", agent_inn="7707083893"),
                                  "tester")
    demo_stand.register(NUMBER, inn="500100732259")
    log_in(page, live_server, accounts["operator"])
    row = stand_row(page, live_server)
    assert shown(row)[1] == "да, но отличается ИНН агента"
    assert buttons(row) == ["Обновить реквизиты на стенде"]
    press(page, row, "Обновить реквизиты на стенде")
    row = stand_row(page, live_server)
    assert (shown(row)[1], buttons(row)) == ("да", [])


def test_a_viewer_sees_no_buttons_and_a_stand_that_is_down_no_error_page(app, page, live_server, accounts,
                                                                          demo_stand):  # noqa: F811
    with app.app_context():
        contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026", agent_inn="7707083893"),
                                  "tester")
    log_in(page, live_server, accounts["viewer"])
    row = stand_row(page, live_server)
    assert shown(row) == ("Создан", "нет", "—", "нет", "—") and buttons(row) == []

    app.config["SIS_STOLOTO_STAND_URL"] = "https://127.0.0.1:9"  # nothing listens there; the fixture restores it
    row = stand_row(page, live_server)
    assert "Тестовый стенд Столото недоступен." in page.locator(".alert-danger").inner_text()
    assert shown(row) == ("Создан", "?", "?", "?", "?") and buttons(row) == []
