"""Benchmark: «Кассы» → «Выгрузить CSV / XLSX» of 200,000 registers — time and the process's peak memory growth.

Usage: .venv/bin/python bench/export.py [--database-url=postgresql+psycopg://postgres@127.0.0.1/test] [--repeat=3]

The database is filled once (bench/registers_list.py's 30,000 stores and 200,000 registers); each export then
runs in a fresh process that logs in, resets its peak resident set size (/proc/self/clear_refs), downloads
the whole file through the app (Flask's test client, chunk by chunk, nothing kept) and reports the wall
time of the request to its last byte, the process's CPU time, the time to its first byte, and VmHWM − VmRSS
before the request.
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
import registers_list  # noqa: E402

PASSWORD = "bench-password-1"
MEMORY_TARGET_MB = 100


def memory_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def measure(export_type: str, database_url: str, folder: Path) -> dict:
    """One export in this (fresh) process."""
    from app import create_app
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": _setup.SECRET,
                      "SIS_INSTANCE_PATH": str(folder), "SIS_BOOTSTRAP_ADMIN": False})
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    client.post("/auth/login", data={"login": "viewer", "password": PASSWORD, "csrf_token": token})
    client.get("/registers/")  # warm: the views, the templates, the connection pool
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # VmHWM := VmRSS
    before = memory_kb("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    response = client.get(f"/registers/export/{export_type}/", buffered=False)
    assert response.status_code == 200, response.status_code
    first_byte, size, lines = None, 0, 0
    for chunk in response.response:
        if first_byte is None:
            first_byte = time.perf_counter() - started
        size += len(chunk)
        lines += chunk.count(b"\n")
    response.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if export_type == "csv":
        assert lines == registers_list.REGISTERS + 1, lines
    return {"seconds": seconds, "cpu": cpu, "first_byte": first_byte, "mb": size / 2**20,
            "growth_mb": (memory_kb("VmHWM") - before) / 1024}


def fill(database_url: str, folder: Path) -> None:
    app = _setup.make_app(database_url, folder)
    with app.app_context():
        from stoloto.extensions import db
        from stoloto.models import Contract
        from stoloto.services import users
        contracts = [Contract(number=f"EXPORT-{n}", status="active", agent_inn="7707083893") for n in range(3)]
        db.session.add_all(contracts)
        db.session.commit()
        started = time.perf_counter()
        registers_list.fill([c.id for c in contracts])
        users.create_user("viewer", "viewer", PASSWORD)
        print(f"filled {registers_list.STORES} stores and {registers_list.REGISTERS} registers "
              f"in {time.perf_counter() - started:.1f} s")


def main() -> None:
    measuring = _setup.option(sys.argv[1:], "measure", "")
    folder = Path(_setup.option(sys.argv[1:], "folder", "") or tempfile.mkdtemp(prefix="sis-bench-export-"))
    database_url = _setup.database_url(sys.argv[1:], folder)
    if measuring:
        print(json.dumps(measure(measuring, database_url, folder)))
        return
    repeat = int(_setup.option(sys.argv[1:], "repeat", "3"))
    fill(database_url, folder)
    print(f"{'format':6} {'median s':>8} {'CPU s':>6} {'first byte s':>12} {'file MB':>7} {'peak growth MB':>14}"
          "   (each run: wall time / peak growth)")
    worst = 0.0
    for export_type in ("csv", "xlsx"):
        runs = []
        for _ in range(repeat):
            child = subprocess.run([sys.executable, __file__, f"--measure={export_type}", f"--folder={folder}",
                                    f"--database-url={database_url}"], capture_output=True, text=True, check=True,
                                   env={**os.environ, "SIS_SCHEDULER": "0"})
            runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
        growth = [run["growth_mb"] for run in runs]
        worst = max(worst, *growth)
        print(f"{export_type:6} {statistics.median(r['seconds'] for r in runs):8.1f} "
              f"{statistics.median(r['cpu'] for r in runs):6.1f} "
              f"{statistics.median(r['first_byte'] for r in runs):12.2f} {runs[0]['mb']:7.1f} "
              f"{statistics.median(growth):14.1f}   "
              + ", ".join(f"{r['seconds']:.1f} s / {r['growth_mb']:.0f} MB" for r in runs))
    print(f"worst peak memory growth: {worst:.1f} MB (target: ≤ {MEMORY_TARGET_MB} MB); "
          f"{'met' if worst <= MEMORY_TARGET_MB else 'NOT met'}")


if __name__ == "__main__":
    main()
