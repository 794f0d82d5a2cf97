"""The cash-register API (docs/protocols.md §3) against the Stoloto stand (§1.3) over real HTTPS."""
import json

import pytest
from sqlalchemy import select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, RegistrationAttempt, Store, Terminal
from stoloto.services import contracts, registers, stores, terminals
from stoloto.services.contracts import ContractInput
from tests.conftest import TOKEN, URL
from tests.factories import active_contract, store
from tests.integration.register_runs import press, registered_now


def test_registered_register_gets_a_number_and_keeps_it(app, api, stand):
    with app.app_context():
        contract_id = active_contract(stand)
        store("101", contract_id)
    first = api({"store_code": "101", "cash_number": 3, "serial_number": "SN-3"})
    assert first.status_code == 200, first.json
    assert first.json["status"] == "REGISTERED" and first.json["contract_number"] == "REG-1"
    number = first.json["terminal_number"]
    assert number in stand.issued("REG-1")
    again = api({"store_code": "101", "cash_number": 3})
    assert again.status_code == 200 and again.json["terminal_number"] == number
    binding = [b for b in stand.state()["bindings"] if b["terminal_number"] == number]
    assert binding and binding[0]["store_code"] == "101" and binding[0]["cash_number"] == 3
    state = api.client.get("/api/v1/cash-registers/101/3", headers={"Authorization": f"Bearer {TOKEN}"})
    assert state.status_code == 200 and state.json == first.json


@pytest.mark.parametrize("body, field", [
    ({"cash_number": 1}, "store_code"),
    ({"store_code": 101, "cash_number": 1}, "store_code"),
    ({"store_code": "10a", "cash_number": 1}, "store_code"),
    ({"store_code": "101", "cash_number": 0}, "cash_number"),
    ({"store_code": "101", "cash_number": 10000}, "cash_number"),
    ({"store_code": "101", "cash_number": "3"}, "cash_number"),
    ({"store_code": "101", "cash_number": True}, "cash_number"),
    ({"store_code": "101", "cash_number": 1, "serial_number": 5}, "serial_number"),
    ({"store_code": "101", "cash_number": 1, "serial_number": "x" * 65}, "serial_number"),
])
def test_invalid_input_is_a_validation_error(api, body, field):
    response = api(body)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR" and field in response.json["error"]["fields"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"null"])
def test_malformed_body_is_a_validation_error(api, raw):
    response = api.client.post(URL, data=raw, content_type="application/json",
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400 and response.json["error"]["code"] == "VALIDATION_ERROR"


def test_oversized_body_is_413(api):
    body = json.dumps({"store_code": "101", "cash_number": 1, "pad": "x" * 70000})
    response = api.client.post(URL, data=body, content_type="application/json",
                               headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 413 and response.json["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("token", [None, "wrong-token-wrong-token", TOKEN + "x", ""])
def test_missing_or_wrong_token_is_401(api, token):
    response = api({"store_code": "101", "cash_number": 1}, token=token)
    assert response.status_code == 401 and response.json["error"]["code"] == "UNAUTHORIZED"


def test_api_needs_no_csrf_but_admin_still_does(app, api):
    assert api({"store_code": "999", "cash_number": 1}).status_code == 404  # no CSRF token sent


def test_unknown_store_is_404_and_unbound_store_is_409(app, api):
    assert api({"store_code": "999", "cash_number": 1}).json["error"]["code"] == "STORE_UNKNOWN"
    with app.app_context():
        store("102", None)
    response = api({"store_code": "102", "cash_number": 1})
    assert response.status_code == 409 and response.json["error"]["code"] == "STORE_NOT_BOUND"
    never = api.client.get("/api/v1/cash-registers/102/1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert never.status_code == 404


def test_pending_until_the_contract_is_active(app, api, stand):
    from stoloto.services import activation, contracts
    from stoloto.services.contracts import ContractInput
    with app.app_context():
        contract_id = contracts.create_contract(ContractInput(number="LATE-1", contract_date="15.01.2026",
                                                              agent_inn="7707083893"), "t").id
        store("103", contract_id)
    response = api({"store_code": "103", "cash_number": 1})
    assert response.status_code == 202
    assert response.json["status"] == "PENDING" and response.json["reason"] == "CONTRACT_NOT_ACTIVE"
    with app.app_context():
        contracts.prepare_activation(contract_id, "t")
        contract = db.session.get(Contract, contract_id)
        stand.register("LATE-1")
        stand.confirm(contract.public_key_fingerprint)
        activation.activate(contract.id, "t")
        terminals.fetch_due_batches()
        assert registers.finish_pending() == 1
    assert api({"store_code": "103", "cash_number": 1}).json["status"] == "REGISTERED"


def test_pending_without_free_terminals_nudges_the_batch_job(app, api, stand):
    from stoloto import signals
    nudged = []
    signals.terminals_needed.connect(receiver := lambda sender, **kw: nudged.append(sender))
    try:
        with app.app_context():
            contract_id = active_contract(stand, "FEW-1")
            store("104", contract_id)
        answers = [api({"store_code": "104", "cash_number": n}) for n in range(1, 7)]  # 5 terminals, 6 registers
        assert [a.status_code for a in answers] == [200] * 5 + [202]
        assert answers[-1].json["reason"] == "NO_FREE_TERMINALS"
        assert nudged == [contract_id]
        with app.app_context():
            terminals.fetch_due_batches()
            assert registers.finish_pending() == 1
    finally:
        signals.terminals_needed.disconnect(receiver)
    assert api({"store_code": "104", "cash_number": 6}).json["status"] == "REGISTERED"


def test_stoloto_unavailable_keeps_the_claim_and_finishes_later(app, api, stand, web):
    with app.app_context():
        contract_id = active_contract(stand, "DOWN-1")
        store("105", contract_id)
    stand.fault("registration", "html502", count=1)
    response = api({"store_code": "105", "cash_number": 1})
    assert response.status_code == 202 and response.json["reason"] == "STOLOTO_UNAVAILABLE"
    with app.app_context():
        claimed = db.session.scalar(select(CashRegister)).terminal.number
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "cash_register")).all()
        assert [(e.action, e.result) for e in journal] == [("Регистрация кассы в Столото", "error")]
        assert f"Магазин 105, касса 1, терминал {claimed}" in journal[0].details and "502" in journal[0].details
    assert f"Магазин 105, касса 1, терминал {claimed}" in web("viewer").get("/").get_data(as_text=True)  # «Обзор»
    with app.app_context():
        assert registers.finish_pending() == 1
    final = api({"store_code": "105", "cash_number": 1})
    assert final.json == {"status": "REGISTERED", "terminal_number": claimed, "contract_number": "DOWN-1"}


def test_job_asks_stoloto_once_per_contract_while_it_fails(app, api, stand):
    """Stoloto failing (or hanging until the read timeout) must not hold the job for every register."""
    with app.app_context():
        failing = active_contract(stand, "DOWN-2")
        healthy = active_contract(stand, "UP-2")
        store("111", failing)
        store("112", healthy)
    stand.fault("registration", "html502", count=1)  # the API then holds off this contract's Stoloto
    for cash_number in (1, 2, 3):
        assert api({"store_code": "111", "cash_number": cash_number}).json["reason"] == "STOLOTO_UNAVAILABLE"
    stand.fault("registration", "html502", count=3)  # one for register 113 now, one per contract in the job
    with app.app_context():
        db.session.execute(db.update(CashRegister).values(last_attempt_at=None))  # all due at once
        db.session.commit()
        store("113", healthy)
    assert api({"store_code": "113", "cash_number": 1}).json["reason"] == "STOLOTO_UNAVAILABLE"
    calls = stand.calls("registration")
    with app.app_context():
        assert registers.finish_pending() == 0  # one failing call per contract, then the run moves on
    assert stand.calls("registration") == calls + 2
    with app.app_context():
        assert registers.finish_pending() == 4  # Stoloto is back: everything waiting is finished
    assert stand.calls("registration") == calls + 6


def test_while_stoloto_fails_the_api_does_not_wait_for_it_again(app, api, stand):
    """One unanswered call is enough: the next registers answer PENDING at once, the job finishes them."""
    with app.app_context():
        contract_id = active_contract(stand, "HOLD-1")
        store("121", contract_id)
    stand.fault("registration", "html502", count=1)
    calls = stand.calls("registration")
    for cash_number in (1, 2, 3):
        answer = api({"store_code": "121", "cash_number": cash_number})
        assert answer.status_code == 202 and answer.json["reason"] == "STOLOTO_UNAVAILABLE"
    assert stand.calls("registration") == calls + 1  # only the first register asked Stoloto
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).where(CashRegister.terminal_id.is_not(None))) == 3
        assert registers.finish_pending() == 3  # the job always asks: Stoloto is back
    assert api({"store_code": "121", "cash_number": 4}).status_code == 200  # and so the API asks again
    assert stand.calls("registration") == calls + 5


def test_number_bound_elsewhere_is_retired_and_the_next_one_used(app, api, stand):
    with app.app_context():
        contract_id = active_contract(stand, "BOUND-1")
        store("106", contract_id)
    stand.fault("registration", "error", code="TERMINAL_ALREADY_BOUND", count=1)
    response = api({"store_code": "106", "cash_number": 1})
    assert response.status_code == 200
    with app.app_context():
        assert terminals.pool_counts(contract_id) == {"retired": 1, "registered": 1, "free": 3}
        history = db.session.scalars(select(RegistrationAttempt.details)).all()
        assert any("выведен" in h for h in history)
        journal = db.session.scalars(select(AuditEvent.details).where(AuditEvent.result == "error")).all()
        assert len(journal) == 1 and "TERMINAL_ALREADY_BOUND" in journal[0]


def test_rebinding_a_store_registers_again_and_retires_old_numbers(app, api, stand):
    with app.app_context():
        first = active_contract(stand, "OLD-1")
        second = active_contract(stand, "NEW-1")
        store_id = store("107", first)
    old = api({"store_code": "107", "cash_number": 1}).json["terminal_number"]
    with app.app_context():
        stores.bind_stores([store_id], second, "t")  # «Привязать магазины к договору»
        assert registers.finish_pending() == 1
        retired = db.session.scalar(select(Terminal).where(Terminal.number == old))
        assert retired.status == "retired"
    now = api({"store_code": "107", "cash_number": 1}).json
    assert now["contract_number"] == "NEW-1" and now["terminal_number"] != old
    assert now["terminal_number"] in stand.issued("NEW-1")


def test_unknown_api_path_answers_json(api):
    response = api.client.get("/api/v1/nothing-here", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404 and response.json["error"]["code"]


def test_openapi_document_describes_both_operations(api):
    document = api.client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {"/cash-registers/registration", "/cash-registers/{store_code}/{cash_number}"}
    assert set(document["paths"]["/cash-registers/registration"]["post"]["responses"]) == {
        "200", "202", "400", "401", "404", "409", "413"}


def test_stoloto_not_configured_is_pending_not_an_error(app, api, stand):
    with app.app_context():
        contract_id = active_contract(stand, "NOCONF-1")
        store("108", contract_id)
        settings.save({settings.STOLOTO_URL: ""}, "t")
    response = api({"store_code": "108", "cash_number": 1})
    assert response.status_code == 202 and response.json["reason"] == "STOLOTO_UNAVAILABLE"


def test_register_recorded_meanwhile_by_another_request_keeps_its_number(app, api, stand):
    """Two requests for a new register at once: the one that loses the insert takes the winner's number."""
    with app.app_context():
        contract_id = active_contract(stand)
        store("101", contract_id)
        with db.engine.connect() as connection:
            late = registers._find(connection, "101", 4)  # read before the register existed
        assert late["id"] is None
        winner = api({"store_code": "101", "cash_number": 4})
        assert winner.status_code == 200
        free_before = terminals.free_count(contract_id)
        with db.engine.connect() as connection:
            state = registers._advance(connection, late)
        assert (state.status, state.terminal_number) == ("REGISTERED", winner.json["terminal_number"])
        assert terminals.free_count(contract_id) == free_before  # the loser's claim went back to the pool
        assert db.session.scalar(select(db.func.count()).select_from(CashRegister)) == 1


def test_register_recorded_meanwhile_while_the_contract_waits(app, api, stand):
    from stoloto.services import contracts
    from stoloto.services.contracts import ContractInput
    with app.app_context():
        contract_id = contracts.create_contract(ContractInput(number="LATE-2", contract_date="15.01.2026",
                                                              agent_inn="7707083893"), "t").id
        store("102", contract_id)
        with db.engine.connect() as connection:
            late = registers._find(connection, "102", 1)  # read before the register existed
        first = api({"store_code": "102", "cash_number": 1})
        assert first.status_code == 202 and first.json["reason"] == registers.CONTRACT_NOT_ACTIVE
        with db.engine.connect() as connection:
            state = registers._advance(connection, late)
        assert (state.status, state.reason) == ("PENDING", registers.CONTRACT_NOT_ACTIVE)
        assert db.session.scalar(select(db.func.count()).select_from(CashRegister)) == 1


def test_job_leaves_registers_of_contracts_that_are_not_active_alone(app, api, stand):
    """Waiting registers are not rewritten on every run, and a store moved to a contract that is not
    active yet keeps its registers working under the old one."""
    from stoloto.services import contracts
    from stoloto.services.contracts import ContractInput
    with app.app_context():
        active = active_contract(stand, "KEEP-1")
        waiting = contracts.create_contract(ContractInput(number="WAIT-1", contract_date="15.01.2026",
                                                          agent_inn="7707083893"), "t").id
        store("108", waiting)
        moved_store = store("109", active)
    assert api({"store_code": "108", "cash_number": 1}).status_code == 202
    number = api({"store_code": "109", "cash_number": 1}).json["terminal_number"]
    with app.app_context():
        stores.bind_stores([moved_store], waiting, "t")
        before = {r.id: r.last_attempt_at for r in db.session.scalars(select(CashRegister))}
        assert registers.finish_pending() == 0
        db.session.expire_all()
        assert {r.id: r.last_attempt_at for r in db.session.scalars(select(CashRegister))} == before
        assert db.session.scalar(select(Terminal.status).where(Terminal.number == number)) == "registered"
    state = api.client.get("/api/v1/cash-registers/109/1", headers={"Authorization": f"Bearer {TOKEN}"}).json
    assert (state["status"], state["terminal_number"], state["contract_number"]) == ("REGISTERED", number, "KEEP-1")


def test_operator_registers_ticked_registers_now(app, api, stand, web):
    """«Зарегистрировать сейчас» in «Кассы»: the job's work for the ticked registers, at once."""
    with app.app_context():
        active = active_contract(stand, "NOW-1")
        waiting = contracts.create_contract(ContractInput(number="NOW-2", contract_date="15.01.2026",
                                                          agent_inn="7707083893"), "t").id
        store("131", active)
        store("132", waiting)
    stand.fault("registration", "html502", count=1)
    assert api({"store_code": "131", "cash_number": 1}).json["reason"] == "STOLOTO_UNAVAILABLE"
    assert api({"store_code": "132", "cash_number": 1}).json["reason"] == "CONTRACT_NOT_ACTIVE"
    with app.app_context():
        ids = list(db.session.scalars(select(CashRegister.id).order_by(CashRegister.id)))

    assert press(web("viewer"), ids).status_code == 403
    operator = web("operator")
    message = "Регистрация касс: зарегистрировано 1, ожидают 0, не тронуто 1 (договор магазина не «Активный»)."
    assert registered_now(operator, ids) == message
    with app.app_context():
        states = dict(db.session.execute(select(Store.code, CashRegister.state).join(Store)).all())
        assert states == {"131": "registered", "132": "pending"}
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "Регистрация касс вручную")).one()
        assert journal.actor == "operator1" and journal.details == message
    assert operator.post("/registers/action/", {"action": "finish", "rowid": ["1;DROP"]},
                         follow_redirects=True).get_data(as_text=True).count("Неверный список касс.") == 1
