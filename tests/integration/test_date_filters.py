"""Date and date-time filters over HTTP, with the query strings the panel's filter form sends."""
import json
import re
from urllib.parse import urlencode

import pytest

from tests.conftest import EVENTS, flashed

PERIOD_HINT = ("Введите его как ДД.ММ.ГГГГ ЧЧ:ММ — ДД.ММ.ГГГГ ЧЧ:ММ, например «15.01.2026 10:00 — 15.01.2026 "
               "12:00».")


def filter_index(browser, url: str, column: str, operation: str) -> int:
    page = browser.get(url).get_data(as_text=True)
    groups = json.loads(re.search(r'id="filter-groups-data"[^>]*>(.*?)</', page, re.S).group(1))
    return next(option["index"] for option in groups[column] if option["operation"] == operation)


def journal_lines(browser, operation: str, value: str):
    index = filter_index(browser, "/journal/", "Время (МСК)", operation)
    response = browser.get("/journal/?" + urlencode({f"flt0_{index}": value}))
    assert response.status_code == 200
    shown = re.findall(r'<td class="col-details">\s*(.*?)\s*</td>', response.get_data(as_text=True))
    return sorted(line for line in shown if line in EVENTS), response  # logins write lines too


def notes(response) -> list[str]:
    return [text for text in flashed(response) if text.startswith("Фильтр")]  # not «Столото не настроен»


def contract_numbers(browser, operation: str, value: str):
    index = filter_index(browser, "/contracts/", "Дата заключения договора", operation)
    response = browser.get("/contracts/?" + urlencode({f"flt0_{index}": value}))
    assert response.status_code == 200
    return sorted(re.findall(r"СТ-\d\d", response.get_data(as_text=True))), response


def test_the_journal_period_typed_as_russians_write_includes_its_last_minute(web, journal):
    lines, _ = journal_lines(web("viewer"), "между", "15.01.2026 10:00 — 15.01.2026 12:00")
    assert lines == sorted(["в начале", "в середине", "в последнюю минуту"])


@pytest.mark.parametrize(("operation", "value", "expected"), [
    ("равно", "15.01.2026 12:00", ["в последнюю минуту"]),
    ("больше", "15.01.2026 12:00", ["после"]),
    ("меньше", "15.01.2026 10:00", ["до начала"]),
    ("не между", "15.01.2026 10:00 — 15.01.2026 12:00", ["до начала", "после"]),
    ("между", "15.01.2026 10:00:00 — 15.01.2026 11:59:59", ["в начале", "в середине"]),
    ("между", "15.01.2026 — 15.01.2026", sorted(EVENTS)),
    ("между", "2026-01-15 10:00:00 to 2026-01-15 12:00:00", ["в начале", "в середине"]),  # links made before
])
def test_every_journal_time_operation_reads_russian_moments(web, journal, operation, value, expected):
    lines, response = journal_lines(web("viewer"), operation, value)
    assert lines == sorted(expected)
    assert notes(response) == []


@pytest.mark.parametrize(("value", "reason"), [
    ("junk", "«junk» — не период. " + PERIOD_HINT),
    ("15.01.2026 10:00 to", "«15.01.2026 10:00 to» — не период. " + PERIOD_HINT),
    (str(2 ** 63), f"«{2 ** 63}» — не период. " + PERIOD_HINT),
    ("31.02.2026 10:00 — 01.03.2026 10:00", "«31.02.2026 10:00 — 01.03.2026 10:00» — не период. " + PERIOD_HINT),
    ("01.01.0001 00:00 — 31.12.9999 23:59", "«01.01.0001 00:00 — 31.12.9999 23:59» — не период. " + PERIOD_HINT),
    ("15.01.2026 12:00 — 15.01.2026 10:00", "начало периода позже его конца. " + PERIOD_HINT),
    ("9" * 200, "«" + "9" * 40 + "…» — не период. " + PERIOD_HINT),
])
def test_a_bad_journal_period_is_dropped_with_a_russian_note(web, journal, value, reason):
    lines, response = journal_lines(web("viewer"), "между", value)
    assert lines == sorted(EVENTS)
    assert notes(response) == [f"Фильтр «Время (МСК)» не применён: {reason}"]


def test_a_nul_in_a_date_filter_is_refused_before_the_list(web, journal):
    browser = web("viewer")
    index = filter_index(browser, "/journal/", "Время (МСК)", "между")
    response = browser.get(f"/journal/?flt0_{index}=15.01.2026%00")
    assert response.status_code == 400


@pytest.mark.parametrize(("operation", "value", "expected"), [
    ("равно", "15.01.2026", ["СТ-15"]),
    ("между", "14.01.2026 — 15.01.2026", ["СТ-14", "СТ-15"]),
    ("больше", "15.01.2026", ["СТ-16"]),
    ("равно", "2026-01-15", ["СТ-15"]),  # links made before
])
def test_contracts_are_filtered_by_a_date_typed_as_russians_write(web, dated_contracts, operation, value, expected):
    numbers, response = contract_numbers(web("viewer"), operation, value)
    assert numbers == expected
    assert notes(response) == []


def test_a_bad_date_gives_a_russian_note(web, dated_contracts):
    numbers, response = contract_numbers(web("viewer"), "равно", "2026.01.15")
    assert numbers == ["СТ-14", "СТ-15", "СТ-16"]
    assert notes(response) == ["Фильтр «Дата заключения договора» не применён: «2026.01.15» — не дата. Введите её "
                                 "как ДД.ММ.ГГГГ, например «15.01.2026»."]
