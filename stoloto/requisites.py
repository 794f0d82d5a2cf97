"""Validation of contract requisites: number, date of signing and agent INN."""
import re
from datetime import date, datetime

from stdnum import exceptions as stdnum_errors
from stdnum.ru import inn as stdnum_inn

DATE_FORMATS = ("%d.%m.%Y", "%Y-%m-%d")
NUMBER_MAX_LENGTH = 64
# The certificate request's CN is «SIS <номер>» (crypto.csr_subject), and a CN holds 64 bytes of UTF-8:
# the number gets 60 of them, 30 Cyrillic letters or 60 Latin letters and digits.
NUMBER_MAX_CERTIFICATE_BYTES = 60


def clean_text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def check_number(value: str | None) -> str | None:
    """Returns a Russian error message, or None when the trimmed number is acceptable."""
    if value is None:
        return None
    if len(value) > NUMBER_MAX_LENGTH:
        return f"Номер договора длиннее {NUMBER_MAX_LENGTH} символов."
    if len(value.encode()) > NUMBER_MAX_CERTIFICATE_BYTES:
        return (f"Номер договора слишком длинный для сертификата: не больше {NUMBER_MAX_CERTIFICATE_BYTES} "
                "байт (30 русских букв или 60 латинских букв и цифр).")
    if any(ord(ch) < 32 for ch in value):
        return "Номер договора содержит недопустимые символы."
    return None


def parse_date(value) -> date:
    """Accepts a date, "ДД.ММ.ГГГГ" or "ГГГГ-ММ-ДД"; raises ValueError with a Russian message."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("Введите существующую дату в формате ДД.ММ.ГГГГ, например 15.01.2026.")


def check_contract_date(value: date | None, today: date) -> str | None:
    """`today` is the date in SIS_TIMEZONE: the server's own clock may still be on yesterday."""
    if value is None:
        return None
    if value > today:
        return "Дата заключения договора не может быть в будущем."
    if value.year < 1990:
        return "Дата заключения договора слишком ранняя."
    return None


def check_inn(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"\d+", value):
        return "ИНН должен состоять только из цифр."
    if len(value) not in (10, 12):
        return "ИНН должен содержать 10 цифр (организация) или 12 цифр (индивидуальный предприниматель)."
    if set(value) == {"0"}:
        return "ИНН не может состоять из одних нулей."
    try:
        stdnum_inn.validate(value)
    except stdnum_errors.InvalidChecksum:
        return "Неверный ИНН: не сходится контрольная сумма."
    except stdnum_errors.ValidationError:
        return "Неверный ИНН."
    return None
