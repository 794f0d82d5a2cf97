"""Date and date-time filters as a Russian administrator types them: ДД.ММ.ГГГГ ЧЧ:ММ, a period joined by « — »."""
from datetime import datetime

import pytest

from tests.e2e.browser import log_in

pytestmark = pytest.mark.browser


def add_filter(page, column: str, operation: str):
    page.click("a.dropdown-toggle:has-text('Добавить фильтр')")
    page.locator(".dropdown-menu.show a", has_text=column).click()
    page.locator("select.filter-op").last.select_option(label=operation, force=True)
    return page.locator("input.filter-val:visible").last


def test_the_journal_is_filtered_by_a_period_typed_in_russian(page, live_server, accounts, journal):
    log_in(page, live_server, accounts["viewer"])
    page.click("a.nav-link:has-text('Журнал')")
    page.wait_for_load_state("load")
    field = add_filter(page, "Время", "между")
    field.click()
    field.press_sequentially("15.01.2026 10:00 — 15.01.2026 12:00")
    assert field.input_value() == "15.01.2026 10:00 — 15.01.2026 12:00"
    field.press("Enter")  # submits the filters, as in any text field of a form
    page.wait_for_url("**flt*")
    assert page.locator("input.filter-val").input_value() == "15.01.2026 10:00 — 15.01.2026 12:00"
    shown = page.locator("td.col-details").all_inner_texts()
    assert sorted(text.strip() for text in shown) == sorted(["в начале", "в середине", "в последнюю минуту"])


def test_the_journals_period_picked_in_the_calendar_reads_in_russian(page, live_server, accounts, journal):
    log_in(page, live_server, accounts["viewer"])
    page.goto(live_server + "/journal/")
    field = add_filter(page, "Время", "между")
    field.click()
    page.locator(".daterangepicker:visible button.applyBtn").click()
    assert " — " in field.input_value() and " to " not in field.input_value()
    picked = field.input_value()
    start, end = picked.split(" — ")
    assert datetime.strptime(start, "%d.%m.%Y %H:%M") <= datetime.strptime(end, "%d.%m.%Y %H:%M")
    field.press("Enter")
    page.wait_for_url("**flt*")
    assert page.locator("input.filter-val").input_value() == picked  # SIS took it: a refused filter is not shown


def test_a_typed_date_is_kept_and_filters_contracts(page, live_server, accounts, dated_contracts):
    log_in(page, live_server, accounts["viewer"])
    page.goto(live_server + "/contracts/")
    field = add_filter(page, "Дата заключения договора", "равно")
    field.click()
    field.press_sequentially("15.01.2026")
    assert field.input_value() == "15.01.2026"
    field.press("Enter")
    page.wait_for_url("**flt*")
    assert page.locator("td.col-number").all_inner_texts() == ["СТ-15"]
    assert page.locator("input.filter-val").input_value() == "15.01.2026"
