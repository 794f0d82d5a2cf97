"""«Настройки» in a real browser: a field's own error is visible, the token's included; «Уведомления» and its
test button, whose result appears on the page without a reload."""
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.browser import UPDATE_TIMEOUT_MS, Console, log_in, mark_document, still_the_page

pytestmark = pytest.mark.browser


def test_the_token_field_shows_its_error_text(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    page.goto(live_server + "/settings/")
    page.fill('input[name="cash_api.token"]', "short")
    page.click("button:has-text('Сохранить')")
    field = page.locator('input[name="cash_api.token"]')
    assert "is-invalid" in field.get_attribute("class")
    assert page.get_by_text("Токен: не короче 16 символов, без пробелов.").is_visible()


def test_the_alerts_section_saves_a_mail_server_and_sends_a_test_notice(page, live_server, accounts, smtp_server,
                                                                          webhook, screenshot):
    console = Console(page)
    log_in(page, live_server, accounts["admin"])
    page.goto(live_server + "/settings/")
    expect(page.get_by_role("heading", name="Уведомления", exact=True)).to_be_visible()
    page.get_by_label("Почтовый сервер (SMTP)").fill(smtp_server.host)
    page.get_by_label("Порт SMTP").fill(str(smtp_server.port))
    page.get_by_label("Шифрование SMTP").select_option("none")
    page.get_by_label("Пароль SMTP").fill("mail-secret-1")
    page.get_by_label("Отправитель писем").fill("sis@example.ru")
    page.get_by_label("Получатели писем").fill("ops@example.ru")
    page.get_by_label("Адрес webhook").fill(webhook.url)
    page.click("button:has-text('Сохранить')")
    expect(page.get_by_text("Настройки сохранены", exact=False)).to_be_visible()
    password = page.get_by_label("Пароль SMTP")
    expect(password).to_have_value("")  # never sent back
    expect(password).to_have_attribute("placeholder", "Задан — оставьте пустым, чтобы не менять")
    webhook.release.clear()  # the webhook holds its answer: the page shows the sending under way
    try:
        page.click("button:has-text('Отправить тестовое уведомление')")
        expect(page.get_by_text("Тестовое уведомление отправляется: e-mail (ops@example.ru), webhook (127.0.0.1). "
                                "Результат появится ниже.")).to_be_visible()
        expect(page.get_by_test_id("test-alert")).to_contain_text("Тестовое уведомление отправляется")
        mark_document(page)
    finally:
        webhook.release.set()
    result = page.get_by_test_id("test-alert")
    expect(result).to_contain_text("Тестовое уведомление отправлено: e-mail (ops@example.ru): принято почтовым "
                                   "сервером; webhook (127.0.0.1): принято, ответ 200.", timeout=UPDATE_TIMEOUT_MS)
    expect(page.get_by_test_id("delivery-email")).to_contain_text("доставлено")
    expect(page.get_by_test_id("delivery-webhook")).to_contain_text("принято, ответ 200")
    assert still_the_page(page)  # no reload: progress.js brought the result
    assert console.problems == [], "\n".join(console.problems)
    screenshot("settings-alerts")
    assert smtp_server.subjects() == ["СИ Столото: тестовое уведомление"] and webhook.states() == ["test"]


def test_a_bad_port_shows_its_own_error_in_the_alerts_section(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    page.goto(live_server + "/settings/")
    page.get_by_label("Порт SMTP").fill("70000")
    page.click("button:has-text('Сохранить')")
    expect(page.get_by_label("Порт SMTP")).to_have_class(re.compile("is-invalid"))
    expect(page.get_by_text("Допустимые значения: от 1 до 65535.")).to_be_visible()
