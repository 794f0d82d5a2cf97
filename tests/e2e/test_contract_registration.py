"""The manual's "Регистрация договора", steps 1–7, clicked through in a real browser."""
import io

import pytest
from docx import Document

from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser


def test_operator_registers_and_prepares_a_contract(page, live_server, accounts, screenshot):
    log_in(page, live_server, accounts["operator"])
    screenshot("01-overview")

    page.click("a.dropdown-toggle:has-text('Администрирование')")
    page.click("a.dropdown-item:has-text('Договоры')")
    page.click("a.nav-link:has-text('Добавить')")
    page.fill("input[name=number]", "СТ-2026/001")
    page.fill("input[name=contract_date]", "15.01.2026")
    page.fill("input[name=agent_inn]", "7707083893")
    page.fill("input[name=agent_name]", "ООО «Ромашка»")
    screenshot("02-add-contract")
    page.click("input[type=submit][value='Сохранить']")

    row = page.locator("tr", has_text="СТ-2026/001")
    assert row.locator("td", has_text="Создан").count() == 1
    assert row.locator("td", has_text="15.01.2026").count() == 1
    screenshot("03-created")

    row.locator("button:has-text('Активировать договор')").click()
    message = page.locator(".alert-success", has_text="Ожидание активации")
    assert message.count() == 1
    row = page.locator("tr", has_text="СТ-2026/001")
    assert row.locator("td", has_text="Ожидание активации").count() == 1
    screenshot("04-awaiting-activation")

    with page.expect_download() as from_message:
        message.locator("a:has-text('Приложение №5')").click()
    assert from_message.value.suggested_filename == "Приложение_5_к_договору_СТ-2026_001.docx"

    with page.expect_download() as from_button:
        row.locator("a:has-text('Приложение к договору')").click()
    document = Document(io.BytesIO(open(from_button.value.path(), "rb").read()))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Приложение №5\nк договору № СТ-2026/001 от " in text
    assert "BEGIN CERTIFICATE REQUEST" in text


def test_partially_filled_contract_is_a_draft_and_cannot_be_activated(page, live_server, accounts):
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/contracts/new/")
    page.fill("input[name=number]", "ЧЕРН-1")
    page.click("input[type=submit][value='Сохранить']")
    assert page.locator(".alert-warning", has_text="черновик").count() == 1
    row = page.locator("tr", has_text="ЧЕРН-1")
    assert row.locator("td", has_text="Черновик").count() == 1
    row.locator("button:has-text('Активировать договор')").click()
    assert page.locator(".alert-danger", has_text="договор не заполнен").count() == 1


def test_wrong_inn_is_explained_in_russian(page, live_server, accounts):
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/contracts/new/")
    page.fill("input[name=number]", "ИНН-1")
    page.fill("input[name=contract_date]", "15.01.2026")
    page.fill("input[name=agent_inn]", "7707083894")
    page.click("input[type=submit][value='Сохранить']")
    assert page.get_by_text("Неверный ИНН: не сходится контрольная сумма.").count() == 1
    page.goto(live_server + "/contracts/")
    assert page.locator("tr", has_text="ИНН-1").count() == 0
