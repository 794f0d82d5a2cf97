"""Benchmark: cash-register registrations per second over loopback (docs/protocols.md §3 → §1.3).

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
# As the Dockerfile serves it
GUNICORN = os.environ.get("BENCH_GUNICORN", "--workers 4 --threads 4 --worker-class gthread").split()
# Every request is a register never seen before: run r takes the keys from (r - 1) × 100,000 on,
# thread i of THREADS every THREADS-th of them (keys map one-to-one onto 100 stores × 9999 registers).
WRK_SCRIPT = """
local counter = 0
local index = 0
local threads = {}
failed = {}  -- status -> count of answers that were not 2xx, per thread (read back in done)
function setup(thread) thread:set("index", #threads); table.insert(threads, thread) end
function init(args) index = tonumber(wrk.thread:get("index")) or 0 end
function response(status, headers, body)
  if status < 200 or status > 299 then failed[status] = (failed[status] or 0) + 1 end
end
function done(summary, latency, requests)
  io.write("script ran\\n")  -- wrk falls back to plain GETs, silently, when a script does not load
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("failed")) do io.write(string.format("status %d: %d\\n", status, count)) end
  end
end
request = function()
  local n = %OFFSET% + counter * %THREADS% + index
  counter = counter + 1
  local body = string.format('{"store_code": "%d", "cash_number": %d}', 101 + n % 100, 1 + math.floor(n / 100))
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
                                  ["Authorization"] = "Bearer %TOKEN%"}, body)
end
"""


def wrk(url: str, folder: Path, run: int) -> tuple[float, int]:
    """Requests per second and the number of requests of one wrk run."""
    script = folder / "load.lua"
    script.write_text(WRK_SCRIPT.replace("%TOKEN%", _setup.TOKEN).replace("%THREADS%", str(THREADS))
                      .replace("%OFFSET%", str((run - 1) * 100_000)))
    result = subprocess.run(["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", f"{DURATION}s",
                             "-s", str(script), url], capture_output=True, text=True, check=True)
    if "script ran" not in result.stdout:
        raise SystemExit(f"wrk did not run the request script:\n{result.stdout}{result.stderr}")
    for status, count in re.findall(r"^status (\d+): (\d+)$", result.stdout, re.MULTILINE):
        print(f"   ! {url}: {count} answers with status {status}")
    return (float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1)),
            int(re.search(r"(\d+) requests in", result.stdout).group(1)))


def measure(url: str, folder: Path, run: int, server: int, stand: int) -> tuple[float, float, float]:
    """One wrk run: requests per second, and the CPU milliseconds per request of the server and the stand."""
    before = _setup.cpu_seconds(server), _setup.cpu_seconds(stand)
    rate, count = wrk(url, folder, run)
    server_ms, stand_ms = ((_setup.cpu_seconds(group) - start) * 1000 / count
                           for group, start in zip((server, stand), before, strict=True))
    return rate, server_ms, stand_ms


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
    batches = 10 * repeat + 2  # up to 1000/s for DURATION seconds per run, in batches of 1000
    with _setup.sis_beside_stand(folder, 5643, url, tls) as (app, stand_url, stand_ca, stand_pid):
        with app.app_context():
            from sqlalchemy import text

            from stoloto.extensions import db
            from stoloto.models import Store
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
        results = {"SIS": [], "lean": []}  # per run: (requests/s, server CPU ms, stand CPU ms) per request
        with (serve("app:create_app()", 5644, env) as sis_server,
              serve("lean_app:create_lean_app()", 5645, lean_env) as lean_server):
            _setup.wait_http("http://127.0.0.1:5644/auth/login")
            _setup.wait_http("http://127.0.0.1:5645/")
            servers = {"SIS": (sis_server, "http://127.0.0.1:5644/api/v1/cash-registers/registration"),
                       "lean": (lean_server, "http://127.0.0.1:5645/lean/registration")}
            for run in range(1, repeat + 1):
                for name, (server, endpoint) in servers.items():
                    results[name].append(measure(endpoint, folder, run, server.pid, stand_pid))
                print(f"run {run}: " + ", ".join(f"{name} {rate:.1f}/s ({own:.1f} ms CPU + stand {stand:.1f} ms)"
                                                 for name, (rate, own, stand) in
                                                 ((name, results[name][-1]) for name in servers)), flush=True)
        with app.app_context():
            registered = db.session.scalar(text("SELECT count(*) FROM cash_registers WHERE state = 'registered'"))
            doubles = db.session.scalar(text("SELECT count(*) - count(DISTINCT terminal_id) FROM cash_registers "
                                             "WHERE terminal_id IS NOT NULL"))
    database = "PostgreSQL" if "postgresql" in url else "SQLite"
    print(f"stand: {'HTTPS, mutual TLS' if tls else 'plain HTTP'}; database: {database}; "
          f"wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}s; gunicorn {' '.join(GUNICORN)}")
    sis, lean = ([statistics.median(run[i] for run in results[name]) for i in range(3)] for name in ("SIS", "lean"))
    print(f"SIS registrations:  {sis[0]:8.1f}/s median of {repeat}  ({registered} registered, {doubles} numbers twice)")
    print(f"lean reference:     {lean[0]:8.1f}/s median of {repeat}")
    print(f"SIS / lean:         {100 * sis[0] / lean[0]:7.1f} %   (target: ≥ 300/s and ≥ 50 %)")
    print(f"CPU per request, medians: SIS {sis[1]:.1f} ms + stand {sis[2]:.1f} ms; "
          f"lean {lean[1]:.1f} ms + stand {lean[2]:.1f} ms")


if __name__ == "__main__":
    main()
