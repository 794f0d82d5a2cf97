"""What «Активировать договор» tells the user about Stoloto's answers, through the panel and the Stoloto stand."""
import html

import pytest
from sqlalchemy import select

from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput

NUMBER = "СТ-2026/001"


def awaiting_activation(app) -> Contract:
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        contracts.prepare_activation(contract.id, "t")
        return db.session.get(Contract, contract.id)


def activate(operator, contract_id) -> str:
    response = operator.post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def status_and_certificate(app, contract_id):
    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        return contract.status, contract.certificate_pem


def test_contract_unknown_at_stoloto_says_it_may_be_not_registered_yet_or_mistyped(app, web, stand):
    contract = awaiting_activation(app)  # never registered at the stand
    page = activate(web("operator"), contract.id)
    assert "Столото не нашёл договор № СТ-2026/001" in page
    assert "ещё не зарегистрирован в Столото" in page
    assert "повторите активацию позже" in page
    assert "проверьте номер, дату заключения и ИНН агента" in page
    assert status_and_certificate(app, contract.id) == ("awaiting_activation", None)


@pytest.mark.parametrize("variant, message", [
    ("other_key", "Столото выдал сертификат не на ключ этого договора"),
    ("malformed", "Столото вернул нечитаемый сертификат"),
])
def test_a_wrong_certificate_from_stoloto_is_refused_and_the_contract_keeps_waiting(app, web, stand, variant,
                                                                                   message):
    contract = awaiting_activation(app)
    stand.register(NUMBER)
    stand.confirm(contract.public_key_fingerprint)
    stand.fault("activate", "certificate", variant=variant)
    page = activate(web("operator"), contract.id)
    assert message in page
    assert "Договор остаётся в статусе «Ожидание активации»" in page
    assert status_and_certificate(app, contract.id) == ("awaiting_activation", None)
    with app.app_context():
        journal = db.session.scalars(select(AuditEvent).where(AuditEvent.result == "error")).all()
        assert [event.action for event in journal] == ["Активация"] and message in journal[0].details
    # Stoloto answers properly next time: the same contract activates.
    page = activate(web("operator"), contract.id)
    assert "активирован в Столото" in page
    assert status_and_certificate(app, contract.id)[0] == "awaiting_terminals"
