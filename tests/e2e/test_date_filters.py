"""Date and date-time filters as a Russian administrator types them: ДД.ММ.ГГГГ ЧЧ:ММ, a period joined by « — »."""
from datetime import date, datetime

import pytest

from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract
from tests.e2e.test_contract_registration import log_in

pytestmark = pytest.mark.browser

# Moscow times of 15 January 2026 (UTC+3) and the journal line written at each, kept as UTC.
EVENTS = {"до начала": datetime(2026, 1, 15, 6, 59, 59), "в начале": datetime(2026, 1, 15, 7, 0, 0),
          "в середине": datetime(2026, 1, 15, 8, 15, 0), "в последнюю минуту": datetime(2026, 1, 15, 9, 0, 59),
          "после": datetime(2026, 1, 15, 9, 1, 0)}


@pytest.fixture
def journal(app):
    with app.app_context():
        db.session.add_all(AuditEvent(created_at=moment, actor="tester", object_type="contract", action="Проверка",
                                      result="ok", details=text) for text, moment in EVENTS.items())
        db.session.commit()


@pytest.fixture
def dated_contracts(app):
    with app.app_context():
        db.session.add_all(Contract(number=f"СТ-{day.day:02d}", contract_date=day, agent_inn="7707083893")
                           for day in (date(2026, 1, 14), date(2026, 1, 15), date(2026, 1, 16)))
        db.session.commit()


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
