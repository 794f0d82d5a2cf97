"""A database lease: of all the processes running the scheduler, only the holder runs the jobs."""
import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from stoloto.extensions import db
from stoloto.models import SchedulerLease, utcnow

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
# The lease outlives a whole job run (the holder cannot renew it while a run waits on Stoloto), so it is
# never shorter than this; SIS_JOB_LEASE_MIN_SECONDS lowers it where runs are short (the process tests).
MIN_TTL_SECONDS = int(os.environ.get("SIS_JOB_LEASE_MIN_SECONDS", "60"))
_NEVER = datetime(2000, 1, 1)


def ttl(interval_seconds: int) -> timedelta:
    """How long a lease stays held without renewal: three job intervals, at least MIN_TTL_SECONDS."""
    return timedelta(seconds=max(MIN_TTL_SECONDS, 3 * interval_seconds))


def _insert():
    # ON CONFLICT is dialect syntax; SQLite and PostgreSQL spell it the same way.
    return (postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert)(SchedulerLease)


def acquire(name: str, ttl: timedelta, holder: str = HOLDER) -> bool:
    """Takes or renews the lease; True when this process holds it until now + ttl.

    One statement that never fails when another process holds the lease (no INSERT bound to hit a
    duplicate key): the row normally exists (migration 0007), and if not, this creates it.
    """
    now = utcnow()
    lease = SchedulerLease.__table__
    statement = (_insert().values(name=name, holder=holder, expires_at=now + ttl, renewed_at=now, nudges=0))
    statement = statement.on_conflict_do_update(
        index_elements=[lease.c.name],
        set_={"holder": holder, "expires_at": now + ttl, "renewed_at": now},
        where=or_(lease.c.holder == holder, lease.c.expires_at < now),
    ).returning(lease.c.name)
    held = db.session.execute(statement).first() is not None
    db.session.commit()
    return held


def release(name: str, holder: str = HOLDER) -> None:
    """Ends this process's hold at once, so another process takes the lease at its next tick."""
    db.session.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                       .values(expires_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()


def nudge(name: str) -> None:
    """Asks the holder, whichever process it is, to run at its next tick; its own short transaction."""
    lease = SchedulerLease.__table__
    statement = _insert().values(name=name, holder="", expires_at=_NEVER, nudges=1)
    statement = statement.on_conflict_do_update(index_elements=[lease.c.name],
                                                set_={"nudges": lease.c.nudges + 1})
    with db.engine.begin() as connection:
        connection.execute(statement)


def nudges(name: str) -> int:
    """How many nudges the lease has had; the holder runs when the count moved since its last run."""
    return db.session.scalar(select(SchedulerLease.nudges).where(SchedulerLease.name == name)) or 0


def renewed_at(name: str) -> datetime | None:
    """When the lease was last renewed by its holder (UTC), None if never."""
    return db.session.scalar(select(SchedulerLease.renewed_at).where(SchedulerLease.name == name))


def ran(name: str, holder: str = HOLDER) -> None:
    """Records that the holder has just run the jobs."""
    db.session.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                       .values(last_run_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()


def last_run_at(name: str) -> datetime | None:
    """When the jobs last ran (UTC), whichever process ran them; None if never."""
    return db.session.scalar(select(SchedulerLease.last_run_at).where(SchedulerLease.name == name))
