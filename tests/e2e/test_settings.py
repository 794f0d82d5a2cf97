"""«Настройки» in a real browser: a field's own error is visible, the token's included."""
import pytest

from tests.e2e.test_contract_registration import log_in

pytestmark = pytest.mark.browser


def test_the_token_field_shows_its_error_text(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    page.goto(live_server + "/settings/")
    page.fill('input[name="cash_api.token"]', "short")
    page.click("button:has-text('Сохранить')")
    field = page.locator('input[name="cash_api.token"]')
    assert "is-invalid" in field.get_attribute("class")
    assert page.get_by_text("Токен: не короче 16 символов, без пробелов.").is_visible()
