"""Whether each Stoloto service answers: the first failure after a success and the first success after failures
are written to stoloto_endpoints, so the alerts know since when a service fails without a write per call."""
import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite

from ..clients.stoloto import Outcome
from ..extensions import db
from ..models import StolotoEndpoint, utcnow

log = logging.getLogger(__name__)
OK, FAILING = "ok", "failing"
# A process tells the database what it sees when that changes, and at most this often otherwise: another
# process may have written the opposite meanwhile, and the last failure's time must stay fresh while it lasts.
REFRESH = timedelta(seconds=60)
_seen: dict[tuple[str, str], tuple[str, datetime]] = {}
_seen_lock = threading.Lock()
_TABLE = StolotoEndpoint.__table__


def failed(outcome: Outcome) -> bool:
    """Stoloto failed the call: no answer, a 5xx or garbage. A refusal (TERMINAL_LIMIT_EXCEEDED, 401…) is an
    answer: the service works, and what it refused is told by the alert of its own kind."""
    return not outcome.answered


def observer(engine: Engine):
    """What the Stoloto client calls after each call, in whatever thread made it: the engine is bound now, as
    a registration's worker thread may have no application context."""
    def observe(endpoint: str, outcome: Outcome) -> None:
        try:
            record(engine, endpoint, outcome)
        except Exception:  # the call's own result matters more than its bookkeeping
            log.exception("could not record the state of Stoloto's %s service", endpoint)
    return observe


def record(engine: Engine, endpoint: str, outcome: Outcome) -> None:
    state = FAILING if failed(outcome) else OK
    now = utcnow()
    key = (str(engine.url), endpoint)
    with _seen_lock:
        seen = _seen.get(key)
    if seen is not None and seen[0] == state and timedelta(0) <= now - seen[1] < REFRESH:
        return
    insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(StolotoEndpoint)
    if state == OK:
        values = {"state": OK, "last_ok_at": now, "failing_since": None}
        statement = insert.values(endpoint=endpoint, **values).on_conflict_do_update(
            index_elements=[_TABLE.c.endpoint], set_=values)
    else:
        error = f"{outcome.code}: {outcome.message}" if outcome.message else outcome.code
        statement = insert.values(endpoint=endpoint, state=FAILING, failing_since=now, last_failed_at=now,
                                  last_error=error)
        # The failure began at the first one since the last success: a later process keeps that time.
        statement = statement.on_conflict_do_update(index_elements=[_TABLE.c.endpoint], set_={
            "state": FAILING, "last_failed_at": now, "last_error": error,
            "failing_since": db.func.coalesce(_TABLE.c.failing_since, now)})
    with engine.begin() as connection:
        connection.execute(statement)
    with _seen_lock:  # remembered once written: a write that failed is tried again by the next call
        _seen[key] = (state, now)


def forget() -> None:
    """This process's memory of what it wrote (tests empty the table under it)."""
    with _seen_lock:
        _seen.clear()

