"""«Обзор»'s figures over time: registrations per day by outcome and Stoloto calls per hour, from stoloto/stats.py's
counters (one small query each, however many registers)."""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from .. import clock, stats
from ..extensions import db
from ..models import DailyRegistrations, HourlyStolotoCalls, utcnow


@dataclass(frozen=True)
class DayCounts:
    day: date
    counts: dict[str, int]  # stats.OUTCOMES → registers


def registrations_by_day(days: int = 30) -> list[DayCounts]:
    """The last `days` days (in SIS_TIMEZONE), oldest first, each with its registers per outcome, all contracts."""
    today = clock.today()
    first = today - timedelta(days=days - 1)
    rows = db.session.execute(
        select(DailyRegistrations.day, DailyRegistrations.outcome, func.sum(DailyRegistrations.count))
        .where(DailyRegistrations.day >= first, DailyRegistrations.day <= today)
        .group_by(DailyRegistrations.day, DailyRegistrations.outcome)).all()
    found = {(day, outcome): int(count) for day, outcome, count in rows}
    result = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        result.append(DayCounts(day, {outcome: found.get((day, outcome), 0) for outcome in stats.OUTCOMES}))
    return result


@dataclass(frozen=True)
class HourCounts:
    hour: datetime  # its start, naive UTC as stored
    calls: int
    refusals: int
    failures: int
    by_endpoint: dict[str, int]  # endpoint → calls

    @property
    def succeeded(self) -> int:
        return self.calls - self.refusals - self.failures


def calls_by_hour(hours: int = 24) -> list[HourCounts]:
    """The last `hours` hours, the current one included, oldest first."""
    current = utcnow().replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    rows = db.session.execute(
        select(HourlyStolotoCalls.hour, HourlyStolotoCalls.endpoint, HourlyStolotoCalls.calls,
               HourlyStolotoCalls.refusals, HourlyStolotoCalls.failures)
        .where(HourlyStolotoCalls.hour >= first, HourlyStolotoCalls.hour <= current)).all()
    found: dict[datetime, list] = {}
    for hour, endpoint, calls, refusals, failures in rows:
        figures = found.setdefault(hour, [0, 0, 0, {}])
        figures[0] += calls
        figures[1] += refusals
        figures[2] += failures
        figures[3][endpoint] = figures[3].get(endpoint, 0) + calls  # its slots added up
    result = []
    for offset in range(hours):
        hour = first + timedelta(hours=offset)
        calls, refusals, failures, by_endpoint = found.get(hour, (0, 0, 0, {}))
        result.append(HourCounts(hour, calls, refusals, failures, by_endpoint))
    return result
