""""Активация": activating a contract at Stoloto (docs/protocols.md §1.1) with its CSR."""

from .. import audit, crypto, errors
from ..certificate_lifecycle import CertificateState
from ..extensions import db
from ..lifecycle import ActivationStep, ContractStatus, activation_step, status_label, transition
from ..models import Contract, utcnow
from . import certificates
from .contracts import ACTION_PREPARE, get_contract, prepare_activation
from .gateway import outcome_error

ACTION = "Активация"


def next_step(contract: Contract) -> ActivationStep | None:
    """What «Активировать договор» does for the contract: after «Перевыпустить ключ», the activation with the
    new key; otherwise the step lifecycle.ACTIVATION_STEPS gives its status."""
    if contract.certificate_state == CertificateState.REKEYING.value:
        return ActivationStep.ACTIVATE_NEW_KEY
    return activation_step(contract.status)


def take_next_step(contract_id: int, actor: str) -> tuple[Contract, ActivationStep]:
    """«Активировать договор»: the step that fits the contract (next_step), and which it was."""
    contract = get_contract(contract_id)
    step = next_step(contract)
    if step is ActivationStep.ACTIVATE_NEW_KEY:
        return certificates.activate_new_key(contract_id, actor), step
    if step is None:
        error = errors.action_not_allowed(ACTION_PREPARE, status_label(contract.status))
        audit.record_now(actor, "contract", contract_id, ACTION_PREPARE, "error", str(error))
        raise error
    if step is ActivationStep.ACTIVATE:
        return activate(contract_id, actor), step
    return prepare_activation(contract_id, actor), step


def activate(contract_id: int, actor: str) -> Contract:
    """Calls Stoloto; on success stores the certificate and moves the contract to "Ожидание терминалов".

    On any error the status is unchanged and the SisError says what to do.
    """
    contract = get_contract(contract_id)
    if contract.status == ContractStatus.DRAFT.value:
        raise errors.draft_refused("Активировать договор")
    if contract.status != ContractStatus.AWAITING_ACTIVATION.value:
        raise errors.action_not_allowed("Активировать договор", status_label(contract.status))
    outcome = certificates.send_activation(contract, contract.csr_pem)
    try:
        if not outcome.ok:
            if outcome.code == "CONTRACT_NOT_FOUND":
                raise _not_found(contract, outcome)
            raise outcome_error(outcome, "активации договора")
        certificate = certificates.checked_certificate(outcome.data["certificate"], outcome.data["ca_certificate"],
                                                       contract.public_key_fingerprint, _failure)
        certificates.record_certificate(contract, certificate, outcome.data["certificate"],
                                        outcome.data["ca_certificate"])
        contract.agent_id = str(outcome.data.get("agent_id") or "") or None
        contract.activated_at = utcnow()
        transition(contract, ContractStatus.AWAITING_TERMINALS, actor,
                   details=f"сертификат {crypto.describe_subject(certificate.subject)}, "
                           f"{certificates.ends_at(certificate)}")
        db.session.commit()
    except errors.SisError as error:
        audit.record_refusal(actor, "contract", contract_id, ACTION, error)
        raise
    return contract


def _failure(code: str, message: str) -> errors.SisError:
    # Nothing is stored: the next «Активировать договор» is a new request to Stoloto.
    return errors.SisError(code, message, "Договор остаётся в статусе «Ожидание активации». Повторите активацию "
                                          "позже; если ошибка повторяется, обратитесь в службу поддержки Столото.")


def _not_found(contract: Contract, outcome) -> errors.SisError:
    # A new contract is usually not yet registered at Stoloto; a mistyped requisite is the other cause.
    return errors.SisError(
        outcome.code, f"Столото не нашёл договор № {contract.number} (код {outcome.code}).",
        "Если договор новый, скорее всего, он ещё не зарегистрирован в Столото: дождитесь, пока Столото "
        "зарегистрирует его по «Приложению №5», и повторите активацию позже. Если договор уже "
        "зарегистрирован, проверьте номер, дату заключения и ИНН агента, исправьте их и активируйте "
        "договор повторно.")
