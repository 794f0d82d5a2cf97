"""GET /metrics: the text matches the database and the calls made; who may read it; gunicorn's workers summed."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from app import create_app
from jobs import lease
from jobs.scheduler import JobRunner
from stoloto import settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import Contract
from stoloto.services import activation
from tests.conftest import TOKEN as CASH_TOKEN, URL as REGISTRATION_URL
from tests.factories import active_contract, contract_awaiting_activation, store
from tests.processes import ROOT, sis_env, wait_for

METRICS_TOKEN = "metrics-token-0123456789abcdef"


def scrape(client, address: str = "127.0.0.1", **headers) -> dict:
    """Every sample of GET /metrics: {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=headers, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def samples(text: str) -> dict:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(figures: dict, name: str, **labels) -> float:
    return figures.get((name, tuple(sorted(labels.items()))), 0.0)


def test_figures_match_the_database_after_a_registration(app, stand):
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: CASH_TOKEN}, "t")
        contract_id = active_contract(stand, "MET-1")
        store("101", contract_id)
        certificate = x509.load_pem_x509_certificate(db.session.get(Contract, contract_id).certificate_pem.encode())
    answer = client.post(REGISTRATION_URL, json={"store_code": "101", "cash_number": 1},
                         headers={"Authorization": f"Bearer {CASH_TOKEN}"})
    assert answer.status_code == 200, answer.json
    earliest = time.time()
    after = scrape(client)
    latest = time.time()

    assert value(after, "sis_contracts", status="active") == 1
    assert value(after, "sis_contracts", status="draft") == 0  # every status is listed, so alerts see zeros
    assert value(after, "sis_terminals", contract="MET-1", status="registered") == 1
    assert value(after, "sis_terminals", contract="MET-1", status="free") == 4  # the stand's batch is 5
    assert value(after, "sis_cash_registers", state="registered", reason="") == 1
    assert value(after, "sis_stores", source="manual") == 1
    assert value(after, "sis_database_up") == 1
    left = value(after, "sis_contract_certificate_expiry_seconds", contract="MET-1")
    not_after = certificate.not_valid_after_utc.timestamp()
    assert not_after - latest <= left <= not_after - earliest
    for endpoint in ("activate", "batches", "registration"):
        grew = value(after, "sis_stoloto_calls_total", endpoint=endpoint, outcome="ok", code="") - \
            value(before, "sis_stoloto_calls_total", endpoint=endpoint, outcome="ok", code="")
        assert grew == 1, endpoint
    timed = value(after, "sis_stoloto_call_duration_seconds_count", endpoint="registration") - \
        value(before, "sis_stoloto_call_duration_seconds_count", endpoint="registration")
    assert timed == 1


@pytest.mark.parametrize("fault, outcome, code", [
    ({"kind": "error", "code": "KEY_NOT_REGISTERED"}, "refusal", "KEY_NOT_REGISTERED"),
    ({"kind": "status", "status": 503}, "5xx", "SERVICE_UNAVAILABLE"),
    ({"kind": "html502"}, "5xx", "HTTP_502"),
    ({"kind": "garbage"}, "bad_body", ""),
    ({"kind": "delay", "seconds": 4}, "timeout", ""),  # the stand fixture's read timeout is 2 s
])
def test_stoloto_calls_are_counted_by_outcome(app, stand, fault, outcome, code):
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        contract_id = contract_awaiting_activation(stand, "MET-2")
        stand.fault("activate", **fault)
        with pytest.raises(SisError):
            activation.activate(contract_id, "t")
    after = scrape(client)
    grew = value(after, "sis_stoloto_calls_total", endpoint="activate", outcome=outcome, code=code) - \
        value(before, "sis_stoloto_calls_total", endpoint="activate", outcome=outcome, code=code)
    assert grew == 1


def test_set_imports_and_stores_added_are_counted(app, setcentrum):
    client = app.test_client()
    runner = app.test_cli_runner()
    before = scrape(client)
    assert runner.invoke(args=["stores", "import"]).exit_code == 0
    setcentrum.fault("garbage")
    assert runner.invoke(args=["stores", "import"]).exit_code != 0
    after = scrape(client)
    for outcome in ("ok", "BAD_RESPONSE"):
        grew = value(after, "sis_set_imports_total", outcome=outcome) - \
            value(before, "sis_set_imports_total", outcome=outcome)
        assert grew == 1, outcome
    assert value(after, "sis_set_stores_added_total") - value(before, "sis_set_stores_added_total") == 40
    assert value(after, "sis_stores", source="set") == 40


def test_job_run_and_lease_holder(app):
    client = app.test_client()
    before = scrape(client)
    earliest = time.time()
    JobRunner(app).tick()
    latest = time.time()
    after = scrape(client)
    for job in ("terminal_batches", "pending_registrations"):
        assert earliest <= value(after, "sis_job_last_success_timestamp_seconds", job=job) <= latest
        assert value(after, "sis_job_runs_total", job=job, outcome="ok") - \
            value(before, "sis_job_runs_total", job=job, outcome="ok") == 1
        assert value(after, "sis_job_duration_seconds_count", job=job) - \
            value(before, "sis_job_duration_seconds_count", job=job) == 1
    assert value(after, "sis_job_lease_holder", lease="jobs", holder=lease.HOLDER) == 1
    assert value(after, "sis_job_lease_expiry_timestamp_seconds", lease="jobs") > earliest


@pytest.mark.parametrize("address", ["10.0.0.5", "192.168.1.20", "2001:db8::1"])
def test_without_a_token_only_loopback_may_read(app, address):
    response = app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 403
    assert response.json["error"]["code"] == "FORBIDDEN"
    assert "METRICS_TOKEN" in response.json["error"]["message"]


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_reads_without_a_token(app, address):
    assert value(scrape(app.test_client(), address), "sis_database_up") == 1


def _same_config(app) -> dict:
    """The test app's settings, for a second app on the same database."""
    return {key: app.config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SECRET_KEY", "SIS_KEY_ENCRYPTION_KEY",
                                             "TESTING", "SIS_BOOTSTRAP_ADMIN", "SIS_INSTANCE_PATH")}


def test_behind_a_proxy_the_forwarded_address_decides(app, monkeypatch):
    monkeypatch.setenv("SIS_BEHIND_PROXY", "1")
    proxied = create_app(_same_config(app))
    client = proxied.test_client()
    outside = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert outside.status_code == 403 and outside.json["error"]["code"] == "FORBIDDEN"
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {METRICS_TOKEN}", "Bearer"])
def test_with_a_token_a_request_without_it_is_refused(app, monkeypatch, header):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", METRICS_TOKEN)
    headers = {"Authorization": header} if header else {}
    response = app.test_client().get("/metrics", headers=headers)  # loopback: the token is needed all the same
    assert response.status_code == 401
    assert response.json["error"]["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_with_the_token_any_address_reads(app, monkeypatch):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", METRICS_TOKEN)
    figures = scrape(app.test_client(), "10.0.0.5", Authorization=f"Bearer {METRICS_TOKEN}")
    assert value(figures, "sis_database_up") == 1


@pytest.mark.parametrize("token", ["short", "token with spaces inside it"])
def test_a_weak_metrics_token_stops_the_start(app, token):
    with pytest.raises(SisError) as refused:
        create_app(_same_config(app) | {"METRICS_TOKEN": token})
    assert refused.value.code == "CONFIG_INVALID" and "METRICS_TOKEN" in refused.value.message


# What gunicorn.conf.py says for the metrics (the lines the README gives).
GUNICORN_CONF = """
from stoloto.metrics_process import child_exit, prepare_folder
prepare_folder()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker_pids(master: int) -> set[int]:
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in children}


def test_gunicorn_workers_are_summed_and_a_dead_workers_counts_stay(app, stand, tmp_path):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: CASH_TOKEN, settings.READ_TIMEOUT: 20}, "t")
        contract_id = active_contract(stand, "MET-3")
        store("301", contract_id)
    (tmp_path / "gunicorn.conf.py").write_text(GUNICORN_CONF)
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left by an earlier server")  # emptied at the start
    port = _free_port()
    env = sis_env(app, tmp_path / "instance", SIS_SCHEDULER="0", PROMETHEUS_MULTIPROC_DIR=str(folder))
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(tmp_path / "gunicorn.conf.py"), "--workers", "2",
         "--worker-class", "sync", "--bind", f"127.0.0.1:{port}", "app:create_app_or_exit()"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def metrics() -> dict:
        return samples(requests.get(base + "/metrics", timeout=30).text)

    def up() -> bool:
        try:
            return len(_worker_pids(server.pid)) == 2 and requests.get(base + "/metrics", timeout=5).ok
        except requests.RequestException:
            return False

    try:
        wait_for(up, 60, "gunicorn's two workers")
        assert not (folder / "counter_999999.db").exists()
        # Each call waits 3 s at the stand; a sync worker takes one request at a time, so while the first
        # waits the second goes to the other worker.
        stand.fault("registration", "delay", count=2, seconds=3)
        answers = []

        def register(cash: int) -> None:
            answers.append(requests.post(base + REGISTRATION_URL, json={"store_code": "301", "cash_number": cash},
                                         headers={"Authorization": f"Bearer {CASH_TOKEN}"}, timeout=30))

        callers = [threading.Thread(target=register, args=(cash,)) for cash in (1, 2)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
        assert [answer.status_code for answer in answers] == [200, 200], [answer.text for answer in answers]
        assert value(metrics(), "sis_stoloto_calls_total", endpoint="registration", outcome="ok", code="") == 2

        workers = _worker_pids(server.pid)
        os.kill(min(workers), signal.SIGKILL)  # the master replaces it and runs child_exit
        wait_for(lambda: len(_worker_pids(server.pid)) == 2 and _worker_pids(server.pid) != workers, 30,
                 "a new worker")
        figures = metrics()
        assert value(figures, "sis_stoloto_calls_total", endpoint="registration", outcome="ok", code="") == 2
        assert value(figures, "sis_terminals", contract="MET-3", status="registered") == 2
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode(errors="replace")
    assert "Traceback" not in output, output


def test_grafana_dashboard_uses_only_metrics_sis_exports(app):
    dashboard = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    text = app.test_client().get("/metrics").get_data(as_text=True)
    exported = set()
    for family in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(family.type, [""])
        exported |= {family.name + suffix for suffix in suffixes}
    used = {name for panel in dashboard["panels"] for target in panel["targets"]
            for name in re.findall(r"\bsis_[a-z_]+", target["expr"])}
    assert used and used <= exported, used - exported
