"""APScheduler wiring: one BackgroundScheduler per serving process; a database lease picks the one runner."""
import atexit
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from sqlalchemy import select

from stoloto import settings, signals
from stoloto.extensions import db
from stoloto.models import SchedulerLease

from . import lease
from .alerts import check_alerts
from .certificates import renew_certificates
from .registers import finish_pending_registrations
from .stores import import_stores_from_set
from .terminals import fetch_terminal_batches

log = logging.getLogger(__name__)
LEASE = "jobs"
JOBS = (fetch_terminal_batches, finish_pending_registrations, renew_certificates, import_stores_from_set, check_alerts)
TICK_SECONDS = 5  # how often every process renews or tries the lease; the interval setting decides the runs


def should_start(app: Flask) -> bool:
    """Serving processes only: `flask run`, gunicorn, `make run`; never tests or other CLI commands."""
    if app.testing or os.environ.get("SIS_SCHEDULER", "1") == "0":
        return False
    context = click.get_current_context(silent=True)
    return context is None or context.info_name == "run"


def register_jobs(app: Flask) -> None:
    app.extensions["sis_scheduler"] = None
    # Every process passes a nudge on through the database: the runner may be another process.
    signals.terminals_needed.connect(_record_nudge, weak=False)
    if should_start(app):
        start(app)


def _record_nudge(*args, **kwargs) -> None:
    lease.nudge(LEASE)


def start(app: Flask) -> BackgroundScheduler:
    runner = JobRunner(app)
    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(runner.tick, "interval", seconds=TICK_SECONDS, id="sis-jobs", next_run_time=_now())
    scheduler.start()
    app.extensions["sis_scheduler"] = scheduler
    app.extensions["sis_scheduler_started"] = time.monotonic()
    # gunicorn's workers leave through sys.exit, so atexit runs there; `flask run` needs SIGTERM
    # turned into SystemExit first (Python's default SIGTERM ends the process without atexit).
    atexit.register(shutdown, app)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return scheduler


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(0)


def shutdown(app: Flask) -> None:
    """Stops this process's scheduler (a run in progress finishes) and releases the lease if held, so
    another process runs the jobs at its next tick instead of after the lease's TTL. Safe to call twice."""
    scheduler = app.extensions.get("sis_scheduler")
    if scheduler is None:
        return
    app.extensions["sis_scheduler"] = None
    scheduler.shutdown(wait=True)
    with app.app_context():
        try:
            lease.release(LEASE)
        except Exception:  # the database may be gone too; the lease then simply expires
            log.exception("could not release the job lease")
        finally:
            db.session.remove()


def _now() -> datetime:
    return datetime.now(UTC)


def grace_period(app: Flask) -> bool:
    """True during the first lease TTL of a process that runs the scheduler: a lease left by a killed
    holder is taken only when it expires, so a stale lease right after a start is not yet a failure."""
    started = app.extensions.get("sis_scheduler_started")
    if started is None or app.extensions.get("sis_scheduler") is None:
        return False
    return time.monotonic() - started < lease.ttl(settings.get(settings.JOB_INTERVAL)).total_seconds()


def runner_alive() -> bool:
    """Whether some process renewed the job lease within three job intervals."""
    renewed = lease.renewed_at(LEASE)
    limit = timedelta(seconds=3 * settings.read_one(settings.JOB_INTERVAL))
    return renewed is not None and _now().replace(tzinfo=None) - renewed <= limit


def next_run() -> datetime | None:
    """When the jobs run next (naive UTC, as the database keeps it), or None when no process runs them.

    The holder runs them one job interval after its last run, at one of its ticks; a run already due
    happens at the next tick.
    """
    if not runner_alive():
        return None
    tick = lease.renewed_at(LEASE) + timedelta(seconds=TICK_SECONDS)
    last = lease.last_run_at(LEASE)
    if last is None:
        return tick
    return max(last + timedelta(seconds=settings.read_one(settings.JOB_INTERVAL)), tick)


@dataclass(frozen=True)
class JobStatus:
    """What «Обзор» tells of the background jobs."""
    last_run: datetime | None  # naive UTC; None if they never ran
    next_run: datetime | None  # None when no process runs them
    holder: str | None         # the process that runs them (lease.HOLDER: host:pid:tag), while one does


def status() -> JobStatus:
    row = db.session.execute(select(SchedulerLease.holder, SchedulerLease.last_run_at)
                             .where(SchedulerLease.name == LEASE)).first()
    upcoming = next_run()
    return JobStatus(last_run=row and row.last_run_at, next_run=upcoming,
                     holder=row.holder if row is not None and upcoming is not None and row.holder else None)


class JobRunner:
    """Renews the lease every tick; runs the jobs when it holds the lease and they are due (the interval
    has passed, or a process nudged the lease since the last run)."""

    def __init__(self, app: Flask):
        self.app = app
        self.last_run = None
        self.nudges_seen = None

    def tick(self) -> None:
        with self.app.app_context():
            try:
                if self._due():
                    # Each job apart: the alerts must still run when a failing Stoloto breaks the batches' job.
                    for job in JOBS:
                        self._run(job)
            except Exception:  # a job must never kill the scheduler thread; the error goes to the log
                log.exception("background job failed")
                db.session.rollback()
            finally:
                db.session.remove()

    def _due(self) -> bool:
        """Takes or renews the lease; True when this process holds it and the jobs are due now."""
        interval = settings.get(settings.JOB_INTERVAL)
        now = _now()
        if not lease.acquire(LEASE, lease.ttl(interval)):
            self.last_run = None  # another process runs the jobs; if we take over, we run at once
            return False
        nudges = lease.nudges(LEASE)
        if nudges == self.nudges_seen and self.last_run and (now - self.last_run).total_seconds() < interval:
            return False
        self.last_run, self.nudges_seen = now, nudges
        lease.ran(LEASE)
        return True

    @staticmethod
    def _run(job) -> None:
        try:
            job()
        except Exception:
            log.exception("background job failed")
            db.session.rollback()
