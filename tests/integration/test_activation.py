""""Активация договора" and "Получение номеров терминалов" against the Stoloto stand over real HTTPS."""
import pytest
from sqlalchemy import func, select

from stoloto import crypto
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract, Terminal, TerminalBatch
from stoloto.services import activation, contracts, terminals
from stoloto.services.contracts import ContractInput

NUMBER = "СТ-2026/001"


def prepared(stand, register=True, confirm=True) -> Contract:
    contract = contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                       agent_inn="7707083893", agent_name="ООО Ромашка"), "t")
    contracts.prepare_activation(contract.id, "t")
    if register:
        stand.register(NUMBER)
    if confirm:
        stand.confirm(contract.public_key_fingerprint)
    return contract


def status_of(contract_id) -> str:
    db.session.expire_all()
    return db.session.get(Contract, contract_id).status


def test_full_flow_from_created_to_active(ctx, stand):
    contract = prepared(stand)
    activation.activate(contract.id, "operator")
    assert status_of(contract.id) == "awaiting_terminals"
    contract = db.session.get(Contract, contract.id)
    certificate = crypto.x509.load_pem_x509_certificate(contract.certificate_pem.encode())
    assert crypto.public_key_fingerprint(certificate.public_key()) == contract.public_key_fingerprint
    assert contract.ca_certificate_pem.startswith("-----BEGIN CERTIFICATE-----")

    report = terminals.fetch_due_batches()
    assert report.received == {NUMBER: 5}
    assert status_of(contract.id) == "active"
    ours = sorted(db.session.scalars(select(Terminal.number).where(Terminal.contract_id == contract.id)))
    assert ours == stand.issued(NUMBER) and len(ours) == 5


def test_refill_only_below_threshold(ctx, stand):
    contract = prepared(stand)
    activation.activate(contract.id, "t")
    terminals.fetch_due_batches()
    assert terminals.fetch_due_batches().received == {}  # 5 free, threshold 2
    db.session.execute(Terminal.__table__.update().where(Terminal.number.in_(stand.issued(NUMBER)[:4]))
                       .values(status="registered"))
    db.session.commit()
    assert terminals.fetch_due_batches().received == {NUMBER: 5}
    assert len(stand.issued(NUMBER)) == 10
    assert terminals.pool_counts(contract.id) == {"free": 6, "registered": 4}


def test_key_not_registered_is_a_refusal_and_changes_nothing(ctx, stand):
    contract = prepared(stand, confirm=False)
    with pytest.raises(SisError) as error:
        activation.activate(contract.id, "t")
    assert error.value.code == "KEY_NOT_REGISTERED"
    assert "Повторите попытку позже" in str(error.value)
    assert status_of(contract.id) == "awaiting_activation"
    stand.confirm(contract.public_key_fingerprint)
    activation.activate(contract.id, "t")  # a new request id: the stored refusal is not replayed
    assert status_of(contract.id) == "awaiting_terminals"


def test_requisites_mismatch_asks_to_correct_and_activate_again(ctx, stand):
    contract = prepared(stand, register=False)
    stand.register(NUMBER, contract_date="2026-01-16")
    with pytest.raises(SisError) as error:
        activation.activate(contract.id, "t")
    assert error.value.code == "CONTRACT_DATA_MISMATCH"
    assert "дата заключения договора" in str(error.value)
    assert "Исправьте реквизиты договора и активируйте договор повторно" in str(error.value)
    assert status_of(contract.id) == "awaiting_activation"
    contract = db.session.get(Contract, contract.id)
    contracts.update_contract(contract, ContractInput(number=NUMBER, contract_date="16.01.2026",
                                                      agent_inn="7707083893", agent_name="ООО Ромашка"), "t")
    activation.activate(contract.id, "t")
    assert status_of(contract.id) == "awaiting_terminals"


@pytest.mark.parametrize("fault, code, hint", [
    ({"kind": "delay", "seconds": 4}, "TIMEOUT", "службу поддержки"),
    ({"kind": "status", "status": 500}, "INTERNAL_ERROR", "службу поддержки"),
    ({"kind": "html502"}, "HTTP_502", "службу поддержки"),
    ({"kind": "garbage"}, "BAD_RESPONSE", "службу поддержки"),
    ({"kind": "drop"}, "CONNECTION", "службу поддержки"),
    ({"kind": "error", "code": "KEY_MISMATCH"}, "KEY_MISMATCH", "службу поддержки"),
    ({"kind": "error", "code": "KEY_NOT_REGISTERED"}, "KEY_NOT_REGISTERED", "Повторите попытку позже"),
    ({"kind": "error", "code": "CONTRACT_DATA_MISMATCH"}, "CONTRACT_DATA_MISMATCH", "Исправьте реквизиты"),
])
def test_activation_faults_leave_status_unchanged(ctx, stand, fault, code, hint):
    contract = prepared(stand)
    stand.fault("activate", count=5, **fault)  # the client retries dropped connections itself
    with pytest.raises(SisError) as error:
        activation.activate(contract.id, "t")
    if fault["kind"] == "status":
        assert error.value.code in (code, "HTTP_500")
    else:
        assert error.value.code == code
    assert hint in str(error.value)
    assert status_of(contract.id) == "awaiting_activation"
    journal = db.session.scalars(select(AuditEvent).where(AuditEvent.result == "error")).all()
    assert journal and journal[-1].action == "Активация"


def test_lost_activation_answer_is_retried_with_the_same_request_id(ctx, stand):
    contract = prepared(stand)
    stand.fault("activate", "delay", seconds=3)  # the stand works, the answer comes too late
    with pytest.raises(SisError):
        activation.activate(contract.id, "t")
    request_id = db.session.get(Contract, contract.id).activation_request_id
    assert request_id
    activation.activate(contract.id, "t")
    assert status_of(contract.id) == "awaiting_terminals"


@pytest.mark.parametrize("fault, final", [
    ({"kind": "delay", "seconds": 4}, "pending"),
    ({"kind": "status", "status": 500}, "pending"),
    ({"kind": "html502"}, "pending"),
    ({"kind": "garbage"}, "pending"),
    ({"kind": "drop"}, "pending"),
    ({"kind": "error", "code": "TERMINAL_LIMIT_EXCEEDED"}, "failed"),
])
def test_batch_faults_lose_nothing(ctx, stand, fault, final):
    contract = prepared(stand)
    activation.activate(contract.id, "t")
    stand.fault("batches", count=1, **fault)
    report = terminals.fetch_due_batches()
    assert NUMBER in report.errors
    assert status_of(contract.id) == "awaiting_terminals"
    batch = db.session.scalar(select(TerminalBatch))
    assert batch.status == final
    requests_before = db.session.scalar(select(func.count()).select_from(TerminalBatch))
    if final == "failed":
        assert terminals.fetch_due_batches().received == {}  # paused after a definite refusal
        assert terminals.fetch_batch(contract.id, force=True) == 5
    else:
        requests_after = terminals.fetch_due_batches()
        assert requests_after.received == {NUMBER: 5}
        assert db.session.scalar(select(func.count()).select_from(TerminalBatch)) == requests_before
    ours = sorted(db.session.scalars(select(Terminal.number)))
    assert ours == stand.issued(NUMBER)
    assert status_of(contract.id) == "active"


def test_terminal_limit_is_reported_and_status_kept(ctx, stand):
    contract = prepared(stand, register=False)
    stand.register(NUMBER, terminal_limit=3)
    activation.activate(contract.id, "t")
    assert terminals.fetch_due_batches().received == {NUMBER: 3}
    assert status_of(contract.id) == "active"
    db.session.execute(Terminal.__table__.update().values(status="registered"))
    db.session.commit()
    report = terminals.fetch_due_batches()
    assert "TERMINAL_LIMIT_EXCEEDED" in report.errors[NUMBER]
    assert status_of(contract.id) == "active"
