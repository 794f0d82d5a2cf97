"""The counters «Обзор» and the pool forecast read: one upsert per event, made where the event happens.

Charts over a million registers cannot count the registers themselves on every page view, so each event
adds one to a small table keyed by its day (or hour) instead: a register that registers, is refused or
starts waiting (register_lifecycle.move, in the move's transaction), numbers that arrive
(services/terminals.py, with the batch) or are claimed (the claim's move), and every call to Stoloto.
`INSERT … ON CONFLICT … DO UPDATE SET n = n + excluded.n` is one statement on SQLite and PostgreSQL alike.
Days are the users' days (SIS_TIMEZONE); hours are UTC, shown in the zone.

Every key (a contract's day, an hour's endpoint) is counted in one of SLOTS rows picked at random, and its
readers add them up: with one row per key, every registration of a contract would lock the same row until
it commits, and concurrent registrations would commit one after another instead of together (on
PostgreSQL a commit waits for its WAL flush, which concurrent transactions otherwise share).
"""
import random
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite

from . import clock
from .models import DailyRegistrations, DailyTerminals, HourlyStolotoCalls, utcnow

REGISTERED, REFUSED, WAITING = "registered", "refused", "waiting"
OUTCOMES = (REGISTERED, REFUSED, WAITING)
OUTCOME_LABELS = {REGISTERED: "Зарегистрированы", REFUSED: "Отказ Столото", WAITING: "Начали ожидать"}
SLOTS = 8


def _upserts(model, counters: tuple[str, ...]) -> dict:
    """The table's upsert per dialect, built once: the key columns are its primary key."""
    table = model.__table__
    keys = [column for column in table.primary_key.columns]
    statements = {}
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite)):
        statement = dialect.insert(table)
        statements[name] = statement.on_conflict_do_update(
            index_elements=keys, set_={counter: table.c[counter] + statement.excluded[counter] for counter in counters})
    return statements


_REGISTRATIONS = _upserts(DailyRegistrations, ("count",))
_TERMINALS = _upserts(DailyTerminals, ("issued", "used"))
_CALLS = _upserts(HourlyStolotoCalls, ("calls", "refusals", "failures"))


def _dialect(executor) -> str:
    """A Connection knows its dialect; a Session asks its bind."""
    dialect = getattr(executor, "dialect", None) or executor.get_bind().dialect
    return dialect.name


def _slot() -> int:
    return random.randrange(SLOTS)


def day_of(moment: datetime):
    """The users' day of a stored (UTC) moment."""
    return clock.local(moment).date()


def count_registration(executor, contract_id: int | None, outcome: str, moment: datetime) -> None:
    """One register registered, refused by Stoloto or started waiting, in the caller's transaction."""
    if contract_id is not None:
        executor.execute(_REGISTRATIONS[_dialect(executor)], {
            "day": day_of(moment), "contract_id": contract_id, "outcome": outcome, "slot": _slot(), "count": 1})


def count_terminals(executor, contract_id: int, moment: datetime, issued: int = 0, used: int = 0) -> None:
    """Numbers the contract received or used, in the caller's transaction (the one that adds or claims them)."""
    executor.execute(_TERMINALS[_dialect(executor)], {
        "day": day_of(moment), "contract_id": contract_id, "slot": _slot(), "issued": issued, "used": used})


def count_call(executor, endpoint: str, outcome) -> None:
    """Counts one call to Stoloto (`endpoint`: a name of stoloto_services.py) and its outcome (a
    clients.stoloto.Outcome) in the caller's transaction.

    The registration path counts its call with the move that follows it (one commit for both): a move lost
    to a concurrent request for the same register rolls back, and that call goes uncounted.
    """
    refused = not outcome.ok and outcome.answered
    executor.execute(_CALLS[_dialect(executor)], {
        "hour": utcnow().replace(minute=0, second=0, microsecond=0), "endpoint": endpoint, "slot": _slot(), "calls": 1,
        "refusals": int(refused), "failures": int(not outcome.answered)})


def record_call(executor, endpoint: str, outcome) -> None:
    """count_call in its own short transaction on the caller's connection or session, which must hold nothing
    uncommitted: the count stands whatever the caller does next."""
    count_call(executor, endpoint, outcome)
    executor.commit()
