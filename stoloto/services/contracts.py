"""Contracts: saving requisites, preparing the key, the CSR and "Приложение №5", asking for terminals, deleting."""
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import appendix, audit, clock, crypto, errors, plural, requisites
from ..extensions import db
from ..lifecycle import DELETABLE, REQUISITES_EDITABLE, ContractStatus, status_label, transition
from ..models import CONTRACT_FIELD_LABELS, Contract, utcnow
from . import terminals
from .gateway import private_key, seal_private_key

ACTION_PREPARE = "Активировать договор"
ACTION_REQUEST_TERMINALS = "Запросить номера сейчас"
REQUIRED_FIELDS = {
    "number": "Номер договора",
    "contract_date": "Дата заключения договора",
    "agent_inn": "ИНН агента",
}
# Fields that go into the CSR and the appendix: changing them regenerates both.
SIGNED_FIELDS = ("number", "contract_date", "agent_inn", "agent_name")


@dataclass
class ContractInput:
    number: str | None = None
    contract_date: date | str | None = None
    agent_inn: str | None = None
    agent_name: str | None = None
    comment: str | None = None

    @property
    def complete(self) -> bool:
        return all(getattr(self, name) for name in REQUIRED_FIELDS)


def locked_fields(status: str) -> tuple[str, ...]:
    """The fields that cannot change in this status: the signed requisites once Stoloto has activated it."""
    return () if ContractStatus(status) in REQUISITES_EDITABLE else SIGNED_FIELDS


def required_fields(status: str | None) -> tuple[str, ...]:
    """The fields a save cannot leave empty: a new contract, a draft or a «Создан» one is saved without them
    (as a draft); in «Ожидание активации» they are in the appendix and the certificate request."""
    if status is not None and ContractStatus(status) is ContractStatus.AWAITING_ACTIVATION:
        return tuple(REQUIRED_FIELDS)
    return ()


def clean_input(raw: ContractInput, editing: Contract | None = None) -> ContractInput:
    """Trims and checks every field; raises one SisError listing all field errors."""
    data = ContractInput(
        number=requisites.clean_text(raw.number),
        agent_inn=requisites.clean_text(raw.agent_inn),
        agent_name=requisites.clean_text(raw.agent_name),
        comment=requisites.clean_text(raw.comment),
    )
    problems: dict[str, str] = {}
    if raw.contract_date not in (None, ""):
        try:
            data.contract_date = requisites.parse_date(raw.contract_date)
        except ValueError as exc:
            problems["contract_date"] = str(exc)
    for name, message in (
        ("number", requisites.check_number(data.number)),
        ("contract_date", requisites.check_contract_date(data.contract_date, clock.today())),
        ("agent_inn", requisites.check_inn(data.agent_inn)),
    ):
        if message and name not in problems:
            problems[name] = message
    if data.agent_name and len(data.agent_name) > 255:
        problems["agent_name"] = "Наименование агента длиннее 255 символов."
    if data.number and "number" not in problems and _number_taken(data.number, editing):
        problems["number"] = "Договор с таким номером уже есть."
    if not any((data.number, data.contract_date, data.agent_inn, data.agent_name, data.comment)):
        problems["number"] = "Заполните реквизиты договора."
    if problems:
        raise errors.invalid(problems)
    return data


def _number_taken(number: str, editing: Contract | None) -> bool:
    query = select(Contract.id).where(Contract.number == number)
    if editing is not None and editing.id is not None:
        query = query.where(Contract.id != editing.id)
    return db.session.execute(query).first() is not None


def _missing_required(data: ContractInput, names: tuple[str, ...]) -> dict[str, str]:
    return {name: f"Поле «{REQUIRED_FIELDS[name]}» обязательно в этом статусе."
            for name in names if not getattr(data, name)}


def _apply(contract: Contract, data: ContractInput) -> None:
    for name in ("number", "contract_date", "agent_inn", "agent_name", "comment"):
        setattr(contract, name, getattr(data, name))


def _commit_or_duplicate() -> None:
    try:
        db.session.commit()
    except IntegrityError:
        # Two users saved the same number at once: the unique constraint decides.
        db.session.rollback()
        raise errors.invalid({"number": "Договор с таким номером уже есть."}) from None


def create_contract(raw: ContractInput, actor: str) -> Contract:
    data = clean_input(raw)
    status = ContractStatus.CREATED if data.complete else ContractStatus.DRAFT
    contract = Contract(status=status.value)
    _apply(contract, data)
    db.session.add(contract)
    db.session.flush()
    audit.record(actor, "contract", contract.id, "Добавление договора",
                 details=f"№ {contract.number or '—'}, статус «{status.label}»")
    _commit_or_duplicate()
    return contract


def update_contract(contract: Contract, raw: ContractInput, actor: str) -> Contract:
    data = clean_input(raw, editing=contract)
    status = ContractStatus(contract.status)
    changed = [name for name in ("number", "contract_date", "agent_inn", "agent_name", "comment")
               if getattr(contract, name) != getattr(data, name)]
    locked = [name for name in changed if name in locked_fields(contract.status)]
    if locked:
        raise errors.invalid({name: f"Реквизиты нельзя менять в статусе «{status.label}»." for name in locked})
    missing = _missing_required(data, required_fields(contract.status))
    if missing:
        raise errors.invalid(missing)

    _apply(contract, data)
    if status is ContractStatus.DRAFT and data.complete:
        transition(contract, ContractStatus.CREATED, actor)
    elif status is ContractStatus.CREATED and not data.complete:
        transition(contract, ContractStatus.DRAFT, actor)
    regenerate = status is ContractStatus.AWAITING_ACTIVATION and any(n in SIGNED_FIELDS for n in changed)
    if regenerate:
        # Same key (Stoloto may already have registered its fingerprint), new CSR and appendix.
        _issue_documents(contract, private_key(contract))
        # The next activation is a new request: Stoloto must not replay an answer to the old requisites.
        contract.activation_request_id = None
    if changed:
        audit.record(actor, "contract", contract.id, "Изменение договора",
                     details="Изменены поля: " + audit.field_names(CONTRACT_FIELD_LABELS, changed)
                     + ("; запрос на сертификат и приложение №5 сформированы заново" if regenerate else ""))
    _commit_or_duplicate()
    return contract


def prepare_activation(contract_id: int, actor: str) -> Contract:
    """"Активировать договор" in "Создан": key, CSR, appendix; status → "Ожидание активации".

    The conditional status UPDATE comes first, so a double click makes one key.
    """
    contract = get_contract(contract_id)
    try:
        if contract.status == ContractStatus.DRAFT.value:
            raise errors.draft_refused(ACTION_PREPARE)
        if contract.status != ContractStatus.CREATED.value:
            raise errors.action_not_allowed(ACTION_PREPARE, status_label(contract.status))
        transition(contract, ContractStatus.AWAITING_ACTIVATION, actor,
                   details="сформированы ключ, запрос на сертификат и приложение №5")
        key = crypto.generate_private_key()
        contract.key_algorithm = crypto.KEY_ALGORITHM
        seal_private_key(contract, key)
        contract.public_key_fingerprint = crypto.public_key_fingerprint(key.public_key())
        _issue_documents(contract, key)
        db.session.commit()
    except errors.SisError as exc:
        audit.record_refusal(actor, "contract", contract_id, ACTION_PREPARE, exc)
        raise
    return contract


def _issue_documents(contract: Contract, key) -> None:
    contract.csr_pem = crypto.build_csr(key, contract.number, contract.agent_inn, contract.agent_name)
    csr = crypto.load_csr(contract.csr_pem)
    generated_at = utcnow()
    contract.appendix_docx = appendix.build_appendix(appendix.AppendixData(
        contract_number=contract.number,
        contract_date=contract.contract_date,
        agent_inn=contract.agent_inn,
        agent_name=contract.agent_name,
        key_algorithm=contract.key_algorithm,
        fingerprint=crypto.format_fingerprint(contract.public_key_fingerprint),
        csr_subject=crypto.describe_subject(csr.subject),
        csr_pem=contract.csr_pem,
        generated_at=clock.local(generated_at),  # «Дата формирования» is the user's date, not UTC's
    ))
    contract.appendix_generated_at = generated_at


def waiting_for_terminals(contract: Contract) -> bool:
    """Activated at Stoloto, its first batch of terminal numbers not yet received."""
    return contract.status == ContractStatus.AWAITING_TERMINALS.value


def request_terminals_now(contract_id: int, actor: str) -> str:
    """«Запросить номера сейчас» for a contract waiting for its first batch: what the job would do, at once.

    Returns the Russian result; a refusal or Stoloto's failure is a SisError. Journaled either way.
    """
    contract = get_contract(contract_id)
    try:
        if not waiting_for_terminals(contract):
            raise errors.action_not_allowed(ACTION_REQUEST_TERMINALS, status_label(contract.status))
        received = terminals.fetch_batch(contract_id, actor, force=True)
    except errors.SisError as error:
        audit.record_now(actor, "contract", contract_id, ACTION_REQUEST_TERMINALS, "error", str(error))
        raise
    contract = get_contract(contract_id)
    if received:
        numbers = plural.plural(received, "номер терминала", "номера терминалов", "номеров терминалов")
        result = (f"Столото выдал {numbers}: "
                  f"договор № {contract.number} теперь в статусе «{status_label(contract.status)}».")
    else:
        result = "Номера терминалов уже запрашивает фоновое задание: дождитесь его ответа."
    audit.record(actor, "contract", contract_id, ACTION_REQUEST_TERMINALS, details=result)
    db.session.commit()
    return result


def appendix_file(contract_id: int) -> tuple[bytes, str]:
    contract = get_contract(contract_id)
    if not contract.has_appendix:
        raise errors.SisError("NO_APPENDIX", "Приложение №5 ещё не сформировано.",
                              "Нажмите «Активировать договор» для договора в статусе «Создан».")
    return contract.appendix_docx, appendix.appendix_filename(contract.number)


def delete_contract(contract: Contract, actor: str) -> None:
    status = ContractStatus(contract.status)
    if status not in DELETABLE:
        raise errors.SisError("ACTION_NOT_ALLOWED",
                              f"Договор в статусе «{status.label}» удалить нельзя: для него уже сформирован ключ.")
    audit.record(actor, "contract", contract.id, "Удаление договора", details=f"№ {contract.number or '—'}")
    db.session.delete(contract)
    db.session.commit()


def get_contract(contract_id) -> Contract:
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        raise errors.not_found("Договор")
    return contract
