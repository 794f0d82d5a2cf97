"""Benchmark: CPU of one §1.3 call to the Stoloto stand, through SIS's client and through bare urllib3.

Both use the same keep-alive mutual-TLS connection pool; the difference is what `requests` adds.
Usage: .venv/bin/python bench/stoloto_call.py
"""
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

ROUNDS = 500


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="sis-bench-call-"))
    with _setup.sis_beside_stand(folder, 5853) as (app, url, ca, _):
        with app.app_context():
            from stoloto.extensions import db
            from stoloto.models import Contract, Terminal
            from stoloto.services.gateway import contract_client
            contract_id = _setup.active_contract("CALL-1", batches=4, stand=(url, ca))
            client = contract_client(contract_id, db.session.get(Contract, contract_id).certificate_pem)
            numbers = iter(db.session.scalars(db.select(Terminal.number)).all())
        body = {"contract_number": "CALL-1", "store_code": "101", "cash_number": 1}
        pool = client.adapter.poolmanager.connection_from_url(url)  # the same connections

        def through_client() -> None:
            assert client.register_terminal(str(uuid.uuid4()), next(numbers), body).ok

        def through_urllib3() -> None:
            answer = pool.urlopen("POST", f"/api/v1/terminals/{next(numbers)}/registration",
                                  body=json.dumps(body).encode(), redirect=False, retries=False,
                                  headers={"X-Request-Id": str(uuid.uuid4()), "Content-Type": "application/json"})
            assert answer.status == 200 and json.loads(answer.data)["status"] == "REGISTERED"

        for name, call in (("SIS client (requests)", through_client), ("bare urllib3", through_urllib3)) * 2:
            for _ in range(50):
                call()
            started = time.process_time()
            for _ in range(ROUNDS):
                call()
            print(f"{name:22} {(time.process_time() - started) / ROUNDS * 1000:.2f} ms CPU per call")


if __name__ == "__main__":
    main()
