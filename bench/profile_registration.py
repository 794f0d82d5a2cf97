"""Profile: SIS's own CPU per registration, in-process (Flask test client), the stand in its own process.

Usage: .venv/bin/python bench/profile_registration.py [--profile [--cpu]]
Prints CPU and wall milliseconds per registration over 300 registrations after 300 warm-up ones;
with --profile, also the 25 functions with the most time of their own (cProfile); SORT, TOP and CALLERS
choose what is printed, DUMP=file keeps the whole profile for pstats. Function calls per registration (the
profile's count / ROUNDS) compare two versions where this shared machine's CPU time drifts by a third.
"""
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "300"))


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sis-profile-"))
    with _setup.sis_beside_stand(folder, 5743) as (app, _, _, _):
        with app.app_context():
            from stoloto.extensions import db
            from stoloto.models import Store
            contract_id = _setup.active_contract("PROFILE-1", batches=-(-3 * ROUNDS // 1000))
            db.session.add(Store(code="101", contract_id=contract_id, source="manual"))
            db.session.commit()
        client = app.test_client()
        headers = {"Authorization": f"Bearer {_setup.TOKEN}"}

        def register(first: int) -> None:
            for cash_number in range(first, first + ROUNDS):
                response = client.post("/api/v1/cash-registers/registration", headers=headers,
                                       json={"store_code": "101", "cash_number": cash_number})
                assert response.status_code == 200, response.get_json()

        register(1)  # warm-up: SQLAlchemy's statement cache, the TLS connection
        cpu, wall = time.process_time(), time.perf_counter()
        register(1 + ROUNDS)
        print(f"SIS per registration: {(time.process_time() - cpu) / ROUNDS * 1000:.1f} ms CPU, "
              f"{(time.perf_counter() - wall) / ROUNDS * 1000:.1f} ms wall")
        if "--profile" in sys.argv:
            # --cpu: CPU time (what the GIL and the cores pay), not wall time that includes waiting for the stand
            profiler = cProfile.Profile(time.process_time) if "--cpu" in sys.argv else cProfile.Profile()
            profiler.runcall(register, 1 + 2 * ROUNDS)
            if os.environ.get("DUMP"):
                profiler.dump_stats(os.environ["DUMP"])
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
            stats.print_stats(int(os.environ.get("TOP", "25")))
            if os.environ.get("CALLERS"):  # who calls a function, e.g. CALLERS=_get_protocol_attrs
                stats.print_callers(os.environ["CALLERS"])


if __name__ == "__main__":
    main()
