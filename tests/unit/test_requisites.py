"""Contract requisites: the INN, the number and the date, as the manual requires them."""
from datetime import date

import pytest

from stoloto import requisites

# python-stdnum's own examples from stdnum.ru.inn
STDNUM_VALID = ["123456789047", "1234567894"]
STDNUM_INVALID = ["123456789037", "1234567895"]


@pytest.mark.parametrize("inn", STDNUM_VALID + ["7707083893", "500100732259"])
def test_valid_inn_is_accepted(inn):
    assert requisites.check_inn(inn) is None


@pytest.mark.parametrize("inn", STDNUM_INVALID)
def test_inn_with_wrong_checksum_is_rejected(inn):
    assert "контрольная сумма" in requisites.check_inn(inn)


@pytest.mark.parametrize("inn", ["0000000000", "000000000000"])
def test_all_zero_inn_is_rejected(inn):
    assert "нулей" in requisites.check_inn(inn)


@pytest.mark.parametrize("inn", ["77O7083893", "abcdefghij", "7707-08389"])
def test_inn_with_letters_is_rejected(inn):
    assert "только из цифр" in requisites.check_inn(inn)


@pytest.mark.parametrize("inn", ["77070838931", "123", "1234567890123"])
def test_inn_of_wrong_length_is_rejected(inn):
    assert "10 цифр" in requisites.check_inn(inn)


@pytest.mark.parametrize("text, expected", [
    ("15.01.2026", date(2026, 1, 15)),
    ("2026-01-15", date(2026, 1, 15)),
    (" 01.02.2025 ", date(2025, 2, 1)),
])
def test_dates_are_typed_russian_or_iso(text, expected):
    assert requisites.parse_date(text) == expected


@pytest.mark.parametrize("text", ["31.02.2026", "15/01/2026", "2026-13-01", "завтра", "15.01.26"])
def test_impossible_dates_are_rejected(text):
    with pytest.raises(ValueError, match="ДД.ММ.ГГГГ"):
        requisites.parse_date(text)


def test_date_in_the_future_is_rejected():
    assert "в будущем" in requisites.check_contract_date(date(2026, 12, 1), today=date(2026, 11, 27))
    assert requisites.check_contract_date(date(2026, 11, 27), today=date(2026, 11, 27)) is None


def test_number_is_trimmed_and_limited():
    assert requisites.clean_text("  СТ-2026/001 \n") == "СТ-2026/001"
    assert requisites.clean_text("   ") is None
    assert requisites.check_number("x" * 65) is not None
    assert requisites.check_number("№\x01") is not None
