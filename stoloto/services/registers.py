"""Cash registers: registration as Stoloto terminals (PROTOCOLS §3 served by SIS, §1.3 called by it).

A register gets a free terminal of its store's contract by one atomic claim, keeps it until
Stoloto confirms the binding, and is finished later by a job when it has to wait. The same
(store code, cash number) always gets the same terminal number.
"""
import uuid
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import errors, signals
from ..clients.stoloto import Outcome
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import CashRegister, Contract, RegistrationAttempt, Store, Terminal, utcnow
from .gateway import outcome_error, stoloto_client

REGISTERED, PENDING = "registered", "pending"
STATE_LABELS = {REGISTERED: "Зарегистрирована", PENDING: "Ожидает регистрации"}
CONTRACT_NOT_ACTIVE, NO_FREE_TERMINALS, STOLOTO_UNAVAILABLE = (
    "CONTRACT_NOT_ACTIVE", "NO_FREE_TERMINALS", "STOLOTO_UNAVAILABLE")
REASON_MESSAGES = {
    CONTRACT_NOT_ACTIVE: "Договор магазина ещё не в статусе «Активный»: касса будет зарегистрирована, "
                         "когда договор активируют.",
    NO_FREE_TERMINALS: "Нет свободных номеров терминалов: СИ запросил новый пакет у Столото, "
                       "касса будет зарегистрирована автоматически.",
    STOLOTO_UNAVAILABLE: "Сервис Столото недоступен: номер терминала закреплён за кассой, "
                         "регистрация будет завершена автоматически.",
}
REASON_LABELS = {CONTRACT_NOT_ACTIVE: "Договор не активен", NO_FREE_TERMINALS: "Нет свободных терминалов",
                 STOLOTO_UNAVAILABLE: "Столото недоступен"}
# Stoloto says this number cannot be bound for us: retire it and take the next one.
TERMINAL_REFUSED = {"TERMINAL_ALREADY_BOUND", "TERMINAL_UNKNOWN"}
MAX_CLAIMS = 3


@dataclass(frozen=True)
class RegistrationInput:
    store_code: str
    cash_number: int
    serial_number: str | None = None
    fiscal_number: str | None = None
    cash_type: str | None = None


@dataclass(frozen=True)
class RegistrationState:
    status: str  # REGISTERED or PENDING
    terminal_number: str | None = None
    contract_number: str | None = None
    reason: str | None = None

    def as_json(self) -> dict:
        if self.status == "REGISTERED":
            return {"status": self.status, "terminal_number": self.terminal_number,
                    "contract_number": self.contract_number}
        return {"status": self.status, "reason": self.reason, "message": REASON_MESSAGES[self.reason]}


def register(data: RegistrationInput) -> RegistrationState:
    """PROTOCOLS §3.1: records the register and registers it now if it can; raises SisError otherwise."""
    store = db.session.scalar(select(Store).where(Store.code == data.store_code)
                              .options(joinedload(Store.contract)))
    if store is None:
        raise errors.SisError("STORE_UNKNOWN", f"Магазин с кодом {data.store_code} не найден в СИ.")
    if store.contract_id is None:
        raise errors.SisError("STORE_NOT_BOUND", f"Магазин {data.store_code} не привязан к договору.")
    return advance(_record(store, data))


def current_state(store_code: str, cash_number: int) -> RegistrationState | None:
    """PROTOCOLS §3.2."""
    cash_register = db.session.scalar(
        select(CashRegister).join(Store).where(Store.code == store_code, CashRegister.cash_number == cash_number)
        .options(joinedload(CashRegister.terminal), joinedload(CashRegister.contract)))
    return None if cash_register is None else _state(cash_register)


def _state(cash_register: CashRegister) -> RegistrationState:
    if cash_register.state == REGISTERED:
        return RegistrationState("REGISTERED", cash_register.terminal.number, cash_register.contract.number)
    return RegistrationState("PENDING", reason=cash_register.reason or CONTRACT_NOT_ACTIVE)


def _record(store: Store, data: RegistrationInput) -> CashRegister:
    query = select(CashRegister).where(CashRegister.store_id == store.id,
                                       CashRegister.cash_number == data.cash_number)
    cash_register = db.session.scalar(query)
    details = {"serial_number": data.serial_number, "fiscal_number": data.fiscal_number,
               "cash_type": data.cash_type}
    if cash_register is None:
        cash_register = CashRegister(store_id=store.id, cash_number=data.cash_number, state=PENDING,
                                     contract_id=store.contract_id, **details)
        db.session.add(cash_register)
        try:
            db.session.commit()
            return cash_register
        except IntegrityError:
            db.session.rollback()  # the same register asked twice at once: the other request created it
            cash_register = db.session.scalar(query)
    changed = {name: value for name, value in details.items()
               if value is not None and getattr(cash_register, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(cash_register, name, value)
        db.session.commit()
    return cash_register


def advance(cash_register: CashRegister) -> RegistrationState:
    """Takes the register as far as it can go now: re-binding, claim, Stoloto, or a reason to wait."""
    store = cash_register.store
    if cash_register.contract_id != store.contract_id:
        _retire_terminal(cash_register, "магазин привязан к другому договору", store.contract_id)
    if cash_register.state == REGISTERED:
        return _state(cash_register)
    contract = store.contract
    if contract.status != ContractStatus.ACTIVE.value:
        return _wait(cash_register, CONTRACT_NOT_ACTIVE)
    for _ in range(MAX_CLAIMS):
        terminal = cash_register.terminal or _claim(cash_register, contract)
        if terminal is None:
            signals.terminals_needed.send(contract.id)
            return _wait(cash_register, NO_FREE_TERMINALS)
        try:
            client = stoloto_client(contract)
        except errors.SisError as error:  # not configured, key unreadable: wait, the claim is kept
            return _wait(cash_register, STOLOTO_UNAVAILABLE, str(error))
        outcome = client.register_terminal(
            cash_register.registration_request_id, terminal.number,
            {"contract_number": contract.number, "store_code": store.code,
             "cash_number": cash_register.cash_number, "serial_number": cash_register.serial_number,
             "address": store.address})
        if outcome.ok:
            return _registered(cash_register, terminal, contract)
        if outcome.code in TERMINAL_REFUSED:
            _retire_terminal(cash_register, str(outcome_error(outcome, "регистрации терминала")), contract.id)
            continue
        return _stoloto_failed(cash_register, outcome)
    return _wait(cash_register, NO_FREE_TERMINALS)


def _claim(cash_register: CashRegister, contract: Contract) -> Terminal | None:
    """One atomic claim of a free terminal, bound to the register in the same transaction."""
    free = (select(Terminal.id).where(Terminal.contract_id == contract.id, Terminal.status == "free")
            .order_by(Terminal.id).limit(1))
    if db.engine.dialect.name == "postgresql":
        free = free.with_for_update(skip_locked=True)  # SQLite serialises writers itself
    claimed = db.session.execute(
        update(Terminal).where(Terminal.id == free.scalar_subquery()).values(status="claimed")
        .returning(Terminal.id).execution_options(synchronize_session=False)).scalar()
    if claimed is None:
        db.session.rollback()
        return None
    request_id = str(uuid.uuid4())
    bound = db.session.execute(
        update(CashRegister).where(CashRegister.id == cash_register.id, CashRegister.terminal_id.is_(None))
        .values(terminal_id=claimed, registration_request_id=request_id)
        .execution_options(synchronize_session=False))
    if bound.rowcount != 1:
        db.session.rollback()  # a concurrent request bound a terminal first; ours goes back to the pool
        db.session.refresh(cash_register)
        return cash_register.terminal
    db.session.commit()
    for name, value in (("terminal_id", claimed), ("registration_request_id", request_id)):
        set_committed_value(cash_register, name, value)
    terminal = db.session.get(Terminal, claimed, populate_existing=True)
    set_committed_value(cash_register, "terminal", terminal)
    return terminal


def _registered(cash_register: CashRegister, terminal: Terminal, contract: Contract) -> RegistrationState:
    # Table-level statements on the session's connection: this is the hot path of every
    # registration, and the ORM's statement machinery cost more here than the statements themselves.
    now = utcnow()
    connection = db.session.connection()
    connection.execute(Terminal.__table__.update().where(Terminal.__table__.c.id == terminal.id)
                       .values(status="registered"))
    changes = {"state": REGISTERED, "reason": None, "last_error": None, "last_attempt_at": now,
               "registered_at": now, "updated_at": now}
    connection.execute(CashRegister.__table__.update().where(CashRegister.__table__.c.id == cash_register.id)
                       .values(**changes))
    _history(cash_register, REGISTERED, None, terminal.number,
             f"зарегистрирована в Столото по договору № {contract.number}")
    db.session.commit()
    set_committed_value(terminal, "status", "registered")  # keep the session's objects truthful
    for name, value in changes.items():
        set_committed_value(cash_register, name, value)
    return RegistrationState("REGISTERED", terminal.number, contract.number)


def _wait(cash_register: CashRegister, reason: str, error: str | None = None) -> RegistrationState:
    if cash_register.state != PENDING or cash_register.reason != reason or error:
        _history(cash_register, PENDING, reason, cash_register.terminal.number if cash_register.terminal else None,
                 error or REASON_MESSAGES[reason])
    cash_register.state, cash_register.reason = PENDING, reason
    cash_register.last_attempt_at = utcnow()
    if error:
        cash_register.last_error = error
    db.session.commit()
    return RegistrationState("PENDING", reason=reason)


def _stoloto_failed(cash_register: CashRegister, outcome: Outcome) -> RegistrationState:
    if outcome.answered:
        # A definite "no" (401, 400…): the next attempt is a new request; the claim stays.
        cash_register.registration_request_id = str(uuid.uuid4())
    return _wait(cash_register, STOLOTO_UNAVAILABLE, str(outcome_error(outcome, "регистрации терминала")))


def _retire_terminal(cash_register: CashRegister, why: str, contract_id: int) -> None:
    """The register's number is never used again; the register starts over under `contract_id`."""
    terminal = cash_register.terminal
    if terminal is not None:
        terminal.status = "retired"
        _history(cash_register, PENDING, None, terminal.number, f"номер терминала выведен: {why}")
    cash_register.terminal = None
    cash_register.contract_id = contract_id
    cash_register.registration_request_id = None
    cash_register.state, cash_register.reason = PENDING, None
    db.session.commit()


def _history(cash_register: CashRegister, state: str, reason: str | None, terminal_number: str | None,
             details: str) -> None:
    """A row of the register's history, in the caller's transaction (a plain INSERT: nothing reads it back)."""
    db.session.execute(RegistrationAttempt.__table__.insert().values(
        cash_register_id=cash_register.id, created_at=utcnow(), state=state, reason=reason,
        terminal_number=terminal_number, details=details))


def finish_pending(limit: int = 500) -> int:
    """The job: finishes waiting registers and re-registers those whose store moved to another contract."""
    moved = CashRegister.contract_id != Store.contract_id
    query = (select(CashRegister.id).join(Store)
             .where(Store.contract_id.is_not(None), or_(CashRegister.state == PENDING, moved))
             .order_by(CashRegister.last_attempt_at.is_not(None), CashRegister.last_attempt_at)
             .limit(limit))
    finished = 0
    for register_id in db.session.scalars(query).all():
        cash_register = db.session.get(CashRegister, register_id)
        if advance(cash_register).status == "REGISTERED":
            finished += 1
    return finished
