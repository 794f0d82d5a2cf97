"""Contracts through the service layer: "Добавить", "Черновик", "Активировать договор", editing."""
import io
import threading
from datetime import date

import pytest
from docx import Document
from sqlalchemy import func, select, text

from stoloto import crypto
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract
from stoloto.services import contracts, gateway
from stoloto.services.contracts import ContractInput

VALID = dict(number="СТ-2026/001", contract_date="15.01.2026", agent_inn="7707083893", agent_name="ООО Ромашка")


def make(**overrides) -> Contract:
    return contracts.create_contract(ContractInput(**{**VALID, **overrides}), "tester")


def count_contracts() -> int:
    return db.session.scalar(select(func.count()).select_from(Contract))


def appendix_text(contract: Contract) -> str:
    document = Document(io.BytesIO(contract.appendix_docx))
    return "\n".join([p.text for p in document.paragraphs] +
                     [c.text for t in document.tables for r in t.rows for c in r.cells])


def test_complete_contract_is_created(ctx):
    contract = make(number="  СТ-2026/001  ")
    assert contract.status == "created"
    assert contract.number == "СТ-2026/001"
    assert contract.contract_date == date(2026, 1, 15)


def test_partial_contract_is_saved_as_draft_and_completing_it_makes_it_created(ctx):
    contract = make(agent_inn="", contract_date=None)
    assert contract.status == "draft"
    contracts.update_contract(contract, ContractInput(**VALID), "tester")
    assert contract.status == "created"
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == contract.id)).all()
    assert "Договор заполнен" in actions


def test_every_action_on_a_draft_is_refused_with_a_clear_message(ctx):
    contract = make(agent_inn=None)
    with pytest.raises(SisError) as error:
        contracts.prepare_activation(contract.id, "tester")
    assert error.value.code == "CONTRACT_INCOMPLETE"
    assert "Черновик" in error.value.message
    db.session.refresh(contract)
    assert contract.status == "draft" and contract.private_key_encrypted is None
    with pytest.raises(SisError):
        contracts.appendix_file(contract.id)


@pytest.mark.parametrize("field, value, message", [
    ("agent_inn", "7707083894", "контрольная сумма"),
    ("agent_inn", "0000000000", "нулей"),
    ("agent_inn", "77070838931", "10 цифр"),
    ("contract_date", "31.02.2026", "ДД.ММ.ГГГГ"),
    ("contract_date", "01.01.2999", "в будущем"),
])
def test_invalid_requisites_save_nothing(ctx, field, value, message):
    with pytest.raises(SisError) as error:
        make(**{field: value})
    assert message in error.value.fields[field]
    assert count_contracts() == 0


def test_an_empty_form_is_refused(ctx):
    with pytest.raises(SisError):
        contracts.create_contract(ContractInput(number=" "), "tester")
    assert count_contracts() == 0


def test_number_is_unique_after_trimming(ctx):
    make()
    with pytest.raises(SisError) as error:
        make(number=" СТ-2026/001 ", agent_inn="500100732259")
    assert "уже есть" in error.value.fields["number"]
    assert count_contracts() == 1


def test_activation_makes_key_csr_and_appendix(ctx):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.status == "awaiting_activation"
    csr = crypto.load_csr(contract.csr_pem)
    assert csr.is_signature_valid
    assert crypto.public_key_fingerprint(csr.public_key()) == contract.public_key_fingerprint
    text_of_appendix = appendix_text(contract)
    assert crypto.format_fingerprint(contract.public_key_fingerprint) in text_of_appendix
    assert contract.csr_pem.strip() in text_of_appendix
    assert "СТ-2026/001" in text_of_appendix and "15.01.2026" in text_of_appendix


def test_database_holds_no_plaintext_private_key(ctx, app):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    key = gateway.private_key(contract)
    from cryptography.hazmat.primitives import serialization
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    row = db.session.execute(text("SELECT * FROM contracts")).one()
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row if v is not None)
    assert der not in raw and scalar not in raw
    assert b"PRIVATE KEY" not in raw and scalar.hex().encode() not in raw


def test_activation_in_wrong_status_is_refused_and_journaled(ctx):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    first_key = contract.private_key_encrypted
    with pytest.raises(SisError) as error:
        contracts.prepare_activation(contract.id, "tester")
    assert error.value.code == "ACTION_NOT_ALLOWED"
    db.session.expire_all()
    assert db.session.get(Contract, contract.id).private_key_encrypted == first_key
    assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                             .where(AuditEvent.result == "error")) == 1


def test_concurrent_activations_produce_exactly_one_key(app):
    with app.app_context():
        contract_id = make().id
    barrier = threading.Barrier(6)
    outcomes = []

    def click():
        with app.app_context():
            barrier.wait()
            try:
                contracts.prepare_activation(contract_id, "tester")
                outcomes.append("ok")
            except SisError as error:
                outcomes.append(error.code)

    threads = [threading.Thread(target=click) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"ACTION_NOT_ALLOWED", "STATUS_CHANGED"}
    with app.app_context():
        transitions = db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "Подготовка к активации", AuditEvent.result == "ok"))
        assert transitions == 1


def test_editing_while_awaiting_activation_keeps_key_and_regenerates_appendix(ctx):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    key_before, fingerprint = contract.private_key_encrypted, contract.public_key_fingerprint
    contracts.update_contract(contract, ContractInput(**{**VALID, "number": "СТ-2026/002",
                                                         "contract_date": "2026-01-16"}), "tester")
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    assert contract.status == "awaiting_activation"
    assert contract.private_key_encrypted == key_before
    assert contract.public_key_fingerprint == fingerprint
    assert "SIS СТ-2026/002" in crypto.describe_subject(crypto.load_csr(contract.csr_pem).subject)
    text_of_appendix = appendix_text(contract)
    assert "СТ-2026/002" in text_of_appendix and "16.01.2026" in text_of_appendix
    assert crypto.format_fingerprint(fingerprint) in text_of_appendix


def test_requisites_cannot_be_cleared_while_awaiting_activation(ctx):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    with pytest.raises(SisError) as error:
        contracts.update_contract(contract, ContractInput(**{**VALID, "agent_inn": ""}), "tester")
    assert "agent_inn" in error.value.fields


@pytest.mark.parametrize("status", ["awaiting_terminals", "active"])
def test_requisites_are_read_only_after_activation(ctx, status):
    contract = make()
    db.session.execute(text("UPDATE contracts SET status = :s WHERE id = :i"), {"s": status, "i": contract.id})
    db.session.commit()
    db.session.expire_all()
    contract = db.session.get(Contract, contract.id)
    with pytest.raises(SisError) as error:
        contracts.update_contract(contract, ContractInput(**{**VALID, "number": "другой"}), "tester")
    assert "number" in error.value.fields
    contracts.update_contract(contract, ContractInput(**{**VALID, "comment": "можно"}), "tester")
    assert contract.comment == "можно"


def test_contract_with_a_key_cannot_be_deleted(ctx):
    contract = make()
    contracts.prepare_activation(contract.id, "tester")
    with pytest.raises(SisError):
        contracts.delete_contract(contract, "tester")
    assert count_contracts() == 1


def test_journal_is_append_only(ctx):
    make()
    event = db.session.scalars(select(AuditEvent)).first()
    event.details = "подделка"
    with pytest.raises(ValueError):
        db.session.flush()
