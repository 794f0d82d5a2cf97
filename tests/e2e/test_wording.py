"""Russian to the last word, in a real browser: the page-size menu, the date picker, the journal's and the
overview's object links, roles and fields by their Russian names, quiet setting keys, the login page's demo banner
and the favicon, and the «?» of each page."""
import pytest
from sqlalchemy import select

from stoloto import errors
from stoloto.extensions import db
from stoloto.models import User
from stoloto.services import contracts, stores, users
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser
NUMBER = "СТ-2026/001"


@pytest.fixture
def contract_with_an_error(app):
    """A contract prepared for activation and then asked again: the second time is an error in the journal."""
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "tester")
        stores.create_store(StoreInput(code="900", contract_id=contract.id), "tester")
        contracts.prepare_activation(contract.id, "tester")
        with pytest.raises(errors.SisError):
            contracts.prepare_activation(contract.id, "tester")
        return contract.id


def test_the_page_size_menu_reads_rows_per_page(page, live_server, accounts, contract_with_an_error):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Магазины')")
    page.wait_for_load_state("load")  # the menu opens by Bootstrap's script
    toggle = page.locator("a.dropdown-toggle", has_text="на странице")
    assert toggle.inner_text().strip() == "50 на странице"
    toggle.click()
    options = page.locator(".dropdown-menu.show a.dropdown-item")
    options.first.wait_for()
    assert [text.strip() for text in options.all_inner_texts()] == ["20 на странице", "50 на странице",
                                                                    "100 на странице"]
    options.first.click()
    assert page.locator("a.dropdown-toggle", has_text="на странице").inner_text().strip() == "20 на странице"


def test_the_journal_links_a_store_to_its_page(page, live_server, accounts, contract_with_an_error, screenshot):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Журнал')")
    screenshot("13-journal")
    row = page.locator("tr", has=page.locator("td", has_text="Добавление магазина"))
    row.locator("a", has_text="магазин 900").click()
    assert "/stores/details/" in page.url
    assert page.get_by_role("cell", name="900", exact=True).count() == 1


def test_the_overview_links_a_recent_error_to_its_contract(page, live_server, accounts, contract_with_an_error):
    log_in(page, live_server, accounts["viewer"])
    errors_table = page.locator("[data-testid=recent-errors]")
    errors_table.locator("[data-testid=error-object] a", has_text=f"договор № {NUMBER}").click()
    assert page.locator("td", has_text="7707083893").count() == 1
    assert f"id={contract_with_an_error}" in page.url


def test_the_login_page_shows_the_demo_banner_and_the_favicon(app, page, live_server):
    app.config.update(SIS_STOLOTO_STAND_URL="https://127.0.0.1:5443")
    try:
        page.goto(live_server + "/auth/login")
        assert page.locator("[data-testid=stand-banner]").inner_text().startswith(
            "Демонстрационный режим: СИ Столото работает с тестовым стендом Столото")
    finally:
        app.config.update(SIS_STOLOTO_STAND_URL="")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(live_server + icon).ok
    favicon = page.request.get(live_server + "/favicon.ico")
    assert favicon.ok and favicon.headers["content-type"].startswith("image/svg+xml")


def test_the_journals_time_filter_picks_a_moment_in_russian(page, live_server, accounts):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Журнал')")
    page.wait_for_load_state("load")
    page.click("a.dropdown-toggle:has-text('Добавить фильтр')")
    page.locator(".dropdown-menu.show a", has_text="Время").click()
    page.locator("input.filter-val:visible").click()
    picker = page.locator(".daterangepicker:visible")
    assert picker.locator("thead tr").last.locator("th").all_inner_texts() == ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб",
                                                                               "Вс"]
    assert picker.locator("select.monthselect").first.locator("option").all_inner_texts() == [
        "янв", "фев", "мар", "апр", "май", "июн", "июл", "авг", "сен", "окт", "ноя", "дек"]
    assert [picker.locator("button.applyBtn").inner_text(), picker.locator("button.cancelBtn").inner_text()] == [
        "Применить", "Отмена"]


def test_the_journal_names_roles_and_fields_as_the_panel_does(app, page, live_server, accounts):
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "tester")
        contracts.update_contract(contract, ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                          agent_inn="7707083893", agent_name="ООО «Ромашка»"),
                                  "tester")
        viewer = db.session.scalar(select(User).where(User.login == accounts["viewer"]))
        users.update_user(viewer.id, "operator", True, "", "tester")
    log_in(page, live_server, accounts["admin"])
    page.click("a.nav-link:has-text('Журнал')")
    details = page.locator("td.col-details")
    assert details.filter(has_text="Изменены поля: «Наименование агента»").count() == 1
    assert details.filter(has_text=f"{accounts['viewer']}: роль «Оператор»").count() == 1
    assert page.locator("td.col-details", has_text="agent_name").count() == 0


def test_settings_name_the_environment_variable_quietly(page, live_server, accounts):
    log_in(page, live_server, accounts["admin"])
    page.click("a.nav-link:has-text('Настройки')")
    assert page.locator("code").count() == 0
    hint = page.locator("[data-testid='environment-stoloto.url']")
    assert hint.inner_text() == "Переменная окружения STOLOTO_URL задаёт первое значение."
    assert hint.evaluate("hint => hint.classList.contains('text-muted')")
    assert "stoloto.url" not in page.locator("body").inner_text()


def test_the_help_mark_leads_to_the_pages_section_of_the_guide(page, live_server, accounts):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Кассы')")
    page.click("[data-testid=help-link]")
    assert page.url.endswith("/help/#%D0%BA%D0%B0%D1%81%D1%81%D1%8B")  # #кассы
    assert page.locator("h2#кассы").inner_text() == "Кассы"
    assert page.locator("[data-testid=help-demo]").inner_text() == "выключен"
    assert "«Настройки» → «Токен API регистрации касс» → «Показать»" in \
        page.locator("[data-testid=help-configuration]").inner_text()
    assert page.locator("table td", has_text="«Нет свободных терминалов»").count() == 1
