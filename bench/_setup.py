"""Shared set-up of the benchmarks: a Stoloto stand process, a migrated database, an active contract."""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SECRET = "benchmark-secret-key-with-plenty-of-entropy-0123456789"
TOKEN = "benchmark-cash-api-token-0123456789"


def wait_http(url: str, verify=True, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, verify=verify, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


@contextmanager
def process(args: list[str], env: dict | None = None, cwd: Path = ROOT):
    proc = subprocess.Popen(args, cwd=cwd, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


@contextmanager
def stoloto_stand(folder: Path, port: int, tls: bool = True):
    """The stand in its own process; plain HTTP (docs/protocols.md allows it for tests) shows SIS without TLS costs."""
    with process([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--port", str(port),
                  "--data-dir", str(folder / "stand"), "--auto-confirm", "--auto-register", "--keep-alive", "--quiet",
                  *([] if tls else ["--no-tls"])]) as stand:
        url, ca = f"{'https' if tls else 'http'}://127.0.0.1:{port}", str(folder / "stand" / "ca.pem")
        deadline = time.monotonic() + 30
        while not os.path.exists(ca) and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_http(url + "/control/state", verify=ca)
        yield url, ca, stand.pid


@contextmanager
def sis_beside_stand(folder: Path, port: int, database_url: str | None = None, tls: bool = True):
    """The stand in its own process and a migrated SIS app set to call it (API token, batches of 1000).

    Yields (app, stand URL, stand CA file, stand process id).
    """
    with stoloto_stand(folder, port, tls) as (url, ca, pid):
        app = make_app(database_url or f"sqlite:///{folder / 'bench.db'}", folder)
        with app.app_context():
            from stoloto import settings
            settings.save({settings.STOLOTO_URL: url, settings.STOLOTO_CA_BUNDLE: ca,
                           settings.CASH_API_TOKEN: TOKEN, settings.BATCH_SIZE: 1000}, "bench")
        yield app, url, ca, pid


def machine_ticks() -> list[int]:
    """The machine's CPU time by kind since boot (/proc/stat: user, nice, system, idle, iowait, irq, softirq, steal)."""
    with open("/proc/stat") as handle:
        return [int(value) for value in handle.readline().split()[1:9]]


def machine_share(before: list[int], after: list[int]) -> tuple[float, float]:
    """How the machine's cores spent a span, in %: busy, and stolen by the host (a shared VM's neighbours)."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent) or 1
    idle, steal = spent[3] + spent[4], spent[7]
    return 100 * (total - idle - steal) / total, 100 * steal / total


def cpu_seconds(group: int) -> float:
    """CPU time (user + system) of the live processes of a process group, e.g. a server and its workers."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:  # after the name: state, ppid, pgrp, … utime (11), stime (12)
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def sis_env(database_url: str, folder: Path) -> dict:
    return {"DATABASE_URL": database_url, "SECRET_KEY": SECRET, "SIS_INSTANCE_PATH": str(folder),
            "SIS_BOOTSTRAP_ADMIN": "0"}


def make_app(database_url: str, folder: Path):
    os.environ.update(sis_env(database_url, folder), SIS_SCHEDULER="0")
    from flask_migrate import upgrade
    from sqlalchemy import MetaData, create_engine

    from app import create_app
    engine = create_engine(database_url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET,
                      "SIS_INSTANCE_PATH": str(folder), "SIS_BOOTSTRAP_ADMIN": False})
    with app.app_context():
        upgrade()
    return app


def open_app(database_url: str, folder: Path):
    """The app on a database filled before (e.g. by scale_pg.py --generate), migrated to the newest revision."""
    os.environ.update(sis_env(database_url, folder), SIS_SCHEDULER="0")
    from flask_migrate import upgrade

    from app import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": SECRET,
                      "SIS_INSTANCE_PATH": str(folder), "SIS_BOOTSTRAP_ADMIN": False})
    with app.app_context():
        upgrade()
    return app


def active_contract(number: str, batches: int, stand: tuple[str, str] | None = None) -> int:
    """A contract activated at the stand (auto-register, auto-confirm) with batches × 1000 free terminals.

    More than 10 batches need the stand's (url, ca): the contract is registered there first with a
    higher terminal limit than auto-registration gives.
    """
    from stoloto.services import activation, contracts, terminals
    from stoloto.services.contracts import ContractInput
    if stand is not None:
        url, ca = stand
        requests.post(url + "/control/contracts", verify=ca, timeout=10, json={
            "contract_number": number, "contract_date": "2026-01-15", "agent_inn": "7707083893",
            "terminal_limit": batches * 1000}).raise_for_status()
    contract = contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "bench")
    contracts.prepare_activation(contract.id, "bench")
    activation.activate(contract.id, "bench")
    for _ in range(batches):
        terminals.fetch_batch(contract.id, force=True)
    return contract.id


def option(argv: list[str], name: str, default: str) -> str:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


def database_url(argv: list[str], folder: Path) -> str:
    return option(argv, "database-url", f"sqlite:///{folder / 'bench.db'}")
