"""What the database can hold: text without NUL bytes or lone surrogates, integers within a column's range.

Forms, the API, query strings and imported data check their input here and refuse the rest with a
message; PostgreSQL would refuse NUL in text and integers beyond int4/int8 with an error, and neither
database can store a lone surrogate (it has no UTF-8 encoding).
"""
import re

INT4_MIN, INT4_MAX = -2 ** 31, 2 ** 31 - 1
INT8_MIN, INT8_MAX = -2 ** 63, 2 ** 63 - 1
_INTEGER = re.compile(r"-?[0-9]+")
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # what no database can hold
# Longer digit strings cannot fit an int8, and Python refuses to convert beyond 4300 digits.
_MAX_DIGITS = 20

NUL_MESSAGE = "содержит нулевой байт (символ с кодом 0)"
SURROGATE_MESSAGE = "содержит недопустимый символ (непарный суррогат Юникода)"


def has_nul(text: str) -> bool:
    return "\x00" in text


def has_lone_surrogate(text: str) -> bool:
    """JSON's "\\ud800" decodes to a surrogate code point, which has no UTF-8 form: no database can store it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


def text_problem(text: str) -> str | None:
    """Why the database cannot hold this text (a Russian predicate, e.g. "содержит нулевой байт …"), else None."""
    if UNSTORABLE.search(text) is None:  # one pass in C: the SET import checks 350,000 texts
        return None
    if has_nul(text):
        return NUL_MESSAGE
    if has_lone_surrogate(text):
        return SURROGATE_MESSAGE
    return None


def is_storable(text: str) -> bool:
    return text_problem(text) is None


def storable(text: str, limit: int) -> str:
    """Text from outside that SIS keeps and shows as it came (Stoloto's error code and message): what no
    database can hold becomes U+FFFD, and it is cut to the column's length."""
    return UNSTORABLE.sub("\ufffd", text)[:limit]


def in_range(number: int, low: int = INT4_MIN, high: int = INT4_MAX) -> bool:
    """Whether an int fits the column (INTEGER by default; pass INT8_MIN/INT8_MAX for BIGINT)."""
    return low <= number <= high


def parse_int(text: str, low: int = INT4_MIN, high: int = INT4_MAX) -> int | None:
    """A decimal integer typed as ASCII digits (an optional leading minus) within [low, high], else None.

    Never raises: a 5,000-digit string, "１２" (full-width digits), " 12" or "1e3" is simply None.
    """
    if len(text) > _MAX_DIGITS or not _INTEGER.fullmatch(text):
        return None
    number = int(text)
    return number if low <= number <= high else None
