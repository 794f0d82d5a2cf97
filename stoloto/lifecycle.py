"""Contract statuses, the table of allowed transitions and the one function that changes a status."""
from enum import Enum

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from . import audit, errors
from .extensions import db
from .models import Contract


class ContractStatus(str, Enum):
    DRAFT = "draft"
    CREATED = "created"
    AWAITING_ACTIVATION = "awaiting_activation"
    AWAITING_TERMINALS = "awaiting_terminals"
    ACTIVE = "active"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    ContractStatus.DRAFT: "Черновик",
    ContractStatus.CREATED: "Создан",
    ContractStatus.AWAITING_ACTIVATION: "Ожидание активации",
    ContractStatus.AWAITING_TERMINALS: "Ожидание терминалов",
    ContractStatus.ACTIVE: "Активный",
}

# (from, to) -> what the journal calls the step.
TRANSITIONS: dict[tuple[ContractStatus, ContractStatus], str] = {
    (ContractStatus.DRAFT, ContractStatus.CREATED): "Договор заполнен",
    (ContractStatus.CREATED, ContractStatus.DRAFT): "Договор стал черновиком",
    (ContractStatus.CREATED, ContractStatus.AWAITING_ACTIVATION): "Подготовка к активации",
    (ContractStatus.AWAITING_ACTIVATION, ContractStatus.AWAITING_TERMINALS): "Активация",
    (ContractStatus.AWAITING_TERMINALS, ContractStatus.ACTIVE): "Получен первый пакет терминалов",
}

# Number, date and INN are fixed once Stoloto has activated the contract.
REQUISITES_EDITABLE = {ContractStatus.DRAFT, ContractStatus.CREATED, ContractStatus.AWAITING_ACTIVATION}
DELETABLE = {ContractStatus.DRAFT, ContractStatus.CREATED}


class ActivationStep(str, Enum):
    PREPARE = "prepare"    # key, certificate request, «Приложение №5»: "Создан" → "Ожидание активации"
    ACTIVATE = "activate"  # the request to Stoloto: "Ожидание активации" → "Ожидание терминалов"
    # After «Перевыпустить ключ» (certificate_lifecycle): the request with the new key, the status unchanged.
    ACTIVATE_NEW_KEY = "activate_new_key"


# What «Активировать договор» does in each status. A draft would be prepared, and is refused until it is
# filled in; a status not in the table has nothing left to activate.
ACTIVATION_STEPS = {
    ContractStatus.DRAFT: ActivationStep.PREPARE,
    ContractStatus.CREATED: ActivationStep.PREPARE,
    ContractStatus.AWAITING_ACTIVATION: ActivationStep.ACTIVATE,
}


def activation_step(code: str) -> ActivationStep | None:
    return ACTIVATION_STEPS.get(ContractStatus(code))


def status_label(code: str) -> str:
    return STATUS_LABELS[ContractStatus(code)]


def can_transition(current: str, target: ContractStatus) -> bool:
    return (ContractStatus(current), target) in TRANSITIONS


def transition(contract: Contract, target: ContractStatus, actor: str, details: str | None = None) -> None:
    """Moves the contract to `target` inside the caller's transaction.

    The UPDATE is conditional on the status the caller saw, so of two concurrent
    requests exactly one wins; the other gets STATUS_CHANGED and must roll back.
    """
    current = ContractStatus(contract.status)
    step = TRANSITIONS.get((current, target))
    if step is None:
        raise errors.action_not_allowed(target.label, current.label)
    result = db.session.execute(
        update(Contract)
        .where(Contract.id == contract.id, Contract.status == current.value)
        .values(status=target.value)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise errors.status_changed()
    set_committed_value(contract, "status", target.value)
    audit.record(actor, "contract", contract.id, step,
                 details=f"{current.label} → {target.label}" + (f"; {details}" if details else ""))
