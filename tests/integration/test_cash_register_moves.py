"""A store moved to another contract: its registers keep their numbers until the new contract is «Активный»."""
import pytest
from sqlalchemy import select

from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Terminal
from stoloto.services import activation, contracts, registers, stores, terminals
from stoloto.services.contracts import ContractInput
from tests.conftest import TOKEN
from tests.factories import active_contract, store
from tests.integration.register_runs import registered_now


def created_contract(number: str) -> int:
    """A contract in «Создан»: filled in, not activated."""
    return contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                   agent_inn="7707083893"), "t").id


def activate(stand, contract_id: int) -> None:
    contracts.prepare_activation(contract_id, "t")
    contract = db.session.get(Contract, contract_id)
    stand.register(contract.number)
    stand.confirm(contract.public_key_fingerprint)
    activation.activate(contract_id, "t")
    terminals.fetch_due_batches()


def move_store(store_id: int, contract_id: int) -> None:
    """«Привязать магазины к договору» for one store."""
    stores.bind_stores([store_id], contract_id, "t")


def terminal_status(number: str) -> str:
    return db.session.scalar(select(Terminal.status).where(Terminal.number == number))


def test_register_keeps_its_number_while_its_stores_new_contract_is_not_active(app, api, stand):
    """A register re-registers after every reboot: a store moved to a contract in «Создан» must not cost
    it its number (Stoloto still holds the binding, so a retired number is lost for good)."""
    with app.app_context():
        old = active_contract(stand, "OLD-3")
        store_id = store("141", old)
    first = api({"store_code": "141", "cash_number": 1})
    assert first.status_code == 200
    with app.app_context():
        move_store(store_id, created_contract("NEW-3"))
    calls = stand.calls("registration")
    again = api({"store_code": "141", "cash_number": 1})
    assert again.status_code == 200 and again.json == first.json
    assert first.json["contract_number"] == "OLD-3"
    state = api.client.get("/api/v1/cash-registers/141/1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert state.status_code == 200 and state.json == first.json
    with app.app_context():
        assert registers.finish_pending() == 0  # the job leaves it alone too
        assert terminal_status(first.json["terminal_number"]) == "registered"
    assert stand.calls("registration") == calls


@pytest.mark.parametrize("mover", ["job", "action", "api"])
def test_register_moves_to_the_new_contract_once_it_is_active(app, api, stand, web, mover):
    """The move (the old number retired, one of the new contract's taken) waits for «Активный»; then the
    job, «Зарегистрировать сейчас» or the register's own next request makes it."""
    with app.app_context():
        old = active_contract(stand, "OLD-4")
        new = created_contract("NEW-4")
        store_id = store("142", old)
    number = api({"store_code": "142", "cash_number": 1}).json["terminal_number"]
    with app.app_context():
        move_store(store_id, new)
    assert api({"store_code": "142", "cash_number": 1}).json["terminal_number"] == number
    with app.app_context():
        activate(stand, new)
        register_id = db.session.scalar(select(CashRegister.id))
    if mover == "job":
        with app.app_context():
            assert registers.finish_pending() == 1
    elif mover == "action":
        assert registered_now(web("operator"), [register_id]) == "Регистрация касс: зарегистрировано 1, ожидают 0."
    else:
        assert api({"store_code": "142", "cash_number": 1}).status_code == 200
    now = api.client.get("/api/v1/cash-registers/142/1", headers={"Authorization": f"Bearer {TOKEN}"}).json
    assert now["status"] == "REGISTERED" and now["contract_number"] == "NEW-4"
    assert now["terminal_number"] in stand.issued("NEW-4")
    with app.app_context():
        assert terminal_status(number) == "retired"
        assert terminal_status(now["terminal_number"]) == "registered"


def test_waiting_register_keeps_its_claim_until_the_new_contract_is_active(app, api, stand):
    """A register still waiting under the old contract waits for the new one, and its claimed number
    is retired only when it moves (Stoloto may have bound it: the call went unanswered)."""
    with app.app_context():
        old = active_contract(stand, "OLD-5")
        new = created_contract("NEW-5")
        store_id = store("143", old)
    stand.fault("registration", "html502", count=1)
    assert api({"store_code": "143", "cash_number": 1}).json["reason"] == "STOLOTO_UNAVAILABLE"
    with app.app_context():
        claimed = db.session.scalar(select(Terminal.number).where(Terminal.status == "claimed"))
        move_store(store_id, new)
    waiting = api({"store_code": "143", "cash_number": 1})
    assert waiting.status_code == 202 and waiting.json["reason"] == "CONTRACT_NOT_ACTIVE"
    with app.app_context():
        assert terminal_status(claimed) == "claimed"
        activate(stand, new)
        assert registers.finish_pending() == 1
        assert terminal_status(claimed) == "retired"
    now = api.client.get("/api/v1/cash-registers/143/1", headers={"Authorization": f"Bearer {TOKEN}"}).json
    assert now["contract_number"] == "NEW-5" and now["terminal_number"] in stand.issued("NEW-5")


def registered(api, code: str, cashes: range) -> dict[int, dict]:
    answers = {cash: api({"store_code": code, "cash_number": cash}).json for cash in cashes}
    assert {answer["status"] for answer in answers.values()} == {"REGISTERED"}
    return answers


def state_of(api, code: str, cash: int) -> dict:
    return api.client.get(f"/api/v1/cash-registers/{code}/{cash}", headers={"Authorization": f"Bearer {TOKEN}"}).json


@pytest.mark.parametrize("how", ["bind", "edit"])
def test_job_re_registers_the_registers_of_a_store_moved_to_another_active_contract(app, api, stand, web, how):
    """The job finds the registers of a moved store by themselves (an index, not a comparison of every register
    with its store) and re-registers each under the new contract; the other stores' registers are not touched."""
    with app.app_context():
        old, new = active_contract(stand, "OLD-6"), active_contract(stand, "NEW-6")
        moved_id = store("161", old)
        store("162", old)
    before = registered(api, "161", range(1, 4))
    kept = registered(api, "162", range(1, 3))
    operator = web("operator")
    if how == "bind":
        response = operator.post("/stores/bind/", {"ids": str(moved_id), "contract_id": str(new)})
    else:
        response = operator.post(f"/stores/edit/?id={moved_id}", {"code": "161", "contract_id": str(new),
                                                                  "name": "Магазин №161", "address": "г. Москва"})
    assert response.status_code == 302
    calls = stand.calls("registration")
    with app.app_context():
        assert registers.finish_pending() == 3
    assert stand.calls("registration") == calls + 3  # the moved store's registers, each once
    for cash, answer in before.items():
        now = state_of(api, "161", cash)
        assert now["status"] == "REGISTERED" and now["contract_number"] == "NEW-6"
        assert now["terminal_number"] in stand.issued("NEW-6")
        with app.app_context():
            assert terminal_status(answer["terminal_number"]) == "retired"
    assert {cash: state_of(api, "162", cash) for cash in kept} == kept
    with app.app_context():
        assert registers.finish_pending() == 0  # moved once: the next run has nothing to do
    assert stand.calls("registration") == calls + 3


def test_store_bound_back_before_the_job_keeps_its_registers_as_they_are(app, api, stand):
    """Moved to another contract and back before the job ran: nothing is left for the job to do."""
    with app.app_context():
        old, new = active_contract(stand, "OLD-7"), active_contract(stand, "NEW-7")
        store_id = store("171", old)
    before = registered(api, "171", range(1, 3))
    with app.app_context():
        move_store(store_id, new)
        move_store(store_id, old)
    calls = stand.calls("registration")
    with app.app_context():
        assert registers.finish_pending() == 0
    assert stand.calls("registration") == calls
    assert {cash: state_of(api, "171", cash) for cash in before} == before
