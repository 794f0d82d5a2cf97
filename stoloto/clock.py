"""Time as users see it: the SIS_TIMEZONE zone, its label and today's date there; the database keeps UTC."""
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app

from .errors import SisError

DEFAULT_ZONE = "Europe/Moscow"
# The zone Russian users call by name; any other shows its abbreviation or its offset from UTC.
NAMED_ZONES = {"Europe/Moscow": "МСК"}


@lru_cache(maxsize=8)
def load_zone(name: str) -> ZoneInfo:
    """The zone called `name`; an unknown name stops SIS at start-up with a Russian message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SisError("CONFIG_INVALID", f"Переменная окружения SIS_TIMEZONE: неизвестный часовой пояс «{name}».",
                       "Укажите часовой пояс из базы IANA, например Europe/Moscow, и запустите СИ снова.") from None


def zone() -> ZoneInfo:
    return load_zone(current_app.config["SIS_TIMEZONE"])


def local(moment: datetime) -> datetime:
    """A moment in the zone; a naive moment is UTC, as the database keeps it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone())


def utc(moment: datetime) -> datetime:
    """A moment typed in the zone, as the database keeps it (naive UTC)."""
    return moment.replace(tzinfo=zone()).astimezone(UTC).replace(tzinfo=None)


def today() -> date:
    """Today's date in the zone, whatever the server's own clock zone."""
    return datetime.now(zone()).date()


def label() -> str:
    """«МСК», else the zone's abbreviation (CET), else its offset (UTC+5); for column headers."""
    name = current_app.config["SIS_TIMEZONE"]
    if name in NAMED_ZONES:
        return NAMED_ZONES[name]
    now = datetime.now(zone())
    abbreviation = now.tzname() or ""
    if abbreviation.isalpha():
        return abbreviation
    minutes = int(now.utcoffset().total_seconds()) // 60
    sign = "+" if minutes >= 0 else "−"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")
