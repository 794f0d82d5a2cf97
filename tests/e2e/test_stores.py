"""The manual's "Заведение списка магазинов" and "Привязка магазинов к договору" in a real browser."""
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from stoloto.extensions import db
from stoloto.models import Store
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser

NUMBER = "СТ-2026/001"


@pytest.fixture
def contract_in_sis(app):
    with app.app_context():
        return contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "tester").id


def store_row(page, code: str):
    return page.locator("tr", has=page.locator("td.col-code", has_text=code))


def test_operator_loads_stores_from_set_and_binds_them_to_a_contract(app, page, live_server, accounts, setcentrum,
                                                                      contract_in_sis, screenshot):
    log_in(page, live_server, accounts["operator"])

    page.click("a.nav-link:has-text('Магазины')")
    page.click("a.nav-link:has-text('Загрузка списка магазинов')")
    # The manual: "После нажатия на кнопку пользователю необходимо подтвердить действие".
    expect(page.locator("h4", has_text="Загрузка списка магазинов")).to_have_count(1)
    page.click("button:has-text('Загрузить')")
    expect(page.locator(".alert-success", has_text="Загружено 40 магазинов")).to_have_count(1)
    expect(store_row(page, "101").locator("td", has_text="Магазин №101")).to_have_count(1)
    screenshot("11-stores-loaded")

    for code in ("101", "102", "103"):
        store_row(page, code).locator("input.action-checkbox").check()
    page.click("a.dropdown-toggle:has-text('С отмеченными')")
    page.click("a.dropdown-item:has-text('Привязать магазины к договору')")

    assert page.locator("[data-testid=bind-total]").inner_text() == "3"
    page.select_option("select[name=contract_id]", label=f"№ {NUMBER} — Создан")
    screenshot("12-bind-stores")
    page.click("button:has-text('Выполнить')")

    expect(page.locator(".alert-success", has_text=f"Привязано к договору № {NUMBER}: 3 магазина")).to_have_count(1)
    for code in ("101", "102", "103"):
        assert store_row(page, code).locator("td.col-contract").inner_text().strip() == NUMBER
    assert store_row(page, "104").locator("td.col-contract").inner_text().strip() == ""
    with app.app_context():
        bound = db.session.scalars(select(Store.code).where(Store.contract_id == contract_in_sis)).all()
        assert sorted(bound) == ["101", "102", "103"]

    # A second load finds nothing new, as the manual says.
    page.click("a.nav-link:has-text('Загрузка списка магазинов')")
    page.click("button:has-text('Загрузить')")
    expect(page.locator(".alert-success", has_text="Загружено 0 магазинов")).to_have_count(1)


def test_operator_adds_a_store_by_hand(page, live_server, accounts, contract_in_sis):
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/stores/")
    page.click("a.nav-link:has-text('Добавить')")
    page.fill("input[name=code]", "12б")
    page.select_option("select[name=contract_id]", label=f"№ {NUMBER} — Создан")
    page.click("input[type=submit][value='Сохранить']")
    expect(page.get_by_text("Код магазина — только цифры, как номер магазина в SET.")).to_have_count(1)

    page.fill("input[name=code]", "205")
    page.fill("input[name=name]", "Гастроном у вокзала")
    page.click("input[type=submit][value='Сохранить']")
    row = store_row(page, "205")
    expect(row.locator("td.col-name", has_text="Гастроном у вокзала")).to_have_count(1)
    expect(row.locator("td.col-contract", has_text=NUMBER)).to_have_count(1)
    expect(row.locator("td.col-source", has_text="вручную")).to_have_count(1)


def test_operator_uploads_stores_from_a_file_after_a_preview(app, page, live_server, accounts, contract_in_sis,
                                                               screenshot):
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/stores/")
    page.click("a.nav-link:has-text('Загрузка из файла')")
    expect(page.locator("h4", has_text="Загрузка из файла")).to_have_count(1)
    table = "\ufeffКод магазина;Наименование;Адрес;Договор\r\n" \
            f"501;Гастроном у вокзала;г. Москва, ул. Ленина, д. 1;{NUMBER}\r\n" \
            "502;Без договора;;\r\n" \
            "501;Повтор;;\r\n" \
            "50а;Буква в коде;;\r\n"
    page.set_input_files("input[name=file]", files=[{"name": "магазины.csv", "mimeType": "text/csv",
                                                     "buffer": table.encode()}])
    page.click("button:has-text('Показать, что будет загружено')")

    expect(page.locator("[data-testid=upload-added]")).to_have_text("2 магазина")
    assert page.locator("[data-testid=upload-skipped]").inner_text() == "2 строки"
    skipped = page.locator("[data-testid=upload-skipped-rows]")
    expect(skipped.locator("tr", has_text="Код 501 повторяется в файле: он уже есть в строке 2.")).to_have_count(1)
    expect(skipped.locator("tr", has_text="Код магазина — только цифры")).to_have_count(1)
    with app.app_context():
        assert db.session.scalars(select(Store.code)).all() == []  # the preview saves nothing
    screenshot("12a-stores-upload-preview")

    page.click("button:has-text('Загрузить')")
    expect(page.locator(".alert-success", has_text="Загружено 2 магазина из файла «магазины.csv».")).to_have_count(1)
    expect(store_row(page, "501").locator("td.col-contract", has_text=NUMBER)).to_have_count(1)
    expect(store_row(page, "502").locator("td.col-source", has_text="из файла")).to_have_count(1)
    with app.app_context():
        assert sorted(db.session.scalars(select(Store.code))) == ["501", "502"]
