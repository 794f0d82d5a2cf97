"""Draining waiting registers concurrently (issue 14): the job, «Зарегистрировать сейчас», `registers finish`.

Each register is claimed by one run at a time; a contract that fails is asked once and the others go on.
"""
import re
import socket
import subprocess
import sys
import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from jobs.registers import finish_pending_registrations
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store
from stoloto.services import contracts, registers
from stoloto.services.contracts import ContractInput
from tests.conftest import FORBIDDEN
from tests.factories import stocked_contract, waiting_registers
from tests.integration.register_runs import registered_each_once, set_latency
from tests.processes import ROOT, wait_for

CONCURRENCY = settings.STOLOTO_CONCURRENCY


@pytest.mark.parametrize("runs", [2, 3])
def test_job_runs_in_parallel_never_advance_a_register_twice(app, stand, runs):
    with app.app_context():
        contract_id = stocked_contract(stand, "DRAIN-1", 60)
        waiting_registers(contract_id, "301", 60)
        settings.save({CONCURRENCY: 4}, "t")
    assert set_latency(stand, 20)["status"] == 200  # calls overlap: the runs meet on the same registers
    reports, failures = [], []

    def run():
        try:
            with app.app_context():
                reports.append(registers.finish_pending_report())
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    set_latency(stand, 0)
    assert failures == []
    assert sum(report.registered for report in reports) == 60  # each register counted by the one run that took it
    registered_each_once(app, stand, "DRAIN-1", 60)


def test_one_run_drains_a_backlog_larger_than_a_batch_at_once(app, stand):
    """Not a fixed 500 a run, nor one register at a time: the whole backlog in one run."""
    with app.app_context():
        contract_id = stocked_contract(stand, "DRAIN-2", 520)
        waiting_registers(contract_id, "302", 520)
        settings.save({CONCURRENCY: 16}, "t")
        report = registers.finish_pending_report()
    assert (report.registered, report.waiting) == (520, 0)
    registered_each_once(app, stand, "DRAIN-2", 520)


def test_a_failing_contract_does_not_hold_the_others(app, stand):
    with app.app_context():
        failing = stocked_contract(stand, "FAIL-1", 5)
        healthy = stocked_contract(stand, "OK-1", 5)
        waiting_registers(failing, "311", 5)  # the oldest: the run takes them first
        waiting_registers(healthy, "312", 5)
        # Its key no longer opens (the certificate, re-saved, makes SIS open the key again).
        db.session.execute(db.update(Contract).where(Contract.id == failing)
                           .values(private_key_encrypted=b"\x00" * 64,
                                   certificate_pem=Contract.certificate_pem + "\n"))
        db.session.commit()
        settings.save({CONCURRENCY: 8}, "t")
        report = registers.finish_pending_report()
        attempted = dict(db.session.execute(select(Store.code, func.count()).select_from(CashRegister).join(Store)
                                            .where(CashRegister.last_error.is_not(None)).group_by(Store.code)).all())
        states = Counter(map(tuple, db.session.execute(select(Store.code, CashRegister.state).join(Store)).all()))
    assert (report.registered, report.waiting) == (5, 5)
    assert states == {("312", "registered"): 5, ("311", "pending"): 5}
    assert attempted == {"311": 1}  # the failing contract was tried once, then left to the next run


def test_the_job_asks_a_failing_stoloto_once_per_contract(app, stand):
    with app.app_context():
        first = stocked_contract(stand, "DOWN-A", 4)
        second = stocked_contract(stand, "DOWN-B", 4)
        waiting_registers(first, "321", 4)
        waiting_registers(second, "322", 4)
        settings.save({CONCURRENCY: 8}, "t")
    stand.fault("registration", "html502", count=2)
    calls = stand.calls("registration")
    with app.app_context():
        finish_pending_registrations()
    assert stand.calls("registration") == calls + 2
    with app.app_context():
        assert registers.finish_pending_report().registered == 8


def test_registers_finish_prints_what_it_did_and_what_still_waits(app, stand):
    with app.app_context():
        active = stocked_contract(stand, "CLI-R", 3)
        not_active = contracts.create_contract(ContractInput(number="CLI-N", contract_date="15.01.2026",
                                                             agent_inn="7707083893"), "t").id
        waiting_registers(active, "331", 3)
        waiting_registers(not_active, "332", 2)
    result = app.test_cli_runner().invoke(args=["registers", "finish"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Зарегистрировано касс: 3.",
        "Ожидают регистрации: 2.",
        "  Договор не активен: 2",
    ]
    again = app.test_cli_runner().invoke(args=["registers", "finish"])
    assert again.output.splitlines()[0] == "Зарегистрировано касс: 0."


@pytest.mark.parametrize("typed, message", [
    ("0", "Допустимые значения: от 1 до 64."),
    ("65", "Допустимые значения: от 1 до 64."),
    ("восемь", "Введите целое число."),
    ("", "Введите целое число."),
])
def test_concurrency_setting_is_checked(app, web, typed, message):
    admin = web("admin")
    page = admin.get("/settings/").get_data(as_text=True)
    assert "Одновременных запросов к Столото" in page
    response = admin.post("/settings/", {CONCURRENCY: typed})
    assert response.status_code == 200 and message in response.get_data(as_text=True)
    with app.app_context():
        assert settings.get(CONCURRENCY) == 16  # the default, unchanged


def test_a_fresh_install_asks_stoloto_16_at_a_time(app, web):
    """16 calls at 0.1 s each drain a backlog of 2,000 in about 12 s (bench/drain.py)."""
    page = web("admin").get("/settings/").get_data(as_text=True)
    field = re.search(rf'<input[^>]*name="{re.escape(CONCURRENCY)}"[^>]*>', page).group(0)
    assert 'value="16"' in field


def test_concurrency_setting_with_a_nul_byte_is_refused(app, web):
    admin = web("admin")
    response = admin.post("/settings/", {CONCURRENCY: "1\x006"})
    assert response.status_code == 400 and FORBIDDEN in response.get_data(as_text=True)
    saved = admin.post("/settings/", {CONCURRENCY: "24"}, follow_redirects=True)
    assert "Настройки сохранены: «Одновременных запросов к Столото»" in saved.get_data(as_text=True)
    with app.app_context():
        assert settings.get(CONCURRENCY) == 24


def test_stand_latency_is_set_at_run_time_and_checked(stand):
    assert set_latency(stand, 150) == {"status": 200, "latency_ms": 150}
    assert stand.state()["latency_ms"] == 150
    for bad in (-1, 60001, "100", True, None):
        answer = set_latency(stand, bad)
        assert answer["status"] == 400 and answer["error"]["fields"] == ["ms"], bad
    assert stand.state()["latency_ms"] == 150
    stand.post("/control/reset")
    assert stand.state()["latency_ms"] == 0  # the latency it was started with


def test_stand_started_with_a_latency_reports_it_and_refuses_a_bad_one(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--latency-ms", "-5"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--latency-ms: an integer from 0 to 60000" in bad.stderr
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stand = subprocess.Popen([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--no-tls", "--quiet",
                              "--port", str(port), "--data-dir", str(tmp_path), "--latency-ms", "250"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/control/state"
    try:
        def answers() -> bool:
            try:
                return requests.get(url, timeout=2).ok
            except requests.RequestException:
                return False
        wait_for(answers, 30, "the stand to start")
        assert requests.get(url, timeout=2).json()["latency_ms"] == 250
    finally:
        stand.terminate()
        stand.wait(10)
