"""APScheduler wiring: one BackgroundScheduler per serving process; a database lease picks the one runner."""
import logging
import os
from datetime import datetime, timedelta, timezone

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask

from stoloto import settings, signals
from stoloto.extensions import db

from . import lease
from .registers import finish_pending_registrations
from .terminals import fetch_terminal_batches

log = logging.getLogger(__name__)
LEASE = "jobs"
TICK_SECONDS = 5  # how often every process checks whether a run is due; the interval setting decides


def should_start(app: Flask) -> bool:
    """Serving processes only: `flask run`, gunicorn, `make run`; never tests or other CLI commands."""
    if app.testing or os.environ.get("SIS_SCHEDULER", "1") == "0":
        return False
    context = click.get_current_context(silent=True)
    return context is None or context.info_name == "run"


def register_jobs(app: Flask) -> None:
    app.extensions["sis_scheduler"] = None
    if should_start(app):
        start(app)


def start(app: Flask) -> BackgroundScheduler:
    runner = JobRunner(app)
    signals.terminals_needed.connect(runner.nudge, weak=False)
    scheduler = BackgroundScheduler(daemon=True, job_defaults={"coalesce": True, "max_instances": 1})
    scheduler.add_job(runner.tick, "interval", seconds=TICK_SECONDS, id="sis-jobs", next_run_time=_now())
    scheduler.start()
    app.extensions["sis_scheduler"] = scheduler
    return scheduler


def _now() -> datetime:
    return datetime.now(timezone.utc)


class JobRunner:
    """Runs the jobs when the interval setting says they are due and this process holds the lease."""

    def __init__(self, app: Flask):
        self.app = app
        self.last_run = None
        self.nudged = False

    def nudge(self, *args, **kwargs) -> None:
        """Run at the next tick, whatever the interval: a cash register is waiting for terminals."""
        self.nudged = True

    def tick(self) -> None:
        with self.app.app_context():
            try:
                interval = settings.get(settings.JOB_INTERVAL)
                now = _now()
                if not self.nudged and self.last_run and (now - self.last_run).total_seconds() < interval:
                    return
                if not lease.acquire(LEASE, timedelta(seconds=max(60, 3 * interval))):
                    return
                self.last_run, self.nudged = now, False
                fetch_terminal_batches()
                finish_pending_registrations()
            except Exception:  # a job must never kill the scheduler thread; the error goes to the log
                log.exception("background job failed")
                db.session.rollback()
            finally:
                db.session.remove()
