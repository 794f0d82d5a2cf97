"""Server logs: a request id on every line, one line per outside call and per job run, no secret ever."""
import json
import logging
import re
import subprocess
import sys

import pytest
import requests

from app import create_app
from jobs.registers import finish_pending_registrations
from jobs.terminals import fetch_terminal_batches
from stoloto import settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import Contract, Store
from stoloto.services import contracts, gateway
from stoloto.services.contracts import ContractInput
from tests.conftest import PASSWORD, TEST_KEY_ENCRYPTION_KEY, TEST_SECRET, Browser
from tests.processes import ROOT, free_port, sis_env, wait_for

TOKEN = "cash-api-token-never-logged-0123456789"
METRICS_TOKEN = "metrics-token-never-logged-0123456789"
API = "/api/v1/cash-registers/registration"
# 2026-11-30T16:30:00.123+03:00 INFO logger [request id] message — SIS_TIMEZONE is Moscow in the tests.
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+03:00 (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+ \[\S+\] ")


@pytest.fixture
def log_lines(capfd):
    """Every line SIS's log handler writes (the process's standard error) during the test."""
    capfd.readouterr()
    return lambda: capfd.readouterr().err.splitlines()


@pytest.fixture
def debug_logging():
    """Everything on: the root logger and the HTTP libraries' own loggers at DEBUG."""
    names = ("", "werkzeug", "urllib3", "requests")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def new_contract(number: str) -> int:
    return contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                   agent_inn="7707083893"), "t").id


def activate_in_panel(operator: Browser, stand, contract_id: int) -> None:
    """«Активировать договор» twice: the key and Appendix 5, then Stoloto's certificate (§1.1)."""
    operator.post("/contracts/activate/", {"id": contract_id})
    contract = db.session.get(Contract, contract_id)
    stand.register(contract.number)
    stand.confirm(contract.public_key_fingerprint)
    operator.post("/contracts/activate/", {"id": contract_id})
    db.session.expire_all()
    assert db.session.get(Contract, contract_id).status == "awaiting_terminals"


def test_a_sane_request_id_is_kept_and_any_other_replaced(app, log_lines):
    client = app.test_client()
    kept = client.get("/auth/login", headers={"X-Request-Id": "lb-7f3a.01_x"})
    assert kept.headers["X-Request-Id"] == "lb-7f3a.01_x"
    forged = client.get("/auth/login", headers={"X-Request-Id": "x] INFO forged [y"})
    too_long = client.get("/auth/login", headers={"X-Request-Id": "a" * 65})
    missing = client.get("/auth/login")
    new_ids = [forged.headers["X-Request-Id"], too_long.headers["X-Request-Id"], missing.headers["X-Request-Id"]]
    assert all(re.fullmatch(r"[0-9a-f]{32}", new) for new in new_ids) and len(set(new_ids)) == 3
    lines = log_lines()
    assert all(TEXT_LINE.match(line) for line in lines), lines
    assert any("[lb-7f3a.01_x] GET /auth/login 200" in line for line in lines), lines
    for new in new_ids:
        assert any(f"[{new}] GET /auth/login 200" in line for line in lines), lines
    assert not any("forged" in line for line in lines)


def test_secrets_never_reach_the_log(app, accounts, stand, debug_logging, log_lines):
    admin = Browser(app.test_client())
    assert admin.login(accounts["admin"]).status_code == 302  # the password goes through
    saved = admin.post("/settings/", {settings.CASH_API_TOKEN: TOKEN}, follow_redirects=True)
    assert "Настройки сохранены" in saved.get_data(as_text=True)
    operator = Browser(app.test_client())
    assert operator.login(accounts["operator"]).status_code == 302
    with app.app_context():
        contract_id = new_contract("LOG-1")
        activate_in_panel(operator, stand, contract_id)  # §1.1, then mutual TLS with the contract's key
        fetch_terminal_batches()  # §1.2
        db.session.add(Store(code="101", contract_id=contract_id, name="Магазин №101", address="г. Москва",
                           source="manual"))
        db.session.commit()
        key_pem = gateway.client_certificate(db.session.get(Contract, contract_id)).key_pem.decode()
    registered = app.test_client().post(API, json={"store_code": "101", "cash_number": 3},
                                        headers={"Authorization": f"Bearer {TOKEN}", "X-Request-Id": "till-101-3"})
    assert registered.status_code == 200, registered.json  # §1.3 over mutual TLS
    app.config["METRICS_TOKEN"] = METRICS_TOKEN
    try:
        scraped = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
                                        environ_overrides={"REMOTE_ADDR": "10.0.0.9"})
    finally:
        app.config["METRICS_TOKEN"] = ""
    assert scraped.status_code == 200
    lines = log_lines()
    log = "\n".join(lines)

    # The log did record all of it: the logins, the calls, the API request with its id.
    assert "POST /auth/login 302" in log and "Stoloto POST /api/v1/contracts/activate: 200 ok" in log
    assert any("[till-101-3] Stoloto POST /api/v1/terminals/" in line and "/registration: 200 ok" in line
               for line in lines), log
    secrets = {"password": PASSWORD, "cash API token": TOKEN, "METRICS_TOKEN": METRICS_TOKEN, "SECRET_KEY": TEST_SECRET,
               "key-encryption key": TEST_KEY_ENCRYPTION_KEY,
               "admin's session cookie": admin.client.get_cookie("session").value,
               "operator's session cookie": operator.client.get_cookie("session").value}
    # The contract's private key, line by line of its PEM body.
    secrets.update((f"private key line {n}", line) for n, line in enumerate(key_pem.splitlines()[1:-1]))
    leaked = [name for name, secret in secrets.items() if secret in log]
    assert leaked == []


def test_each_stoloto_call_is_logged_once_with_its_outcome_and_each_job_run_in_counts(app, web, stand, log_lines):
    operator = web("operator")
    with app.app_context():
        contract_id = new_contract("LOG-2")
        activate_in_panel(operator, stand, contract_id)
    lines = log_lines()
    calls = [line for line in lines if "Stoloto POST /api/v1/contracts/activate" in line]
    assert len(calls) == 1, lines
    # The X-Request-Id logged is the one the stand received (it logs it too).
    received = re.search(r"POST /api/v1/contracts/activate -> 200 request-id=(\S+)", "\n".join(lines)).group(1)
    assert re.search(rf"INFO stoloto\.clients\.stoloto \[[0-9a-f]{{32}}\] Stoloto POST /api/v1/contracts/activate: "
                     rf"200 ok, \d+ ms, X-Request-Id {received}, contract LOG-2$", calls[0]), calls[0]

    stand.fault("batches", "status", status=503)
    with app.app_context():
        fetch_terminal_batches()
    lines = log_lines()
    failed = [line for line in lines if "Stoloto POST /api/v1/terminals/batches" in line]
    assert len(failed) == 1 and " WARNING " in failed[0] and ": 503 SERVICE_UNAVAILABLE, " in failed[0], lines
    job_id = re.search(r"\[(job-terminals-[0-9a-f]{12})\]", failed[0]).group(1)
    job = [line for line in lines if "terminal batches job" in line]
    assert len(job) == 1 and f"[{job_id}]" in job[0], lines
    assert "0 numbers received for 0 contracts, 1 contracts failed (LOG-2: " in job[0]

    with app.app_context():
        fetch_terminal_batches()
        finish_pending_registrations()
    lines = log_lines()
    assert any("terminal batches job: 5 numbers received for 1 contracts, 0 contracts failed" in line
               for line in lines), lines
    assert any("cash registers job: 0 registered, 0 still waiting" in line for line in lines), lines


def test_a_set_centrum_import_is_logged_once_with_its_outcome(app, web, setcentrum, log_lines):
    operator = web("operator")
    operator.post("/stores/import/", headers={"X-Request-Id": "import-1"})
    setcentrum.fault("status", status=502)
    operator.post("/stores/import/", headers={"X-Request-Id": "import-2"})
    lines = [line for line in log_lines() if "SET Centrum GET /api/v1/shops" in line]
    assert len(lines) == 2, lines
    assert re.search(r"INFO stoloto\.clients\.setcentrum \[import-1\] .*: 200 ok, \d+ ms, shops 40$", lines[0])
    assert re.search(r"WARNING stoloto\.clients\.setcentrum \[import-2\] .*: HTTP_502, \d+ ms, shops -$", lines[1])


def test_an_unknown_log_format_stops_the_start(tmp_path):
    with pytest.raises(SisError) as error:
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}", "SECRET_KEY": TEST_SECRET,
                    "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path),
                    "SIS_LOG_FORMAT": "xml"})
    assert error.value.code == "CONFIG_INVALID"
    assert "SIS_LOG_FORMAT" in str(error.value) and "«xml»" in str(error.value)


def test_gunicorn_writes_one_json_object_per_line_with_the_request_id(app, tmp_path):
    config = tmp_path / "gunicorn.conf.py"
    # The lines gunicorn.conf.py carries (README, «Журналы сервера»).
    config.write_text("from stoloto.logs import gunicorn_logconfig\nlogconfig_dict = gunicorn_logconfig()\n")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(config), "-w", "1", "-b", f"127.0.0.1:{port}", "app:app"],
        cwd=ROOT, env=sis_env(app, tmp_path, SIS_LOG_FORMAT="json", SIS_SCHEDULER="0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answers() -> bool:
            try:
                # The worker builds the app on its first request: slow on a busy machine.
                return requests.get(f"http://127.0.0.1:{port}/auth/login", headers={"X-Request-Id": "gunicorn-1"},
                                    timeout=60).status_code == 200
            except requests.ConnectionError:  # not listening yet
                return False
        wait_for(answers, 60, "gunicorn to serve")
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    lines = [json.loads(line) for line in (out + err).splitlines()]  # each line parses on its own
    assert all(set(line) >= {"time", "level", "logger", "request_id", "message"} for line in lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+03:00", lines[0]["time"])
    assert any(line["logger"] == "gunicorn.error" and "Booting worker" in line["message"] for line in lines)
    served = [line for line in lines if line["request_id"] == "gunicorn-1"]
    assert served and served[0]["logger"] == "stoloto.requests" and served[0]["status"] == 200
