"""2,000 registrations from 32 threads: each register one number, no number twice, none lost, and «Обзор»'s
counters count each registration and each number used once."""
import threading
from collections import defaultdict

from sqlalchemy import func, select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import CashRegister, Terminal
from stoloto.services import terminals
from tests.conftest import TOKEN, URL, cell, titles
from tests.factories import activated_contract, store

THREADS, DISTINCT, REPEATS = 32, 1500, 500


def test_concurrent_registrations_claim_each_terminal_once(app, stand, web):
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN, settings.BATCH_SIZE: 1000,
                       settings.REFILL_THRESHOLD: 100000,
                       # 32 threads handshake TLS with the stand at once: on a loaded CI machine a handshake
                       # took longer than the default 5 s, and a register waited for the job instead.
                       settings.CONNECT_TIMEOUT: 30, settings.READ_TIMEOUT: 30}, "t")
        contract_id = activated_contract(stand, "LOAD-1")
        terminals.fetch_due_batches()
        terminals.fetch_due_batches()
        assert terminals.pool_counts(contract_id) == {"free": 2000}
        for code in range(201, 216):
            store(str(code), contract_id)
    registers = [(str(201 + i % 15), 1 + i // 15) for i in range(DISTINCT)]
    requests = registers + registers[:REPEATS]  # some registers ask twice, possibly at the same moment
    answers = defaultdict(set)
    failures = []
    lock = threading.Lock()

    def work(chunk):
        client = app.test_client()
        for store_code, cash_number in chunk:
            response = client.post(URL, json={"store_code": store_code, "cash_number": cash_number},
                                   headers={"Authorization": f"Bearer {TOKEN}"})
            with lock:
                if response.status_code != 200:
                    failures.append((store_code, cash_number, response.status_code, response.get_json()))
                else:
                    answers[(store_code, cash_number)].add(response.json["terminal_number"])

    threads = [threading.Thread(target=work, args=(requests[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert len(answers) == DISTINCT
    assert all(len(numbers) == 1 for numbers in answers.values())  # the same register, the same number
    numbers = [next(iter(n)) for n in answers.values()]
    assert len(set(numbers)) == DISTINCT  # no number twice
    with app.app_context():
        assert terminals.pool_counts(contract_id) == {"registered": DISTINCT, "free": 2000 - DISTINCT}
        assert db.session.scalar(select(func.count()).select_from(CashRegister)) == DISTINCT
        stored = set(db.session.scalars(select(Terminal.number)
                                        .join(CashRegister, CashRegister.terminal_id == Terminal.id)))
        assert stored == set(numbers)
    bound = {b["terminal_number"]: (b["store_code"], b["cash_number"]) for b in stand.state()["bindings"]}
    assert {bound[n] for n in numbers} == set(answers)  # Stoloto holds exactly the same bindings
    page = web("viewer").get("/").get_data(as_text=True)
    assert any(title.endswith(f": зарегистрированы — {DISTINCT}") for title in titles(page, "registrations-chart"))
    assert cell(page, "pool-free") == [str(2000 - DISTINCT)]
    assert cell(page, "pool-forecast") == ["Хватит примерно на 2 дня."]  # 500 free, 1,500 used in 7 days
