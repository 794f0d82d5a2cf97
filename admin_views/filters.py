"""Date and date-time filters as a Russian administrator types them: ДД.ММ.ГГГГ ЧЧ:ММ, a period joined by « — ».

Flask-Admin's own filters read only `2026-01-15 10:00:00 to 2026-01-15 12:00:00`; links of that form still work.
A typed moment covers what it names — a day, a minute or a second — so «10:00 — 12:00» includes 12:00:59 and
«равно 15.01.2026» the whole day. Typed date-times are SIS_TIMEZONE time, compared with UTC in the database.
static/daterangepicker-ru.js makes the picker write the same form.
"""
import re
from datetime import datetime, timedelta
from typing import NamedTuple

from flask_admin.contrib.sqla import filters
from sqlalchemy import and_, not_

from stoloto import clock

# The picker writes « — »; people also type a dash or a hyphen between spaces or «по»; old links carry « to ».
PERIOD = re.compile(r"\s*[—–]\s*|\s+(?:-|по|to)\s+")
DATES = ("%d.%m.%Y", "%Y-%m-%d")
TIMES = {" %H:%M:%S": timedelta(seconds=1), " %H:%M": timedelta(minutes=1), "": timedelta(days=1)}
SHOWN_LENGTH = 40  # of a refused value in the note

# What each kind reads, for the note about a value it could not: (a name, the pattern, an example).
EXPECTED = {(False, False): ("не дата", "Введите её как ДД.ММ.ГГГГ", "15.01.2026"),
            (False, True): ("не период", "Введите его как ДД.ММ.ГГГГ — ДД.ММ.ГГГГ", "15.01.2026 — 31.01.2026"),
            (True, False): ("не дата и время", "Введите их как ДД.ММ.ГГГГ ЧЧ:ММ", "15.01.2026 10:00"),
            (True, True): ("не период", "Введите его как ДД.ММ.ГГГГ ЧЧ:ММ — ДД.ММ.ГГГГ ЧЧ:ММ",
                           "15.01.2026 10:00 — 15.01.2026 12:00")}


class Span(NamedTuple):
    """What a typed moment covers: from `start` up to, not including, `end` (as the database keeps them)."""

    start: object
    end: object


def read_span(text: str, with_time: bool) -> Span:
    """One typed date (or date and time); ValueError if it is none."""
    for date_format in DATES:
        for time_format, length in TIMES.items() if with_time else [("", timedelta(days=1))]:
            try:
                start = datetime.strptime(text.strip(), date_format + time_format)
            except ValueError:
                continue
            try:
                if with_time:
                    return Span(clock.utc(start), clock.utc(start + length))
                return Span(start.date(), start.date() + length)
            except OverflowError:  # the first or last day datetime knows, shifted by the zone or the length
                raise ValueError(text) from None
    raise ValueError(text)


class _Typed:
    """Shared by the date and date-time filters below: reads the value, says what is wrong with it."""

    with_time = False
    period = False

    def read(self, value: str) -> list[Span]:
        parts = PERIOD.split(value.strip()) if self.period else [value]
        if len(parts) != (2 if self.period else 1):
            raise ValueError(value)
        return [read_span(part, self.with_time) for part in parts]

    def problem(self, value: str) -> str | None:
        """Why the value cannot be used, in Russian; None if it can."""
        what, pattern, example = EXPECTED[self.with_time, self.period]
        try:
            spans = self.read(value)
        except ValueError:
            shown = value if len(value) <= SHOWN_LENGTH else value[:SHOWN_LENGTH] + "…"
            return f"«{shown}» — {what}. {pattern}, например «{example}»."
        if spans[0].start > spans[-1].start:
            return f"начало периода позже его конца. {pattern}, например «{example}»."
        return None

    def validate(self, value: str) -> bool:
        return self.problem(value) is None

    def clean(self, value: str) -> list[Span]:
        return self.read(value)

    def apply(self, query, value, alias=None):
        return query.filter(self.condition(self.get_column(alias), value[0], value[-1]))


def _within(column, first: Span, last: Span):
    return and_(column >= first.start, column < last.end)


def _outside(column, first: Span, last: Span):
    return not_(_within(column, first, last))


# Flask-Admin's operations (their names and pickers are kept) and what each means for a typed span.
CONDITIONS = {"Equal": _within, "NotEqual": _outside, "Greater": lambda column, first, last: column >= last.end,
              "Smaller": lambda column, first, last: column < first.start, "Between": _within,
              "NotBetween": _outside}


def _filters(kind: str, with_time: bool) -> tuple:
    return tuple(type(f"{kind}{operation}Filter", (_Typed, getattr(filters, f"{kind}{operation}Filter")),
                      {"with_time": with_time, "period": "Between" in operation,
                       "condition": staticmethod(condition)})
                 for operation, condition in CONDITIONS.items())


class RussianDateFilters(filters.FilterConverter):
    """Flask-Admin's filters, with dates and date-times read as above."""

    date_filters = (*_filters("Date", with_time=False), filters.FilterEmpty)
    datetime_filters = (*_filters("DateTime", with_time=True), filters.FilterEmpty)
