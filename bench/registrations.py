"""Benchmark: cash-register registrations per second over loopback (PROTOCOLS §3 → §1.3).

SIS as shipped (gunicorn as in the Dockerfile, the scheduler on) beside a lean reference endpoint
served the same way; both call the same Stoloto stand over keep-alive mutual TLS; wrk generates
the load. Both servers stay up and the runs alternate (SIS, lean, SIS, lean…), so that the
machine's drift between minutes falls on both alike; the medians are compared. Usage:
    .venv/bin/python bench/registrations.py [--database-url=postgresql+psycopg://postgres@127.0.0.1/test]
                                            [--stand=tls|plain] [--repeat=3]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

DURATION, CONNECTIONS, THREADS = 10, 32, 2
GUNICORN = os.environ.get("BENCH_GUNICORN", "--workers 4 --threads 4 --worker-class gthread").split()  # as the Dockerfile
# Every request is a register never seen before: run r takes the keys from (r - 1) × 100,000 on,
# thread i of THREADS every THREADS-th of them (keys map one-to-one onto 100 stores × 9999 registers).
WRK_SCRIPT = """
local counter = 0
local index = 0
local threads = 0
function setup(thread) thread:set("index", threads); threads = threads + 1 end
function init(args) index = tonumber(wrk.thread:get("index")) or 0 end
request = function()
  local n = %OFFSET% + counter * %THREADS% + index
  counter = counter + 1
  local body = string.format('{"store_code": "%d", "cash_number": %d}', 101 + n % 100, 1 + math.floor(n / 100))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %TOKEN%"}, body)
end
"""


def wrk(url: str, folder: Path, run: int) -> float:
    script = folder / "load.lua"
    script.write_text(WRK_SCRIPT.replace("%TOKEN%", _setup.TOKEN).replace("%THREADS%", str(THREADS))
                      .replace("%OFFSET%", str((run - 1) * 100_000)))
    result = subprocess.run(["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{DURATION}s",
                             "-s", str(script), url], capture_output=True, text=True, check=True)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if bad:
        print(f"   ! {bad.group(1)} answers were not 2xx")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))


def serve(target: str, port: int, env: dict):
    return _setup.process([sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}", target],
                          env=env)


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-"))
    url = _setup.database_url(sys.argv[1:], folder)
    tls = _setup.option(sys.argv[1:], "stand", "tls") == "tls"
    repeat = int(_setup.option(sys.argv[1:], "repeat", "3"))
    if not 1 <= repeat <= 9:
        raise SystemExit("--repeat: 1 to 9 (the keys of 9 runs fill the 9999 registers of 100 stores)")
    batches = 6 * repeat + 2  # up to 600/s for DURATION seconds per run, in batches of 1000
    with _setup.stoloto_stand(folder, 5643, tls) as (stand_url, stand_ca):
        app = _setup.make_app(url, folder)
        with app.app_context():
            from sqlalchemy import text

            from stoloto import settings
            from stoloto.extensions import db
            from stoloto.models import Store
            settings.save({settings.STOLOTO_URL: stand_url, settings.STOLOTO_CA_BUNDLE: stand_ca,
                           settings.CASH_API_TOKEN: _setup.TOKEN, settings.BATCH_SIZE: 1000}, "bench")
            stand = (stand_url, stand_ca)
            sis_contract = _setup.active_contract("BENCH-SIS", batches, stand)
            lean_contract = _setup.active_contract("BENCH-LEAN", batches, stand)
            db.session.add_all([Store(code=str(101 + i), contract_id=sis_contract, source="set") for i in range(100)])
            db.session.execute(text("CREATE TABLE lean_registrations (id INTEGER PRIMARY KEY, store_code TEXT, "
                                    "cash_number INTEGER, terminal_number TEXT)" if url.startswith("sqlite") else
                                    "CREATE TABLE lean_registrations (id SERIAL PRIMARY KEY, store_code TEXT, "
                                    "cash_number INTEGER, terminal_number TEXT)"))
            db.session.commit()
        env = _setup.sis_env(url, folder)
        lean_env = {**env, "LEAN_CONTRACT_ID": str(lean_contract), "LEAN_STOLOTO_URL": stand_url,
                    "LEAN_STOLOTO_CA": stand_ca, "SIS_SCHEDULER": "0", "PYTHONPATH": str(Path(__file__).parent)}
        results = {"SIS": [], "lean": []}
        with serve("app:create_app()", 5644, env), serve("lean_app:create_lean_app()", 5645, lean_env):
            _setup.wait_http("http://127.0.0.1:5644/auth/login")
            _setup.wait_http("http://127.0.0.1:5645/")
            for run in range(1, repeat + 1):
                results["SIS"].append(wrk("http://127.0.0.1:5644/api/v1/cash-registers/registration", folder, run))
                results["lean"].append(wrk("http://127.0.0.1:5645/lean/registration", folder, run))
                print(f"run {run}: SIS {results['SIS'][-1]:.1f}/s, lean {results['lean'][-1]:.1f}/s", flush=True)
        with app.app_context():
            registered = db.session.scalar(text("SELECT count(*) FROM cash_registers WHERE state = 'registered'"))
            doubles = db.session.scalar(text("SELECT count(*) - count(DISTINCT terminal_id) FROM cash_registers "
                                             "WHERE terminal_id IS NOT NULL"))
    database = "PostgreSQL" if "postgresql" in url else "SQLite"
    print(f"stand: {'HTTPS, mutual TLS' if tls else 'plain HTTP'}; database: {database}; wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s; gunicorn {' '.join(GUNICORN)}")
    sis, lean = statistics.median(results["SIS"]), statistics.median(results["lean"])
    print(f"SIS registrations:  {sis:8.1f}/s median of {repeat}  ({registered} registered, {doubles} numbers twice)")
    print(f"lean reference:     {lean:8.1f}/s median of {repeat}")
    print(f"SIS / lean:         {100 * sis / lean:7.1f} %   (target: ≥ 300/s and ≥ 50 %)")


if __name__ == "__main__":
    main()
