"""«Зарегистрировать сейчас» as the list's form presses it, and its run followed to the end through its JSON."""
import re
from collections import Counter

import requests
from sqlalchemy import func, select

from stoloto.extensions import db
from stoloto.models import CashRegister, RegistrationAttempt, Store, Terminal, utcnow
from tests.processes import wait_for

STARTED = re.compile(r"/registers/\?run=(\d+)$")


def press(browser, ids: list[int]):
    """«С отмеченными» → «Зарегистрировать сейчас» on the list, as the page's form sends it."""
    return browser.post("/registers/action/", {"action": "finish", "rowid": [str(i) for i in ids],
                                               "url": "/registers/"})


def started_run(response) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    match = STARTED.search(response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


def progress(browser, run: int) -> dict:
    response = browser.get(f"/registers/progress/?id={run}")
    assert response.status_code == 200
    return response.get_json()


def finished(browser, run: int) -> dict:
    """The run's last answer, once it is over."""
    answer = {}

    def over() -> bool:
        answer.update(progress(browser, run))
        return not answer["waiting"]
    wait_for(over, 120, "the run to finish")
    return answer


def registered_now(browser, ids: list[int]) -> str:
    """Presses «Зарегистрировать сейчас» on the registers and waits for the run's final notice."""
    return finished(browser, started_run(press(browser, ids)))["notice"]


def set_latency(stand, ms: int) -> dict:
    response = requests.post(stand.url + "/control/latency", json={"ms": ms}, verify=stand.ca_path, timeout=10)
    return {"status": response.status_code, **response.json()}


def registered_each_once(app, stand, contract_number: str, expected: int, crashed: bool = False) -> None:
    """Every register holds its own number, bound at Stoloto to exactly it, and moved to «registered» once."""
    with app.app_context():
        rows = db.session.execute(select(Store.code, CashRegister.cash_number, Terminal.number, CashRegister.state)
                                  .join(Store).join(Terminal, Terminal.id == CashRegister.terminal_id)).all()
        moves = Counter(db.session.scalars(select(RegistrationAttempt.cash_register_id)
                                           .where(RegistrationAttempt.state == "registered")))
        # A killed process gives nothing back: its claims on what it had finished stay until they expire.
        claims = CashRegister.claimed_until > utcnow() if crashed else CashRegister.claimed_until.is_not(None)
        claimed = db.session.scalar(select(func.count()).where(claims))
    assert len(rows) == expected and {row.state for row in rows} == {"registered"}
    assert len({row.number for row in rows}) == expected  # no number twice
    assert len(moves) == expected and set(moves.values()) == {1}  # no register advanced twice
    assert claimed == 0  # every claim was given back (after a crash: none still in force)
    bindings = [b for b in stand.state()["bindings"] if b["contract_number"] == contract_number]
    assert sorted((b["terminal_number"], b["store_code"], b["cash_number"]) for b in bindings) == \
        sorted((row.number, row.code, row.cash_number) for row in rows)
    assert stand.state()["executed"]["registration"] == expected  # Stoloto was asked once per register
