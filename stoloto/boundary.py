"""What the database can hold: text without NUL bytes or lone surrogates, integers within the column's range."""
import re

INT4_MAX = 2**31 - 1  # PostgreSQL's integer: every id column of SIS
INT8_MAX = 2**63 - 1  # PostgreSQL's bigint, and SQLite's INTEGER

# PostgreSQL refuses NUL in text; a lone surrogate cannot be encoded as UTF-8 at all.
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def has_forbidden_chars(text: str) -> bool:
    return _FORBIDDEN.search(text) is not None
