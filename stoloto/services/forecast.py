"""How long each contract's free terminal numbers last: its pool now, its use per day over the last week, its history.

Read from the counters of stoloto/stats.py (numbers issued and used per day) and the free numbers counted
now (the partial index ix_terminals_free), never from the registers: three queries whatever their number.
The pool's history is told backwards from now, so the present is exact even where the counters started
late (migration 0018 reconstructs the days before it from the rows it found):
free at the end of day d−1 = free at the end of day d − issued on d + used on d.
"""
import math
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select

from .. import clock
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import Contract, DailyTerminals, Terminal
from ..plural import plural

WINDOW_DAYS = 7  # the use per day is the numbers used over this many days, today included, divided by it
# Contracts whose pool is forecast: the ones that get numbers (a contract gets them once activated).
POOL_STATUSES = (ContractStatus.AWAITING_TERMINALS.value, ContractStatus.ACTIVE.value)


@dataclass(frozen=True)
class Forecast:
    """One contract's pool: what «Обзор» shows and what an alert «номера закончатся через N дней» asks."""
    contract_id: int
    contract_number: str
    free: int                # free numbers now
    used: int                # numbers used (claimed by registers) over the last WINDOW_DAYS days, today included
    days_left: int | None    # whole days the free numbers last at that rate; None when nothing was used

    @property
    def per_day(self) -> float:
        return self.used / WINDOW_DAYS

    @property
    def text(self) -> str:
        """«Хватит примерно на 12 дней.», «Расхода за 7 дней не было.» or «Номеров нет.»"""
        if self.free == 0:
            return "Номеров нет."
        if self.days_left is None:
            return f"Расхода за {WINDOW_DAYS} дней не было."
        if self.days_left == 0:
            return "Хватит меньше чем на день."
        return f"Хватит примерно на {plural(self.days_left, 'день', 'дня', 'дней')}."


@dataclass(frozen=True)
class PoolHistory:
    forecast: Forecast
    free_by_day: list[tuple[date, int]]  # free numbers at the end of each day, oldest first; today's is now


def days_left(free: int, used: int) -> int | None:
    """Whole days `free` numbers last when `used` went in WINDOW_DAYS days; None when none went."""
    if free == 0:
        return 0
    if used == 0:
        return None
    return math.floor(free * WINDOW_DAYS / used)


def pool_forecasts() -> dict[int, Forecast]:
    """Every contract that gets numbers (awaiting them or «Активный»), by id: its pool now and the forecast."""
    return {pool.forecast.contract_id: pool.forecast for pool in pool_histories(WINDOW_DAYS)}


def pool_histories(days: int = 30) -> list[PoolHistory]:
    """Each such contract's free numbers at the end of each of the last `days` days (today: now), by number."""
    today = clock.today()
    first = today - timedelta(days=max(days, WINDOW_DAYS) - 1)
    contracts = db.session.execute(select(Contract.id, Contract.number).where(Contract.status.in_(POOL_STATUSES))
                                   .order_by(Contract.number)).all()
    if not contracts:
        return []
    free_now = dict(db.session.execute(select(Terminal.contract_id, func.count()).where(Terminal.status == "free")
                                       .group_by(Terminal.contract_id)).all())
    counted: dict[int, dict[date, tuple[int, int]]] = {}
    for contract_id, day, issued, used in db.session.execute(
            select(DailyTerminals.contract_id, DailyTerminals.day, func.sum(DailyTerminals.issued),
                   func.sum(DailyTerminals.used))
            .where(DailyTerminals.day >= first, DailyTerminals.day <= today)
            .group_by(DailyTerminals.contract_id, DailyTerminals.day)):
        counted.setdefault(contract_id, {})[day] = (int(issued), int(used))
    window = today - timedelta(days=WINDOW_DAYS - 1)
    histories = []
    for contract_id, number in contracts:
        by_day = counted.get(contract_id, {})
        free = free_now.get(contract_id, 0)
        used = sum(u for day, (_, u) in by_day.items() if day >= window)
        history, level = [], free
        for offset in range(days):
            day = today - timedelta(days=offset)
            history.append((day, max(level, 0)))  # the counters rebuilt by migration 0018 may undercount the past
            issued_then, used_then = by_day.get(day, (0, 0))
            level = level - issued_then + used_then
        forecast = Forecast(contract_id, number or f"Черновик #{contract_id}", free, used, days_left(free, used))
        histories.append(PoolHistory(forecast, history[::-1]))
    return histories
