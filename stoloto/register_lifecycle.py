"""Cash-register states, the reasons a register waits, the allowed moves and the one function that moves a register.

A register is `pending` until Stoloto confirms its terminal number (docs/protocols.md §1.3), then
`registered`. Its row is read by one query as a mapping (services/registers.py) and moved here
on the caller's Core connection: every registration runs through this, so statements are built
once, at import, and a move costs one UPDATE (or INSERT) plus what it changes besides.

A register whose store is bound to another contract than its own carries `store_moved`, so the job
finds it by an index: binding a store sets it (services/stores.py), and a move that gives the register
its store's contract sets it from the store as it is at that moment.
"""
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import stats
from .lifecycle import ContractStatus
from .models import CashRegister, RegistrationAttempt, Store, Terminal, utcnow


class RegisterState(StrEnum):
    PENDING = "pending"
    REGISTERED = "registered"


STATE_LABELS = {RegisterState.REGISTERED: "Зарегистрирована", RegisterState.PENDING: "Ожидает регистрации"}


class Reason(StrEnum):
    """Why a register waits. The API tells the first three (docs/protocols.md §3.1 fixes them)."""
    CONTRACT_NOT_ACTIVE = "CONTRACT_NOT_ACTIVE"
    NO_FREE_TERMINALS = "NO_FREE_TERMINALS"
    STOLOTO_UNAVAILABLE = "STOLOTO_UNAVAILABLE"  # Stoloto left the call unanswered, or cannot be called
    STOLOTO_REFUSED = "STOLOTO_REFUSED"          # Stoloto answered no (401, 400, KEY_MISMATCH…)


REASON_LABELS = {
    Reason.CONTRACT_NOT_ACTIVE: "Договор не активен",
    Reason.NO_FREE_TERMINALS: "Нет свободных терминалов",
    Reason.STOLOTO_UNAVAILABLE: "Столото недоступен",
    Reason.STOLOTO_REFUSED: "Столото отказал",
}
REASON_MESSAGES = {
    Reason.CONTRACT_NOT_ACTIVE: "Договор магазина ещё не в статусе «Активный»: касса будет зарегистрирована, "
                                "когда договор активируют.",
    Reason.NO_FREE_TERMINALS: "Нет свободных номеров терминалов: СИ запросил новый пакет у Столото, "
                              "касса будет зарегистрирована автоматически.",
    Reason.STOLOTO_UNAVAILABLE: "Сервис Столото недоступен: номер терминала закреплён за кассой, "
                                "регистрация будет завершена автоматически.",
}
# The reason as the API names it: its enum is fixed, so a refusal is told by the message and `stoloto_error`.
API_REASONS = {reason: reason for reason in Reason} | {Reason.STOLOTO_REFUSED: Reason.STOLOTO_UNAVAILABLE}


def refusal_message(code: str, message: str | None) -> str:
    """What the register and the admin are told when Stoloto refused the registration."""
    said = f": {message}" if message else ""
    return (f"Столото отказал в регистрации терминала{said} (код {code}). Номер терминала закреплён за кассой, "
            "СИ повторит регистрацию автоматически; если отказ повторяется, обратитесь в службу поддержки.")


class Move(StrEnum):
    CLAIM = "claim"        # a free number of the store's contract is bound to the register
    REGISTER = "register"  # Stoloto confirmed the binding
    WAIT = "wait"          # it cannot go on now; the reason says why
    RETIRE = "retire"      # Stoloto refused the number itself: it is never used again
    REBIND = "rebind"      # the store's new contract is «Активный»: the old number is retired, start over


@dataclass(frozen=True)
class Step:
    sources: frozenset  # the states the move starts from; None: the register is not recorded yet
    target: RegisterState
    terminal_becomes: str | None  # what the register's number becomes, if anything


MOVES: dict[Move, Step] = {
    Move.CLAIM: Step(frozenset({None, RegisterState.PENDING}), RegisterState.PENDING, None),
    Move.REGISTER: Step(frozenset({RegisterState.PENDING}), RegisterState.REGISTERED, "registered"),
    Move.WAIT: Step(frozenset({None, RegisterState.PENDING}), RegisterState.PENDING, None),
    Move.RETIRE: Step(frozenset({RegisterState.PENDING}), RegisterState.PENDING, "retired"),
    Move.REBIND: Step(frozenset({RegisterState.PENDING, RegisterState.REGISTERED}), RegisterState.PENDING,
                      "retired"),
}
# Moves that start the register over: the number and its request id go, the store's contract is taken.
STARTS_OVER = {Move.RETIRE, Move.REBIND}


def rebind_due(register) -> bool:
    """A store moved to another contract: its register moves once that contract is «Активный», and
    not before — until then it keeps working under the old one, with its number (Stoloto holds
    the binding; a number retired early would be lost for good)."""
    return (register["id"] is not None and register["contract_id"] != register["store_contract_id"]
            and register["contract_status"] == ContractStatus.ACTIVE.value)


_registers, _terminals, _stores = CashRegister.__table__, Terminal.__table__, Store.__table__


def _store_moved(store_id):
    """Whether the store is bound to another contract than the one the register takes (`taken`), read from
    the store as it is now: its row is locked FOR SHARE, so a concurrent binding of the store either waits
    for this move and then marks the register itself, or has committed and is read here."""
    store_contract = (select(_stores.c.contract_id).where(_stores.c.id == store_id)
                      .with_for_update(read=True).scalar_subquery())
    return store_contract.is_distinct_from(bindparam("taken"))


_INSERT = insert(_registers).values(store_moved=_store_moved(bindparam("taken_by_store"))).returning(_registers.c.id)
_UPDATE_SEEN = update(_registers).where(
    _registers.c.id == bindparam("seen_id"), _registers.c.state == bindparam("seen_state"),
    _registers.c.terminal_id.is_not_distinct_from(bindparam("seen_terminal_id")))
_UPDATE_STARTS_OVER = _UPDATE_SEEN.values(store_moved=_store_moved(_registers.c.store_id))
_SET_TERMINAL_STATUS = update(_terminals).where(_terminals.c.id == bindparam("seen_terminal_id"))
_INSERT_HISTORY = insert(RegistrationAttempt.__table__)
DETAILS = ("serial_number", "fiscal_number", "cash_type")


def move(connection: Connection, register: dict, step: Move, reason: Reason | None = None,
         details: str | None = None, **values) -> bool:
    """Moves the register in the caller's transaction (the caller commits) and brings `register` up to date.

    The UPDATE is conditional on the state and terminal the caller saw, so of two concurrent
    requests for one register exactly one moves it; the other gets False and must roll back and
    read the register again. A register not recorded yet is inserted; False if a concurrent
    request recorded it first. A history row is written with `details`; a wait writes one also
    when its reason is new.
    """
    seen_state, seen_terminal = register["state"], register["terminal_id"]
    rule = MOVES[step]
    if seen_state not in rule.sources:
        raise ValueError(f"a register in state {seen_state} cannot {step}")
    now = utcnow()
    changes = {"state": rule.target.value}
    if step is not Move.CLAIM:  # a claim only takes a number: why the register waited still holds
        # What Stoloto said is kept only by the wait that reports a refusal (its `values` carry it).
        changes.update(reason=reason and reason.value, last_attempt_at=now, stoloto_error_code=None,
                       stoloto_error_message=None)
    if step is Move.REGISTER:
        changes.update(registered_at=now, last_error=None)
    if step in STARTS_OVER:
        changes.update(terminal_id=None, registration_request_id=None, contract_id=register["store_contract_id"])
    changes.update(values)
    if register["id"] is None:
        changes["contract_id"] = register["store_contract_id"]
        row = {"store_id": register["store_id"], "cash_number": register["cash_number"],
               **{name: register[name] for name in DETAILS}, **changes,
               "taken": changes["contract_id"], "taken_by_store": register["store_id"]}
        try:
            register["id"] = connection.execute(_INSERT, row).scalar_one()
        except IntegrityError:
            return False
    else:
        statement, taken = _UPDATE_SEEN, {}
        if step in STARTS_OVER:
            statement, taken = _UPDATE_STARTS_OVER, {"taken": changes["contract_id"]}
        moved = connection.execute(statement, {"seen_id": register["id"], "seen_state": seen_state,
                                               "seen_terminal_id": seen_terminal, **changes, **taken})
        if moved.rowcount != 1:
            return False
    if rule.terminal_becomes and seen_terminal is not None:
        connection.execute(_SET_TERMINAL_STATUS, {"seen_terminal_id": seen_terminal,
                                                  "status": rule.terminal_becomes})
    reason_is_new = (seen_state, register["reason"]) != (rule.target, reason)
    if step is Move.WAIT and details is None and reason_is_new:
        details = REASON_MESSAGES.get(reason)
    if details:
        connection.execute(_INSERT_HISTORY, {
            "cash_register_id": register["id"], "created_at": now, "state": rule.target.value,
            "reason": reason and reason.value, "terminal_number": register["terminal_number"], "details": details})
    # Last before the caller's commit: a counter's row stays locked for as short as can be.
    _count(connection, register, step, reason if reason_is_new else None, changes, now)
    register.update(changes)
    if step in STARTS_OVER:
        register["terminal_number"] = None
    if step in STARTS_OVER or step is Move.REGISTER:
        register["registered_contract_number"] = register["contract_number"]
    return True


def _count(connection: Connection, register: dict, step: Move, new_reason: Reason | None, changes: dict,
           now) -> None:
    """The move's share of «Обзор»'s counters (stoloto/stats.py), in its transaction: a claim uses a number of
    the store's contract; a register registers, or starts waiting for a new reason (a refusal among them).
    A wait repeated for the same reason is not counted again, so the job's retries do not swell the figures."""
    if step is Move.CLAIM:
        stats.count_terminals(connection, register["store_contract_id"], now, used=1)
        return
    contract_id = changes.get("contract_id", register["contract_id"]) or register["store_contract_id"]
    if step is Move.REGISTER:
        stats.count_registration(connection, contract_id, stats.REGISTERED, now)
    elif step is Move.WAIT and new_reason is not None:
        outcome = stats.REFUSED if new_reason is Reason.STOLOTO_REFUSED else stats.WAITING
        stats.count_registration(connection, contract_id, outcome, now)
