"""Cash registers: registration as Stoloto terminals (PROTOCOLS §3 served by SIS, §1.3 called by it).

A register gets a free terminal of its store's contract by one atomic claim, keeps it until
Stoloto confirms the binding, and is finished later by a job when it has to wait. The same
(store code, cash number) always gets the same terminal number.

Every registration runs through here, so its statements are built once, at import, and run on
one connection with explicit commits: building them per call, and the ORM session around them,
cost more than running them.
"""
import uuid
from dataclasses import dataclass, fields, replace

from sqlalchemy import Connection, and_, bindparam, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from .. import audit, errors, signals
from ..clients.stoloto import Outcome
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import CashRegister, Contract, RegistrationAttempt, Store, Terminal, utcnow
from . import stores
from .gateway import contract_client, outcome_error

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
DETAILS = ("serial_number", "fiscal_number", "cash_type")


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


@dataclass
class _Register:
    """A cash register with its store, contracts and terminal, as one query reads them.

    `id` is None until the register is recorded; the store's contract is the one it must be
    registered under, the register's own contract the one it is (or was) registered under.
    """
    store_id: int
    store_code: str
    address: str | None
    store_contract_id: int | None
    contract_number: str | None
    contract_status: str | None
    certificate_pem: str | None
    cash_number: int
    id: int | None
    state: str | None
    reason: str | None
    contract_id: int | None
    registered_contract_number: str | None
    terminal_id: int | None
    terminal_number: str | None
    request_id: str | None
    serial_number: str | None
    fiscal_number: str | None
    cash_type: str | None

    def state_now(self) -> RegistrationState:
        if self.state == REGISTERED:
            return RegistrationState("REGISTERED", self.terminal_number, self.registered_contract_number)
        return RegistrationState("PENDING", reason=self.reason or CONTRACT_NOT_ACTIVE)


_stores, _contracts, _terminals = Store.__table__, Contract.__table__, Terminal.__table__
_registers, _attempts = CashRegister.__table__, RegistrationAttempt.__table__
_registered_under = aliased(_contracts)
_FIND = (
    select(_stores.c.id.label("store_id"), _stores.c.code.label("store_code"), _stores.c.address,
           _stores.c.contract_id.label("store_contract_id"), _contracts.c.number.label("contract_number"),
           _contracts.c.status.label("contract_status"), _contracts.c.certificate_pem,
           _registers.c.id, _registers.c.state, _registers.c.reason, _registers.c.contract_id,
           _registered_under.c.number.label("registered_contract_number"), _registers.c.terminal_id,
           _terminals.c.number.label("terminal_number"), _registers.c.registration_request_id.label("request_id"),
           *(_registers.c[name] for name in DETAILS))
    .select_from(_stores.outerjoin(_contracts, _contracts.c.id == _stores.c.contract_id)
                 .outerjoin(_registers, and_(_registers.c.store_id == _stores.c.id,
                                             _registers.c.cash_number == bindparam("cash_number")))
                 .outerjoin(_registered_under, _registered_under.c.id == _registers.c.contract_id)
                 .outerjoin(_terminals, _terminals.c.id == _registers.c.terminal_id))
    .where(_stores.c.code == bindparam("store_code")))
_FREE = (select(_terminals.c.id).where(_terminals.c.contract_id == bindparam("pool_contract_id"),
                                       _terminals.c.status == "free").order_by(_terminals.c.id).limit(1))


def _claim_statement(skip_locked: bool):
    """One atomic claim; PostgreSQL also skips rows another transaction is claiming (SQLite has one writer)."""
    free = _FREE.with_for_update(skip_locked=True) if skip_locked else _FREE
    return (update(_terminals).where(_terminals.c.id == free.scalar_subquery()).values(status="claimed")
            .returning(_terminals.c.id, _terminals.c.number))


_CLAIM = {skip_locked: _claim_statement(skip_locked) for skip_locked in (False, True)}
_SET_TERMINAL_STATUS = update(_terminals).where(_terminals.c.id == bindparam("terminal_id"))
_INSERT_REGISTER = insert(_registers).returning(_registers.c.id)
_UPDATE_REGISTER = update(_registers).where(_registers.c.id == bindparam("register_id"))
_BIND = _UPDATE_REGISTER.where(_registers.c.terminal_id.is_(None))
_FINISH = _UPDATE_REGISTER.where(_registers.c.state != REGISTERED)
_INSERT_HISTORY = insert(_attempts)
JOURNAL_ACTION = "Регистрация кассы в Столото"


def register(data: RegistrationInput) -> RegistrationState:
    """PROTOCOLS §3.1: records the register and registers it now if it can; raises SisError otherwise."""
    with db.engine.connect() as connection:
        cash_register = _find(connection, data.store_code, data.cash_number)
        if cash_register is None:
            raise errors.SisError("STORE_UNKNOWN", f"Магазин с кодом {data.store_code} не найден в СИ.")
        if cash_register.store_contract_id is None:
            raise errors.SisError("STORE_NOT_BOUND", f"Магазин {data.store_code} не привязан к договору.")
        changed = {name: getattr(data, name) for name in DETAILS
                   if getattr(data, name) is not None and getattr(cash_register, name) != getattr(data, name)}
        if changed:
            if cash_register.id is not None:
                connection.execute(_UPDATE_REGISTER, {"register_id": cash_register.id, **changed})
                connection.commit()
            cash_register = replace(cash_register, **changed)
        return _advance(connection, cash_register, hold_off=True)


def current_state(store_code: str, cash_number: int) -> RegistrationState | None:
    """PROTOCOLS §3.2."""
    with db.engine.connect() as connection:
        cash_register = _find(connection, store_code, cash_number)
    return None if cash_register is None or cash_register.id is None else cash_register.state_now()


def finish_pending(limit: int = 500) -> int:
    """The job: finishes waiting registers and re-registers those whose store moved to another contract.

    Only registers whose store's contract is active: the others cannot move on, and rewriting them
    on every run would only churn the database. A store moved to a contract that is not active yet
    keeps its registers working under the old one until the new one is.

    Once Stoloto fails for a contract, the run skips that contract's other registers. They are the
    next run's first (the longest waiting go first).
    """
    moved = CashRegister.contract_id != Store.contract_id
    query = (select(Store.code, CashRegister.cash_number, Store.contract_id).join(Store)
             .join(Contract, Contract.id == Store.contract_id)
             .where(Contract.status == ContractStatus.ACTIVE.value, or_(CashRegister.state == PENDING, moved))
             .order_by(CashRegister.last_attempt_at.is_not(None), CashRegister.last_attempt_at)
             .limit(limit))
    with db.engine.connect() as connection:
        return _finish_each(connection, connection.execute(query).all()).registered


@dataclass
class FinishReport:
    registered: int = 0  # registered now or before
    waiting: int = 0     # still waiting; the list shows why
    not_active: int = 0  # left alone: their store has no contract, or it is not «Активный»

    def message(self) -> str:
        parts = [f"зарегистрировано: {self.registered}", f"ожидают: {self.waiting}"]
        if self.not_active:
            parts.append(f"не тронуты, договор магазина не «Активный»: {self.not_active}")
        return "Регистрация касс: " + "; ".join(parts) + "."


def parse_ids(values) -> list[int]:
    """Register ids as ticked in «Кассы»; anything else is refused."""
    try:
        return stores.parse_ids(values)
    except errors.SisError:
        raise errors.SisError("VALIDATION_ERROR", "Неверный список касс.",
                              "Вернитесь к списку и отметьте кассы снова.") from None


def finish_now(register_ids: list[int], actor: str) -> FinishReport:
    """«Зарегистрировать сейчас» in «Кассы»: what the job does, for the ticked registers, at once.

    A person asked, so Stoloto is asked even while the API holds it off. As in the job, registers
    of a store whose contract is not active are left alone, and a contract that Stoloto fails for
    is asked once.
    """
    query = (select(Store.code, CashRegister.cash_number, Store.contract_id, Contract.status)
             .select_from(CashRegister).join(Store).outerjoin(Contract, Contract.id == Store.contract_id)
             .where(CashRegister.id.in_(register_ids)).order_by(CashRegister.id))
    with db.engine.connect() as connection:
        rows = connection.execute(query).all()
        active = [row[:3] for row in rows if row.status == ContractStatus.ACTIVE.value]
        report = _finish_each(connection, active)
        report.not_active = len(rows) - len(active)
        audit.record_in(connection, actor, "cash_register", None, "Регистрация касс вручную",
                        details=report.message())
        connection.commit()
    return report


def _finish_each(connection: Connection, rows) -> FinishReport:
    """Advances each (store code, cash number, contract id); once Stoloto fails for a contract, the
    contract's other registers are skipped: a hanging Stoloto would hold the loop for a read timeout
    per register."""
    report, failing = FinishReport(), set()
    for store_code, cash_number, contract_id in rows:
        if contract_id in failing:
            report.waiting += 1
            continue
        state = _advance(connection, _find(connection, store_code, cash_number))
        if state.status == "REGISTERED":
            report.registered += 1
        else:
            report.waiting += 1
            if state.reason == STOLOTO_UNAVAILABLE:
                failing.add(contract_id)
    return report


def _find(connection: Connection, store_code: str, cash_number: int) -> _Register | None:
    row = connection.execute(_FIND, {"store_code": store_code, "cash_number": cash_number}).one_or_none()
    return None if row is None else _Register(**row._mapping, cash_number=cash_number)


def _advance(connection: Connection, cash_register: _Register, hold_off: bool = False) -> RegistrationState:
    """Takes the register as far as it can go now: re-binding, claim, Stoloto, or a reason to wait.

    With `hold_off` (the API), Stoloto is not asked while it has just left a call unanswered: the
    register waits for the job, which always asks.
    """
    if cash_register.id is not None and cash_register.contract_id != cash_register.store_contract_id:
        _retire_terminal(connection, cash_register, "магазин привязан к другому договору")
    if cash_register.state == REGISTERED:
        return cash_register.state_now()
    if cash_register.contract_status != ContractStatus.ACTIVE.value:
        return _wait(connection, cash_register, CONTRACT_NOT_ACTIVE)
    for _ in range(MAX_CLAIMS):
        if cash_register.terminal_id is None and not _claim(connection, cash_register):
            signals.terminals_needed.send(cash_register.store_contract_id)
            return _wait(connection, cash_register, NO_FREE_TERMINALS)
        if cash_register.state == REGISTERED:  # a concurrent request for the same register finished it
            return cash_register.state_now()
        connection.rollback()  # everything is committed: hold no transaction open during the call
        try:
            client = contract_client(cash_register.store_contract_id, cash_register.certificate_pem)
        except errors.SisError as error:  # not configured, key unreadable: wait, the claim is kept
            return _wait(connection, cash_register, STOLOTO_UNAVAILABLE, str(error))
        if hold_off and client.should_hold_off():
            return _wait(connection, cash_register, STOLOTO_UNAVAILABLE)
        outcome = client.register_terminal(
            cash_register.request_id, cash_register.terminal_number,
            {"contract_number": cash_register.contract_number, "store_code": cash_register.store_code,
             "cash_number": cash_register.cash_number, "serial_number": cash_register.serial_number,
             "address": cash_register.address})
        if outcome.ok:
            return _registered(connection, cash_register)
        if outcome.code in TERMINAL_REFUSED:
            error = str(outcome_error(outcome, "регистрации терминала"))
            _journal_failure(connection, cash_register, error)
            _retire_terminal(connection, cash_register, error)
            continue
        return _stoloto_failed(connection, cash_register, outcome)
    return _wait(connection, cash_register, NO_FREE_TERMINALS)


def _claim(connection: Connection, cash_register: _Register) -> bool:
    """Claims a free terminal and binds it to the register in one transaction; False if none is free.

    A concurrent request for the same register may record or bind it first: then ours goes back
    to the pool and the register is read again, with the terminal the other request bound.
    """
    claim = _CLAIM[connection.dialect.name == "postgresql"]
    for _ in range(2):
        connection.rollback()  # end the read transaction: the claim must see the pool as it is now
        terminal = connection.execute(claim, {"pool_contract_id": cash_register.store_contract_id}).one_or_none()
        if terminal is None:
            connection.rollback()
            return False
        request_id = str(uuid.uuid4())
        if _bind(connection, cash_register, terminal.id, request_id):
            connection.commit()
            cash_register.terminal_id, cash_register.terminal_number = terminal.id, terminal.number
            cash_register.request_id = request_id
            return True
        connection.rollback()
        reread = _find(connection, cash_register.store_code, cash_register.cash_number)
        for item in fields(_Register):
            setattr(cash_register, item.name, getattr(reread, item.name))
        if cash_register.terminal_id is not None:
            return True
    return cash_register.terminal_id is not None


def _bind(connection: Connection, cash_register: _Register, terminal_id: int, request_id: str) -> bool:
    """Sets the claimed terminal on the register, recording the register first if it is new."""
    if cash_register.id is None:
        try:
            cash_register.id = _insert(connection, cash_register, terminal_id=terminal_id,
                                       registration_request_id=request_id)
            return True
        except IntegrityError:  # the same register asked twice at once: the other request recorded it
            return False
    bound = connection.execute(_BIND, {"register_id": cash_register.id, "terminal_id": terminal_id,
                                       "registration_request_id": request_id})
    return bound.rowcount == 1


def _insert(connection: Connection, cash_register: _Register, **values) -> int:
    row = {"store_id": cash_register.store_id, "cash_number": cash_register.cash_number, "state": PENDING,
           "contract_id": cash_register.store_contract_id,
           **{name: getattr(cash_register, name) for name in DETAILS}, **values}
    return connection.execute(_INSERT_REGISTER, row).scalar_one()


def _registered(connection: Connection, cash_register: _Register) -> RegistrationState:
    now = utcnow()
    connection.execute(_SET_TERMINAL_STATUS, {"terminal_id": cash_register.terminal_id, "status": "registered"})
    finished = connection.execute(_FINISH, {"register_id": cash_register.id, "state": REGISTERED, "reason": None,
                                            "last_error": None, "last_attempt_at": now, "registered_at": now})
    if finished.rowcount:  # a concurrent request for the same register may have written this already
        _history(connection, cash_register, REGISTERED, None, cash_register.terminal_number,
                 f"зарегистрирована в Столото по договору № {cash_register.contract_number}")
    connection.commit()
    cash_register.state, cash_register.reason = REGISTERED, None
    cash_register.registered_contract_number = cash_register.contract_number
    return cash_register.state_now()


def _wait(connection: Connection, cash_register: _Register, reason: str, error: str | None = None,
          **values) -> RegistrationState:
    """Records why the register waits (a history row when the reason is new or an error came)."""
    changes = {"state": PENDING, "reason": reason, "last_attempt_at": utcnow(), **values}
    if error:
        changes["last_error"] = error
    if cash_register.id is None:
        try:
            cash_register.id = _insert(connection, cash_register, **changes)
        except IntegrityError:  # recorded meanwhile by a concurrent request: wait like it
            connection.rollback()
            return _find(connection, cash_register.store_code, cash_register.cash_number).state_now()
    else:
        connection.execute(_UPDATE_REGISTER, {"register_id": cash_register.id, **changes})
    if cash_register.state != PENDING or cash_register.reason != reason or error:
        _history(connection, cash_register, PENDING, reason, cash_register.terminal_number,
                 error or REASON_MESSAGES[reason])
    connection.commit()
    cash_register.state, cash_register.reason = PENDING, reason
    return cash_register.state_now()


def _stoloto_failed(connection: Connection, cash_register: _Register, outcome: Outcome) -> RegistrationState:
    error = str(outcome_error(outcome, "регистрации терминала"))
    _journal_failure(connection, cash_register, error)
    if outcome.answered:
        # A definite "no" (401, 400…): the next attempt is a new request; the claim stays.
        cash_register.request_id = str(uuid.uuid4())
        return _wait(connection, cash_register, STOLOTO_UNAVAILABLE, error,
                     registration_request_id=cash_register.request_id)
    return _wait(connection, cash_register, STOLOTO_UNAVAILABLE, error)


def _retire_terminal(connection: Connection, cash_register: _Register, why: str) -> None:
    """The register's number is never used again; the register starts over under its store's contract."""
    if cash_register.terminal_id is not None:
        connection.execute(_SET_TERMINAL_STATUS, {"terminal_id": cash_register.terminal_id, "status": "retired"})
        _history(connection, cash_register, PENDING, None, cash_register.terminal_number,
                 f"номер терминала выведен: {why}")
    connection.execute(_UPDATE_REGISTER, {
        "register_id": cash_register.id, "terminal_id": None, "contract_id": cash_register.store_contract_id,
        "registration_request_id": None, "state": PENDING, "reason": None})
    connection.commit()
    cash_register.terminal_id = cash_register.terminal_number = cash_register.request_id = None
    cash_register.contract_id = cash_register.store_contract_id
    cash_register.registered_contract_number = cash_register.contract_number
    cash_register.state, cash_register.reason = PENDING, None


def _journal_failure(connection: Connection, cash_register: _Register, error: str) -> None:
    """A failed call to Stoloto goes to «Журнал» too (and so to «Обзор»), in the caller's transaction.

    Only calls actually made: while the API holds off a failing Stoloto, nothing is added.
    """
    audit.record_in(connection, audit.SYSTEM_ACTOR, "cash_register", cash_register.id, JOURNAL_ACTION, "error",
                    f"Магазин {cash_register.store_code}, касса {cash_register.cash_number}, "
                    f"терминал {cash_register.terminal_number}: {error}")


def _history(connection: Connection, cash_register: _Register, state: str, reason: str | None,
             terminal_number: str | None, details: str) -> None:
    """A row of the register's history, in the caller's transaction."""
    connection.execute(_INSERT_HISTORY, {"cash_register_id": cash_register.id, "created_at": utcnow(), "state": state,
                                         "reason": reason, "terminal_number": terminal_number, "details": details})
