"""The job lease through the job's own tick: no failing statement while another process holds it, and a
nudge recorded in the database reaches the runner whichever process got it."""
from datetime import timedelta

from sqlalchemy import event

from jobs import lease
from jobs.scheduler import LEASE, JobRunner
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import SchedulerLease, utcnow
from tests.conftest import TOKEN, URL
from tests.factories import active_contract, store


def test_a_process_without_the_lease_runs_no_statement_that_fails(app):
    with app.app_context():
        db.session.merge(SchedulerLease(name=LEASE, holder="other-process", expires_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
        failures = []
        listener = lambda context: failures.append(context.original_exception)  # noqa: E731
        event.listen(db.engine, "handle_error", listener)
    try:
        for _ in range(3):
            JobRunner(app).tick()
    finally:
        with app.app_context():
            event.remove(db.engine, "handle_error", listener)
    assert failures == []  # before: an INSERT per tick, refused as a duplicate key
    with app.app_context():
        assert db.session.get(SchedulerLease, LEASE).holder == "other-process"


def test_the_lease_row_is_created_when_missing(app):
    JobRunner(app).tick()  # the tables were emptied after the previous test: no row at all
    with app.app_context():
        assert db.session.get(SchedulerLease, LEASE).holder == lease.HOLDER


def test_a_nudge_from_the_api_reaches_a_runner_that_is_not_due(app, stand):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN, settings.JOB_INTERVAL: 3600}, "t")
        contract_id = active_contract(stand, "NUDGE-1")  # one batch of 5 terminals
        store("105", contract_id)
    runner = JobRunner(app)  # as in another process: nothing connects it to this process's signals
    runner.tick()  # takes the lease and runs; the next run is due in an hour
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answers = [client.post(URL, json={"store_code": "105", "cash_number": n}, headers=headers) for n in range(1, 7)]
    assert [a.status_code for a in answers] == [200] * 5 + [202]
    runner.tick()
    sixth = client.get("/api/v1/cash-registers/105/6", headers=headers)
    assert sixth.json["status"] == "REGISTERED", sixth.json
    assert stand.calls("batches") == 2
