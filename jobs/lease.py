"""A database lease: of all the processes running the scheduler, only the holder runs the jobs."""
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import insert, or_, update
from sqlalchemy.exc import IntegrityError

from stoloto.extensions import db
from stoloto.models import SchedulerLease, utcnow

HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(name: str, ttl: timedelta, holder: str = HOLDER) -> bool:
    """Takes or renews the lease; True when this process holds it until now + ttl."""
    now = utcnow()
    taken = db.session.execute(
        update(SchedulerLease)
        .where(SchedulerLease.name == name,
               or_(SchedulerLease.holder == holder, SchedulerLease.expires_at < now))
        .values(holder=holder, expires_at=now + ttl)
        .execution_options(synchronize_session=False))
    if taken.rowcount == 1:
        db.session.commit()
        return True
    db.session.rollback()
    try:
        db.session.execute(insert(SchedulerLease).values(name=name, holder=holder, expires_at=now + ttl))
        db.session.commit()
        return True
    except IntegrityError:
        db.session.rollback()  # the row exists and another live process holds it
        return False


def release(name: str, holder: str = HOLDER) -> None:
    db.session.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                       .values(expires_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
