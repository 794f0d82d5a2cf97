"""Benchmark: a remote Stoloto (the stand answering every call in 100 ms) against a backlog, and against the API.

1. Drain: backlogs of waiting registers finished by one job run (`registers.finish_pending_report`, as the
   job and `flask registers finish` run it) at several «Одновременных запросов к Столото»; the rate is
   printed beside its ceiling, concurrency × 10/s. Target: 2,000 in ≤ 20 s (≥ 100/s) at the default.
2. API: 32 connections (wrk) registering new registers through SIS under gunicorn (--api=WORKERSxTHREADS,
   default 4×8 = 32 threads), each request one §1.3 call; the rate beside what the threads and the latency
   allow, min(32 connections, threads) × 10/s = 320/s. Target: ≥ 80 %. The same load with no latency
   shows what the CPU and the database allow; how the workers took the connections shows the threads'.
Usage:
    .venv/bin/python bench/drain.py [--database-url=postgresql+psycopg://postgres@127.0.0.1:5432/test_drain]
                                    [--levels=1:100,8:2000,16:2000] [--part=drain|api|both] [--api=4x8]
"""
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
import registrations  # noqa: E402

LATENCY_MS = 100
STORE_REGISTERS = 100  # registers per store of a backlog


def set_latency(stand: tuple[str, str], ms: int) -> None:
    url, ca = stand
    requests.post(url + "/control/latency", json={"ms": ms}, verify=ca, timeout=10).raise_for_status()


def backlog(contract_id: int, first_store: int, count: int) -> None:
    """`count` registers that asked before the contract was «Активный»: waiting for the job, oldest first."""
    from stoloto.extensions import db
    from stoloto.models import CashRegister, Store
    stores = [Store(code=str(first_store + i), contract_id=contract_id, source="set")
              for i in range(-(-count // STORE_REGISTERS))]
    db.session.add_all(stores)
    db.session.flush()
    db.session.execute(db.insert(CashRegister), [
        {"store_id": stores[n // STORE_REGISTERS].id, "cash_number": 1 + n % STORE_REGISTERS,
         "contract_id": contract_id, "state": "pending", "reason": "CONTRACT_NOT_ACTIVE"} for n in range(count)])
    db.session.commit()


def drain(app, stand: tuple[str, str], levels: list[tuple[int, int]]) -> list[str]:
    from stoloto import settings
    from stoloto.services import registers
    lines = []
    with app.app_context():
        settings.save({settings.JOB_INTERVAL: 600}, "bench")  # one run drains the whole backlog
        contract_id = _setup.active_contract("DRAIN-1", -(-sum(count for _, count in levels) // 1000), stand)
        set_latency(stand, LATENCY_MS)
        for index, (concurrency, count) in enumerate(levels):
            backlog(contract_id, 10_000 * (index + 1), count)
            settings.save({settings.STOLOTO_CONCURRENCY: concurrency}, "bench")
            started = time.perf_counter()
            report = registers.finish_pending_report()
            seconds = time.perf_counter() - started
            rate, ceiling = count / seconds, concurrency * 1000 / LATENCY_MS
            target = ""
            if concurrency == settings.BY_KEY[settings.STOLOTO_CONCURRENCY].default:
                met = report.registered == count and seconds * 2000 / count <= 20
                target = f"; the default: target 2,000 in ≤ 20 s (≥ 100/s) {'met' if met else 'NOT met'}"
            lines.append(f"drain, concurrency {concurrency:2d}: {report.registered} of {count} registered in "
                         f"{seconds:5.1f} s = {rate:6.1f}/s; ceiling {concurrency} × 10/s = {ceiling:.0f}/s "
                         f"({100 * rate / ceiling:.0f} %); still waiting {report.waiting}{target}")
            print(lines[-1], flush=True)
        set_latency(stand, 0)
    return lines


def api(app, stand: tuple[str, str], stand_pid: int, url: str, folder: Path, workers: int, threads: int) -> list[str]:
    from stoloto.extensions import db
    from stoloto.models import Store
    with app.app_context():
        contract_id = _setup.active_contract("API-1", 12, stand)
        db.session.add_all([Store(code=str(101 + i), contract_id=contract_id, source="set") for i in range(100)])
        db.session.commit()
    registrations.GUNICORN[:] = []  # gunicorn.conf.py decides, as in the image, from SIS_WORKERS and SIS_THREADS
    lines = []
    allowed = min(registrations.CONNECTIONS, workers * threads) * 1000 / LATENCY_MS
    environment = {**_setup.sis_env(url, folder), "SIS_WORKERS": str(workers), "SIS_THREADS": str(threads)}
    with registrations.serve("app:create_app()", 5744, environment) as server:
        _setup.wait_http("http://127.0.0.1:5744/auth/login")
        endpoint = "http://127.0.0.1:5744/api/v1/cash-registers/registration"
        carried, served = [], []
        for run, latency in ((1, LATENCY_MS), (2, LATENCY_MS), (3, 0)):
            set_latency(stand, latency)
            before, stand_before = _setup.cpu_seconds(server.pid), _setup.cpu_seconds(stand_pid)
            ticks = _setup.machine_ticks()
            started = time.perf_counter()
            spread: list[int] = []
            sampler = threading.Timer(registrations.DURATION / 2, lambda into=spread: into.extend(
                connections_per_worker(5744)))
            sampler.start()
            rate, count = registrations.wrk(endpoint, folder, run)
            sampler.join()
            busy = (_setup.cpu_seconds(server.pid) - before) / (time.perf_counter() - started)
            cpu_ms = (_setup.cpu_seconds(server.pid) - before) * 1000 / count
            stand_ms = (_setup.cpu_seconds(stand_pid) - stand_before) * 1000 / count
            cores_busy, stolen = _setup.machine_share(ticks, _setup.machine_ticks())
            machine = (f"machine: load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores {cores_busy:.0f} % busy, "
                       f"{stolen:.0f} % stolen by the host")
            if latency:
                carried.append(rate)
                served.append(sum(min(n, threads) for n in spread))
                took = registrations.CONNECTIONS * 1000 / rate  # each connection: one request after another
                lines.append(f"API, {registrations.CONNECTIONS} connections, {workers}×{threads} threads, "
                             f"Stoloto {latency} ms: {rate:6.1f}/s of {allowed:.0f}/s allowed "
                             f"({100 * rate / allowed:.0f} %, target ≥ 80 %: "
                             f"{'met' if rate >= 0.8 * allowed else 'NOT met'}); a request took {took:.0f} ms: "
                             f"Stoloto {latency}, SIS's CPU {cpu_ms:.1f}, the stand's {stand_ms:.1f}, waiting for a "
                             f"core, the GIL or the database {took - latency - cpu_ms - stand_ms:.0f}; "
                             f"SIS {busy:.2f} cores busy; {machine}; connections per worker {spread}: "
                             f"{served[-1]} served at once")
            else:
                lines.append(f"API, same load, Stoloto at once: {rate:6.1f}/s (what CPU and database allow); "
                             f"server CPU {cpu_ms:.1f} ms per request, {busy:.2f} cores busy; the stand's CPU "
                             f"{stand_ms:.1f} ms; {machine}")
                lines.append(binding_limit(max(carried), rate, allowed, max(served), cores_busy))
            print(lines[-1], flush=True)
    return lines


def binding_limit(carried: float, at_once: float, allowed: float, served: int, cores_busy: float) -> str:
    """Which limit binds the API under latency: the threads, the CPU (and database), or queueing for them."""
    if at_once < 0.8 * allowed:
        return (f"binds: CPU and database — with Stoloto answering at once this machine carries {at_once:.0f}/s "
                f"(its cores {cores_busy:.0f} % busy), less than 80 % of the {allowed:.0f}/s that threads and "
                f"latency allow: no number of threads reaches the target here")
    if served < 0.9 * registrations.CONNECTIONS:  # a few are always between one request and the next
        return (f"binds: threads — only {served} of {registrations.CONNECTIONS} connections had a thread at once")
    return (f"binds: queueing for the CPU — the connections had threads and the machine carries {at_once:.0f}/s "
            f"with Stoloto answering at once; at {carried:.0f}/s the requests wait for a core, their worker's GIL "
            f"and SQLite's write lock (fewer CPU milliseconds per request shorten the wait)")


def connections_per_worker(port: int) -> list[int]:
    """wrk's keep-alive connections as gunicorn's workers accepted them: a worker serves min(its, threads) at once."""
    listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True).stdout
    return sorted(Counter(re.findall(r"pid=(\d+)", listing)).values(), reverse=True)


def main() -> None:
    argv = sys.argv[1:]
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-drain-"))
    url = _setup.database_url(argv, folder)
    levels = [tuple(map(int, level.split(":"))) for level in _setup.option(argv, "levels", "1:100,8:2000,16:2000")
              .split(",")]
    part = _setup.option(argv, "part", "both")
    workers, threads = map(int, _setup.option(argv, "api", "4x8").split("x"))
    if part != "drain" and not registrations.shutil.which("wrk"):
        raise SystemExit("wrk is needed for the API part: apt-get install -y wrk")
    lines = []
    with _setup.sis_beside_stand(folder, 5743, url) as (app, stand_url, stand_ca, stand_pid):
        stand = (stand_url, stand_ca)
        if part in ("drain", "both"):
            lines += drain(app, stand, levels)
        if part in ("api", "both"):
            lines += api(app, stand, stand_pid, url, folder, workers, threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    database = "PostgreSQL" if "postgresql" in url else "SQLite"
    print(f"\n{database}, commit {commit}, stand over mutual TLS answering in {LATENCY_MS} ms; targets: "
          f"2,000 drained in ≤ 20 s (≥ 100/s) at the default concurrency; API ≥ 80 % of what threads and "
          f"latency allow")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
