"""Stoloto's definite refusal at registration (§1.3): the register and the admin are told what Stoloto said."""
import pytest

from stoloto.services import registers
from tests.conftest import TOKEN
from tests.factories import active_contract, store

STAND_MESSAGE = "fault injected by the test stand"


def state_of(api, store_code: str, cash_number: int):
    return api.client.get(f"/api/v1/cash-registers/{store_code}/{cash_number}",
                          headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.mark.parametrize("code", ["KEY_MISMATCH", "UNAUTHORIZED", "VALIDATION_ERROR"])
def test_refusal_is_told_to_the_register_with_stolotos_code_and_message(app, api, stand, code):
    with app.app_context():
        store("151", active_contract(stand, "NO-1"))
    stand.fault("registration", "error", code=code, count=1)
    response = api({"store_code": "151", "cash_number": 1})
    assert response.status_code == 202
    body = response.json
    # The reason stays within docs/protocols.md §3.1's enum; the message and stoloto_error say what happened.
    assert (body["status"], body["reason"]) == ("PENDING", "STOLOTO_UNAVAILABLE")
    assert body["stoloto_error"] == {"code": code, "message": STAND_MESSAGE}
    assert body["message"].startswith(f"Столото отказал в регистрации терминала: {STAND_MESSAGE} (код {code}).")
    assert "недоступен" not in body["message"]
    assert state_of(api, "151", 1).json == body


def test_refusal_is_shown_to_the_admin_in_registers_and_journal(app, api, stand, web):
    with app.app_context():
        store("152", active_contract(stand, "NO-2"))
    stand.fault("registration", "error", code="KEY_MISMATCH", count=1)
    assert api({"store_code": "152", "cash_number": 1}).status_code == 202
    said = f"Столото отказал в регистрации терминала: {STAND_MESSAGE} (код KEY_MISMATCH)."
    browser = web("viewer")
    page = browser.get("/registers/").get_data(as_text=True)
    rows = page.split("</thead>", 1)[1].split("</table>", 1)[0]  # the list, not its filters' options
    assert "Столото отказал" in rows and said in rows and "Столото недоступен" not in rows
    assert said in browser.get("/journal/").get_data(as_text=True)


def test_a_register_refused_once_registers_later_and_forgets_the_refusal(app, api, stand):
    with app.app_context():
        store("153", active_contract(stand, "NO-3"))
    stand.fault("registration", "error", code="UNAUTHORIZED", count=1)
    assert api({"store_code": "153", "cash_number": 1}).json["stoloto_error"]["code"] == "UNAUTHORIZED"
    with app.app_context():
        assert registers.finish_pending() == 1
    state = state_of(api, "153", 1).json
    assert state["status"] == "REGISTERED" and "stoloto_error" not in state


def test_stoloto_unanswered_is_unavailable_without_a_stoloto_error(app, api, stand):
    with app.app_context():
        store("154", active_contract(stand, "NO-4"))
    stand.fault("registration", "html502", count=1)
    body = api({"store_code": "154", "cash_number": 1}).json
    assert body["reason"] == "STOLOTO_UNAVAILABLE" and "stoloto_error" not in body
    assert body["message"].startswith("Сервис Столото недоступен")


def test_openapi_document_describes_stolotos_refusal(api):
    schema = api.client.get("/api/v1/openapi.json").json["components"]["schemas"]["RegistrationState"]
    assert schema["properties"]["reason"]["enum"] == ["CONTRACT_NOT_ACTIVE", "NO_FREE_TERMINALS",
                                                      "STOLOTO_UNAVAILABLE"]
    assert schema["properties"]["stoloto_error"]["required"] == ["code", "message"]


def test_a_code_stoloto_sends_that_no_column_can_hold_is_kept_readable(app, api, stand):
    # Stoloto's answer is outside input too: a NUL byte (PostgreSQL refuses it in text) and a code
    # longer than the column must not turn the registration into a server error.
    with app.app_context():
        store("155", active_contract(stand, "NO-5"))
    stand.fault("registration", "status", status=409, code="BAD\u0000" + "X" * 200, count=1)
    response = api({"store_code": "155", "cash_number": 1})
    assert response.status_code == 202
    said = response.json["stoloto_error"]["code"]
    assert said == "BAD\ufffd" + "X" * 60
    assert state_of(api, "155", 1).json["stoloto_error"]["code"] == said
