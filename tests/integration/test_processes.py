"""Real processes: a crash in the middle of a batch, and two app processes sharing one database."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import Contract, Terminal, TerminalBatch
from stoloto.services import activation, contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "app"]


def sis_env(app, tmp_path, **extra) -> dict:
    env = dict(os.environ, DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"], SECRET_KEY=TEST_SECRET,
               SIS_KEY_ENCRYPTION_KEY=TEST_KEY_ENCRYPTION_KEY, SIS_INSTANCE_PATH=str(tmp_path),
               SIS_BOOTSTRAP_ADMIN="0", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def activated_contract(stand, number: str) -> int:
    contract = contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "t")
    contracts.prepare_activation(contract.id, "t")
    stand.register(number)
    stand.confirm(contract.public_key_fingerprint)
    activation.activate(contract.id, "t")
    return contract.id


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


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
