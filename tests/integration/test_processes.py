"""Real processes: a crash in the middle of a batch, and two app processes sharing one database."""
import signal
import subprocess
import time

from sqlalchemy import func, select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Contract, Terminal, TerminalBatch
from tests.conftest import TOKEN
from tests.factories import activated_contract
from tests.processes import FLASK, GUNICORN, ROOT, Server, free_port, sis_env, wait_for


def test_crash_between_stand_issuing_and_sis_committing_loses_nothing(app, stand, tmp_path):
    with app.app_context():
        contract_id = activated_contract(stand, "CRASH-1")
        settings.save({settings.READ_TIMEOUT: 60}, "t")
    stand.fault("batches", "delay_after", seconds=30)  # the stand issues the batch, then holds the answer
    job = subprocess.Popen(FLASK + ["terminals", "fetch"], cwd=ROOT, env=sis_env(app, tmp_path),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(stand.issued("CRASH-1")) == 5, 30, "the stand to issue the batch")
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait(10)
    with app.app_context():
        batch = db.session.scalar(select(TerminalBatch))
        assert batch.status == "pending"  # committed before the call, never completed
        assert db.session.scalar(select(func.count()).select_from(Terminal)) == 0

    restarted = subprocess.run(FLASK + ["terminals", "fetch"], cwd=ROOT, env=sis_env(app, tmp_path),
                               capture_output=True, text=True, timeout=60)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    with app.app_context():
        ours = sorted(db.session.scalars(select(Terminal.number)))
        assert ours == stand.issued("CRASH-1") and len(ours) == 5
        assert db.session.get(Contract, contract_id).status == "active"
        assert db.session.scalar(select(func.count()).select_from(TerminalBatch)) == 1
    assert stand.state()["executed"]["batches"] == 1  # the retry was a replay, not a new batch


def test_two_app_processes_request_each_due_batch_once(app, stand, tmp_path):
    numbers = [f"DUO-{i}" for i in range(3)]
    with app.app_context():
        ids = [activated_contract(stand, number) for number in numbers]
        settings.save({settings.JOB_INTERVAL: 5}, "t")
    servers = []
    for port in (free_port(), free_port()):
        servers.append(subprocess.Popen(FLASK + ["run", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                        env=sis_env(app, tmp_path / str(port), SIS_SCHEDULER="1"),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        def all_active():
            with app.app_context():
                db.session.expire_all()
                return all(db.session.get(Contract, i).status == "active" for i in ids)
        wait_for(all_active, 60, "both schedulers to fetch the first batches")
        time.sleep(6)  # one more tick in each process: nothing more is due
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)
    state = stand.state()
    with app.app_context():
        batches = db.session.scalars(select(TerminalBatch)).all()
        assert len(batches) == 3 and all(b.status == "done" and b.attempts == 1 for b in batches)
        for number in numbers:
            ours = sorted(db.session.scalars(select(Terminal.number).join(Contract)
                                             .where(Contract.number == number)))
            assert ours == sorted(state["terminals"][number]) and len(ours) == 5
    assert state["calls"]["batches"] == 3 and state["executed"]["batches"] == 3


LEASE_ENV = {"SIS_SCHEDULER": "1", "SIS_JOB_LEASE_MIN_SECONDS": "15"}  # TTL 15 s with a 5 s interval


def lease_row(app):
    from stoloto.models import SchedulerLease
    with app.app_context():
        db.session.expire_all()
        row = db.session.get(SchedulerLease, "jobs")
        return None if row is None else (row.holder, row.expires_at)


def held_by(app, server: Server) -> bool:
    from stoloto.models import utcnow
    row = lease_row(app)
    return row is not None and server.owns(row[0]) and row[1] > utcnow()


def register_cash(server: Server, store_code: str, numbers) -> None:
    import requests
    for number in numbers:
        answer = requests.post(server.url + "/api/v1/cash-registers/registration", timeout=30,
                               json={"store_code": store_code, "cash_number": number},
                               headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code in (200, 202), answer.text


def test_two_servers_hand_the_jobs_over_on_kill_and_on_sigterm(app, stand, tmp_path):
    """gunicorn and `flask run` on one database: one lease holder at a time; kill -9 → the other takes over
    when the lease expires; SIGTERM → the lease is released at exit; every terminal number is kept once."""
    from stoloto.models import CashRegister, Store, utcnow
    with app.app_context():
        contract_id = activated_contract(stand, "LEASE-1")
        db.session.add(Store(code="201", contract_id=contract_id, name="Магазин №201", address="г. Москва",
                             source="manual"))
        db.session.commit()
        settings.save({settings.JOB_INTERVAL: 5, settings.CASH_API_TOKEN: TOKEN}, "t")
    flask_run = Server(FLASK, sis_env(app, tmp_path / "a", **LEASE_ENV))
    gunicorn = None
    servers = [flask_run]
    try:
        wait_for(lambda: held_by(app, flask_run), 30, "`flask run` to take the job lease")
        gunicorn = Server(GUNICORN, sis_env(app, tmp_path / "b", **LEASE_ENV))
        servers.append(gunicorn)
        wait_for(gunicorn.serving, 90, "gunicorn to serve")
        register_cash(gunicorn, "201", range(1, 8))  # 7 registers, batches of 5: the holder fetches more
        assert held_by(app, flask_run)  # the second server waits while the lease is held

        flask_run.stop(signal.SIGKILL)
        wait_for(lambda: held_by(app, gunicorn), 60, "gunicorn to take the lease once it expires")

        flask_run = Server(FLASK, sis_env(app, tmp_path / "c", **LEASE_ENV))
        servers.append(flask_run)
        wait_for(flask_run.serving, 90, "`flask run` to serve again")  # a cold start under a loaded CI machine
        register_cash(flask_run, "201", range(8, 13))
        holder = lease_row(app)[0]
        gunicorn.stop(signal.SIGTERM)
        assert gunicorn.process.returncode == 0
        released = lease_row(app)
        assert released[0] != holder or released[1] <= utcnow()  # released at exit, not left to expire
        wait_for(lambda: held_by(app, flask_run), 60, "`flask run` to take the released lease")

        def all_registered():
            with app.app_context():
                db.session.expire_all()
                states = db.session.scalars(select(CashRegister.state)).all()
                return len(states) == 12 and set(states) == {"registered"}
        wait_for(all_registered, 60, "every cash register to be registered by the job")

        holder = lease_row(app)[0]
        flask_run.stop(signal.SIGTERM)
        released = lease_row(app)
        assert released[0] == holder and released[1] <= utcnow()  # `flask run` releases it on SIGTERM too
    finally:
        for server in servers:
            server.stop(signal.SIGKILL)
    with app.app_context():
        ours = db.session.scalars(select(Terminal.number)).all()
        assert sorted(ours) == sorted(stand.issued("LEASE-1")) and len(set(ours)) == len(ours)
        bound = db.session.scalars(select(Terminal.number).join(CashRegister,
                                                                CashRegister.terminal_id == Terminal.id)).all()
        assert len(bound) == 12 and len(set(bound)) == 12
        batches = db.session.scalars(select(TerminalBatch)).all()
        assert batches and all(batch.status == "done" for batch in batches)  # a killed run's batch replayed
    assert stand.state()["executed"]["batches"] == len(batches)
