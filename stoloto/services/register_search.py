"""Which cash registers a search text names: terminal number, store code, cash number, serial or «магазин/касса».

Every key is compared exactly, each by an index (stores.code and terminals.number are unique; a register's
store_id leads uq_cash_registers_store_cash; terminal_id is unique; cash_number and serial_number have their
own), so PostgreSQL answers with a BitmapOr of index scans however many registers there are; a `LIKE '%…%'`
would read every row. A key the text cannot be (too long for its column, digits past int4) is not compared
at all: the database never sees a value its column cannot hold.
"""
from sqlalchemy import ColumnElement, and_, false, or_, select

from ..boundary import INT4_MAX, parse_int
from ..models import CashRegister, Store, Terminal


def _fits(text: str, column) -> bool:
    return 0 < len(text) <= column.type.length


def _in_store(code: str) -> ColumnElement[bool]:
    # A scalar subquery, not a join: the register's own index on store_id does the rest.
    return CashRegister.store_id == select(Store.id).where(Store.code == code).scalar_subquery()


def _cash_number(text: str) -> int | None:
    return parse_int(text, 1, INT4_MAX)


def matching(text: str) -> ColumnElement[bool]:
    """The condition on CashRegister for a search box's text (stripped; the guard already refused NUL bytes)."""
    text = text.strip()
    keys = []
    store_code, slash, cash = (part.strip() for part in text.partition("/"))
    if slash and _fits(store_code, Store.code) and (number := _cash_number(cash)) is not None:
        keys.append(and_(_in_store(store_code), CashRegister.cash_number == number))
    if _fits(text, Terminal.number):
        keys.append(CashRegister.terminal_id == select(Terminal.id).where(Terminal.number == text).scalar_subquery())
    if _fits(text, Store.code):
        keys.append(_in_store(text))
    if (number := _cash_number(text)) is not None:
        keys.append(CashRegister.cash_number == number)
    if _fits(text, CashRegister.serial_number):  # a serial may hold a slash too
        keys.append(CashRegister.serial_number == text)
    return or_(*keys) if keys else false()
