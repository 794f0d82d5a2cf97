"""Cash registers: registration as Stoloto terminals (docs/protocols.md §3 served by SIS, §1.3 called by it).

A register gets a free terminal of its store's contract by one atomic claim, keeps it until
Stoloto confirms the binding, and is finished later by a job when it has to wait. The same
(store code, cash number) always gets the same terminal number. The register's states, reasons
and allowed moves are in register_lifecycle.py; this module decides which move comes next.

Every registration runs through here, so its statements are built once, at import, and run on
one connection with explicit commits: building them per call, and the ORM session around them,
cost more than running them.
"""
import contextvars
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from flask import current_app
from sqlalchemy import Connection, Integer, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.orm import aliased

from .. import audit, errors, settings, signals, stats
from ..clients.stoloto import Outcome
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import WAITING_OR_MOVED, CashRegister, Contract, RegisterRun, Store, Terminal, utcnow
from ..register_lifecycle import (
    API_REASONS,
    DETAILS,
    REASON_LABELS,
    REASON_MESSAGES,
    Move,
    Reason,
    RegisterState,
    move,
    rebind_due,
    refusal_message,
)
from ..stoloto_services import REGISTRATION
from . import stores
from .gateway import contract_client, outcome_error

REGISTERED, PENDING = RegisterState.REGISTERED, RegisterState.PENDING
CONTRACT_NOT_ACTIVE, NO_FREE_TERMINALS = Reason.CONTRACT_NOT_ACTIVE, Reason.NO_FREE_TERMINALS
STOLOTO_UNAVAILABLE, STOLOTO_REFUSED = Reason.STOLOTO_UNAVAILABLE, Reason.STOLOTO_REFUSED
# Stoloto says this number cannot be bound for us: retire it and take the next one.
TERMINAL_REFUSED = {"TERMINAL_ALREADY_BOUND", "TERMINAL_UNKNOWN"}
MAX_CLAIMS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationInput:
    store_code: str
    cash_number: int
    serial_number: str | None = None
    fiscal_number: str | None = None
    cash_type: str | None = None


@dataclass(frozen=True)
class RegistrationState:
    """What docs/protocols.md §3.1 and §3.2 answer: REGISTERED with the number, or PENDING with the reason."""
    status: str  # REGISTERED or PENDING
    terminal_number: str | None = None
    contract_number: str | None = None
    reason: str | None = None
    message: str | None = None
    stoloto_error: dict | None = None  # Stoloto's code and message, when it refused

    def as_json(self) -> dict:
        if self.status == "REGISTERED":
            return {"status": self.status, "terminal_number": self.terminal_number,
                    "contract_number": self.contract_number}
        extra = {"stoloto_error": self.stoloto_error} if self.stoloto_error else {}
        return {"status": self.status, "reason": self.reason, "message": self.message, **extra}


def _state(register: dict) -> RegistrationState:
    if register["state"] == REGISTERED:
        return RegistrationState("REGISTERED", register["terminal_number"], register["registered_contract_number"])
    reason = register["reason"] or CONTRACT_NOT_ACTIVE  # recorded with a number, Stoloto not asked yet
    if reason == STOLOTO_REFUSED:
        said = {"code": register["stoloto_error_code"], "message": register["stoloto_error_message"] or ""}
        return RegistrationState("PENDING", reason=API_REASONS[reason], stoloto_error=said,
                                 message=refusal_message(said["code"], said["message"]))
    return RegistrationState("PENDING", reason=reason, message=REASON_MESSAGES[reason])


_stores, _contracts, _terminals = Store.__table__, Contract.__table__, Terminal.__table__
_registers, _runs = CashRegister.__table__, RegisterRun.__table__
_registered_under = aliased(_contracts)
# The one query: a register (or, with id None, one not recorded yet) with its store, its store's
# contract (the one it must be registered under), the contract it is registered under, and its number.
_FIND = (
    select(_stores.c.id.label("store_id"), _stores.c.code.label("store_code"), _stores.c.address,
           _stores.c.contract_id.label("store_contract_id"), _contracts.c.number.label("contract_number"),
           _contracts.c.status.label("contract_status"), _contracts.c.certificate_pem,
           _registers.c.id, _registers.c.state, _registers.c.reason, _registers.c.contract_id,
           _registered_under.c.number.label("registered_contract_number"), _registers.c.terminal_id,
           _terminals.c.number.label("terminal_number"), _registers.c.registration_request_id,
           _registers.c.stoloto_error_code, _registers.c.stoloto_error_message,
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
_UPDATE_DETAILS = update(_registers).where(_registers.c.id == bindparam("register_id"))
JOURNAL_ACTION = "Регистрация кассы в Столото"


def register(data: RegistrationInput) -> RegistrationState:
    """docs/protocols.md §3.1: records the register and registers it now if it can; raises SisError otherwise."""
    with db.engine.connect() as connection:
        cash_register = _find(connection, data.store_code, data.cash_number)
        if cash_register is None:
            raise errors.SisError("STORE_UNKNOWN", f"Магазин с кодом {data.store_code} не найден в СИ.")
        if cash_register["store_contract_id"] is None:
            raise errors.SisError("STORE_NOT_BOUND", f"Магазин {data.store_code} не привязан к договору.")
        changed = {name: getattr(data, name) for name in DETAILS
                   if getattr(data, name) is not None and cash_register[name] != getattr(data, name)}
        if changed:
            if cash_register["id"] is not None:
                connection.execute(_UPDATE_DETAILS, {"register_id": cash_register["id"], **changed})
                connection.commit()
            cash_register.update(changed)
        return _advance(connection, cash_register, hold_off=True)


def current_state(store_code: str, cash_number: int) -> RegistrationState | None:
    """docs/protocols.md §3.2."""
    with db.engine.connect() as connection:
        cash_register = _find(connection, store_code, cash_number)
    return None if cash_register is None or cash_register["id"] is None else _state(cash_register)


def finish_pending() -> int:
    """finish_pending_report(), as the count of registers registered."""
    return finish_pending_report().registered


def finish_pending_report() -> "FinishReport":
    """The job: finishes waiting registers and re-registers those whose store moved to another contract.

    Only registers whose store's contract is active: the others cannot move on, and rewriting them
    on every run would only churn the database. A store moved to a contract that is not active yet
    keeps its registers working under the old one until the new one is.

    «Одновременных запросов к Столото» registers at a time, the longest waiting first, each once
    per run, for as long as the job interval: then the next run goes on. Once Stoloto fails for a
    contract, the run leaves that contract's other registers to the next run.
    """
    run = _Drain(deadline=time.monotonic() + settings.get(settings.JOB_INTERVAL))
    run.go()
    with db.engine.connect() as connection:
        waiting = connection.execute(_STILL_WAITING).scalar_one()
    return FinishReport(registered=run.registered, waiting=waiting)


@dataclass
class FinishReport:
    registered: int = 0  # registered now or before
    waiting: int = 0     # still waiting (the job: every register of an «Активный» contract); the list shows why
    not_active: int = 0  # left alone: their store has no contract, or it is not «Активный»
    by_reason: dict[Reason, int] = field(default_factory=dict)  # of the waiting, when counted

    def message(self) -> str:
        reasons = ", ".join(f"«{REASON_LABELS[reason]}» — {count}" for reason, count in self.by_reason.items())
        parts = [f"зарегистрировано {self.registered}",
                 f"ожидают {self.waiting}" + (f" ({reasons})" if reasons else "")]
        if self.not_active:
            parts.append(f"не тронуто {self.not_active} (договор магазина не «Активный»)")
        return "Регистрация касс: " + ", ".join(parts) + "."


def waiting_by_reason() -> dict[str, int]:
    """Every register still waiting, counted by reason (one recorded before Stoloto was asked: contract not active)."""
    reason = func.coalesce(_registers.c.reason, CONTRACT_NOT_ACTIVE.value)
    with db.engine.connect() as connection:
        rows = connection.execute(select(reason, func.count()).where(_registers.c.state == PENDING.value)
                                  .group_by(reason)).all()
    return {Reason(code): count for code, count in sorted(rows, key=lambda row: list(Reason).index(row[0]))}


def parse_ids(values) -> list[int]:
    """Register ids as ticked in «Кассы»; anything else is refused."""
    try:
        return stores.parse_ids(values)
    except errors.SisError:
        raise errors.SisError("VALIDATION_ERROR", "Неверный список касс.",
                              "Вернитесь к списку и отметьте кассы снова.") from None


RUN_JOURNAL_ACTION = "Регистрация касс вручную"
# A run's notice is kept this long (its counts are in «Журнал» for good); each new run deletes older ones.
RUNS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    refusal: str | None = None  # the ticked registers are already under way in this (earlier) run


def finish_now(register_ids: list[int], actor: str) -> RunStarted:
    """«Зарегистрировать сейчас» in «Кассы»: what the job does, for the ticked registers, in the background.

    A person asked, so Stoloto is asked even while the API holds it off, and with no time limit. As
    in the job, registers of a store whose contract is not active are left alone, the registers go
    «Одновременных запросов к Столото» at a time, and a contract that Stoloto fails for is asked once.
    The run outlives the request; its row (register_runs) tells every process how far it is (run_state).
    While a run goes on, pressing again on any of its registers shows that run rather than a second
    one; the registers' claims keep the job and any run that starts anyway off them.
    """
    query = (select(CashRegister.id, Contract.status)
             .select_from(CashRegister).join(Store).outerjoin(Contract, Contract.id == Store.contract_id)
             .where(CashRegister.id.in_(register_ids)).order_by(CashRegister.id))
    rows = db.session.execute(query).all()
    if not rows:
        raise errors.SisError("NOT_FOUND", "Отмеченные кассы не найдены: обновите страницу и отметьте их снова.")
    ids = [row.id for row in rows]
    for run in _runs_under_way():
        if not set(run.register_ids).isdisjoint(ids):
            return RunStarted(run.id, "Отмеченные кассы уже регистрируются: дождитесь конца запуска, "
                                      f"начатого {run.started_by}.")
    now = utcnow()
    db.session.execute(delete(RegisterRun).where(RegisterRun.started_at < now - RUNS_KEPT,  # indexed
                                                 or_(RegisterRun.finished_at.is_not(None),
                                                     RegisterRun.alive_until < now)))
    active = [row.id for row in rows if row.status == ContractStatus.ACTIVE.value]
    registered = db.session.execute(_REGISTERED_AMONG, {"ids": active}).scalar_one() if active else 0
    drain = _Run(active)
    run = RegisterRun(started_by=actor, register_ids=ids, registered=registered, not_active=len(rows) - len(active),
                      done=len(rows) - len(active) + registered, alive_until=utcnow() + drain.claim_for)
    db.session.add(run)
    db.session.commit()
    drain.progress = _Progress(run.id, run.done, registered, drain.claim_for)
    threading.Thread(target=_finish_run, args=(drain, run.id, actor, len(rows)), daemon=True,
                     name=f"sis-register-run-{run.id}").start()
    return RunStarted(run.id)


@dataclass(frozen=True)
class RunState:
    """What «Кассы» shows of a run: its notice, and whether it still goes on."""
    id: int
    running: bool
    notice: str
    category: str  # the notice's Bootstrap alert


def run_state(run_id: int | None) -> RunState | None:
    run = None if run_id is None else db.session.get(RegisterRun, run_id)
    if run is None:
        return None
    total = len(run.register_ids)
    if run.finished_at is not None:
        report = _report(run.registered, run.not_active, run.waiting_by_reason)
        return RunState(run.id, False, report.message(),
                        "warning" if report.waiting or report.not_active else "success")
    if run.alive_until < utcnow():  # its process stopped: the job takes its registers once their claims expire
        return RunState(run.id, False, f"Регистрация касс прервалась на {run.done} из {total} (зарегистрировано "
                                       f"{run.registered}): процесс СИ остановился. Остальные кассы "
                                       "зарегистрирует фоновое задание.", "danger")
    return RunState(run.id, True, f"Регистрация касс: {run.done} из {total}…", "info")


def runs_to_show(run_id: int | None) -> list[RunState]:
    """The notices «Кассы» shows: the run the page names (the one the user just started), and every run under way."""
    wanted = [run.id for run in _runs_under_way()]
    if run_id is not None and run_id not in wanted:
        wanted.insert(0, run_id)
    return [state for state in map(run_state, wanted) if state is not None]


def _report(registered: int, not_active: int, waiting_by_reason: dict[str, int] | None) -> FinishReport:
    waiting = waiting_by_reason or {}
    return FinishReport(registered=registered, waiting=sum(waiting.values()), not_active=not_active,
                        by_reason={Reason(code): count for code, count in waiting.items()})


def _runs_under_way() -> list[RegisterRun]:
    return list(db.session.scalars(select(RegisterRun).where(RegisterRun.finished_at.is_(None),
                                                             RegisterRun.alive_until >= utcnow())
                                   .order_by(RegisterRun.id)))


def _finish_run(drain: "_Run", run_id: int, actor: str, total: int) -> None:
    """The run's thread: drains its registers, then writes the counts to its row and to «Журнал»."""
    with drain.app.app_context():
        try:
            if drain.register_ids:
                drain.go()
        except Exception:  # the counts below still tell what it did; the job takes the rest
            log.exception("register run %s broke off", run_id)
        try:
            _record_finish(run_id, actor, drain.register_ids, total)
        except Exception:  # the row stays unfinished and says so once its claims have expired
            log.exception("register run %s could not record its end", run_id)


_REASON = func.coalesce(_registers.c.reason, CONTRACT_NOT_ACTIVE.value)  # one recorded before Stoloto was asked
_WAITING_AMONG = (select(_REASON, func.count())
                  .where(_registers.c.id.in_(bindparam("ids", expanding=True)), _registers.c.state == PENDING.value)
                  .group_by(_REASON))


def _record_finish(run_id: int, actor: str, active: list[int], total: int) -> None:
    with db.engine.connect() as connection:
        registered = connection.execute(_REGISTERED_AMONG, {"ids": active}).scalar_one() if active else 0
        waiting = dict(connection.execute(_WAITING_AMONG, {"ids": active}).all()) if active else {}
        by_reason = {reason.value: waiting[reason.value] for reason in Reason if waiting.get(reason.value)}
        connection.execute(update(_runs).where(_runs.c.id == run_id).values(
            done=total, registered=registered, waiting_by_reason=by_reason, finished_at=utcnow()))
        run = connection.execute(select(_runs.c.not_active, _runs.c.register_ids).where(_runs.c.id == run_id)).one()
        audit.record_in(connection, actor, "cash_register", None, RUN_JOURNAL_ACTION,
                        details=_report(registered, run.not_active, by_reason).message(), object_ids=run.register_ids)
        connection.commit()


class _Progress:
    """A run's counts, written to its row at most every EVERY seconds; each write also pushes on
    how long the run counts as alive, as far as the claims of the registers it advances reach."""

    EVERY = 0.5

    def __init__(self, run_id: int, done: int, registered: int, alive_for: timedelta):
        self.run_id, self.done, self.registered, self.alive_for = run_id, done, registered, alive_for
        self.lock = threading.Lock()
        self.written = time.monotonic()

    def advanced(self, state: RegistrationState | None) -> None:
        with self.lock:
            self.done += 1
            self.registered += state is not None and state.status == "REGISTERED"
            if time.monotonic() - self.written < self.EVERY:
                return
            self.written = time.monotonic()
            with db.engine.connect() as connection:
                connection.execute(update(_runs).where(_runs.c.id == self.run_id)
                                   .values(done=self.done, registered=self.registered,
                                           alive_until=utcnow() + self.alive_for))
                connection.commit()


def _due(postgresql: bool, by_ids: bool):
    """The longest waiting registers a run may take now (up to `batch`): the store's contract is «Активный»,
    the register waits or must move to that contract, no run holds it, this run has not tried it yet, and
    its contract is not one this run leaves alone. PostgreSQL skips rows another run is claiming this instant.

    ix_cash_registers_waiting holds exactly the registers that wait or whose store moved, in this order: the
    run reads it from the oldest and stops at `batch`, never every register (nor every store's registers).
    """
    due = (select(_registers.c.id)
           .select_from(_registers.join(_stores, _stores.c.id == _registers.c.store_id)
                        .join(_contracts, _contracts.c.id == _stores.c.contract_id))
           .where(WAITING_OR_MOVED, _contracts.c.status == ContractStatus.ACTIVE.value,
                  or_(_registers.c.claimed_until.is_(None), _registers.c.claimed_until < bindparam("now")),
                  or_(_registers.c.last_attempt_at.is_(None), _registers.c.last_attempt_at < bindparam("started")),
                  _stores.c.contract_id.not_in(bindparam("skip_contracts", expanding=True)))
           .order_by(*_OLDEST_FIRST)
           .limit(bindparam("batch", type_=Integer)))
    if by_ids:
        due = due.where(_registers.c.id.in_(bindparam("ids", expanding=True)))
    if postgresql:
        due = due.with_for_update(skip_locked=True, of=_registers)
    return due


def waiting_selection(limit: int):
    """The job's selection of the next registers to claim, as a run starts it, with its values bound (for EXPLAIN)."""
    now = utcnow()
    return _due(db.engine.dialect.name == "postgresql", by_ids=False).params(
        now=now, started=now, skip_contracts=[], batch=limit)


_OLDEST_FIRST = (_registers.c.last_attempt_at.asc().nulls_first(), _registers.c.id)


def _claim_registers_statement(postgresql: bool, by_ids: bool):
    """Claims the next due registers for a run in one statement (on SQLite the one writer makes it atomic)."""
    store_of = select(_stores.c.code, _stores.c.contract_id).where(_stores.c.id == _registers.c.store_id)
    return (update(_registers)
            .where(_registers.c.id.in_(_due(postgresql, by_ids)),
                   or_(_registers.c.claimed_until.is_(None), _registers.c.claimed_until < bindparam("now")))
            .values(claimed_until=bindparam("until"))
            .returning(_registers.c.id, _registers.c.cash_number,
                       store_of.with_only_columns(_stores.c.code).scalar_subquery().label("store_code"),
                       store_of.with_only_columns(_stores.c.contract_id).scalar_subquery().label("contract_id"),
                       _registers.c.last_attempt_at))


_CLAIM_REGISTERS = {(postgresql, by_ids): _claim_registers_statement(postgresql, by_ids)
                    for postgresql in (False, True) for by_ids in (False, True)}
_RELEASE = (update(_registers).where(_registers.c.id.in_(bindparam("register_ids", expanding=True)),
                                     _registers.c.claimed_until == bindparam("until"))
            .values(claimed_until=None))
_STILL_WAITING = (select(func.count()).select_from(_registers.join(_stores, _stores.c.id == _registers.c.store_id)
                                                   .join(_contracts, _contracts.c.id == _stores.c.contract_id))
                  .where(_contracts.c.status == ContractStatus.ACTIVE.value, _registers.c.state == PENDING.value))
_REGISTERED_AMONG = (select(func.count()).select_from(_registers.join(_stores, _stores.c.id == _registers.c.store_id))
                     .where(_registers.c.id.in_(bindparam("ids", expanding=True)),
                            _registers.c.state == REGISTERED.value, _registers.c.contract_id == _stores.c.contract_id))


class _Drain:
    """One run over waiting registers: «Одновременных запросов к Столото» workers, each in its own app
    context with its own connection, advance the registers the run claimed, oldest first.

    The run claims as many registers at once as it has workers and hands them out one by one. A
    contract's first register in the run is its probe: until Stoloto has answered it, the contract's
    other registers wait, so a contract that fails (or hangs until the read timeout) is asked once and
    holds one worker, not all of them; after a failure the run gives its other registers back.
    """

    def __init__(self, deadline: float | None = None, register_ids: list[int] | None = None,
                 hold_off: bool = False):
        self.app = current_app._get_current_object()
        self.deadline, self.register_ids, self.hold_off = deadline, register_ids, hold_off
        self.workers = settings.get(settings.STOLOTO_CONCURRENCY)
        if register_ids is not None:
            self.workers = min(self.workers, len(register_ids))
        # A claim outlives the longest a register can take (a few calls to the read timeout), so a crashed
        # run's registers are taken again later, and never while this run still works on them.
        call = settings.get(settings.CONNECT_TIMEOUT) + settings.get(settings.READ_TIMEOUT)
        self.claim_for = timedelta(seconds=MAX_CLAIMS * call + 60)
        self.started = utcnow()
        self.lock = threading.Condition()
        self.claimed: list[_Claimed] = []  # claimed, not handed out yet; oldest first
        self.finished: list[_Claimed] = []  # advanced: their claims go back with the next claim's commit
        self.exhausted = False           # the database has nothing more for this run
        self.answered: set[int] = set()  # contracts Stoloto answered in this run: no probe needed
        self.probing: set[int] = set()   # contracts whose probe is under way
        self.failing: set[int] = set()   # contracts left to the next run
        self.registered = 0

    def go(self) -> None:
        try:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="sis-drain") as pool:
                for future in [pool.submit(contextvars.copy_context().run, self._work) for _ in range(self.workers)]:
                    future.result()
        finally:
            with db.engine.connect() as connection:  # what the run claimed, reached or not, goes back
                self._give_back(connection, self.finished + self.claimed)

    def _work(self) -> None:
        with self.app.app_context(), db.engine.connect() as connection:
            while True:
                claimed = self._next(connection)
                if claimed is None:
                    return
                state = self._advance(connection, claimed)
                with self.lock:
                    self.finished.append(claimed)
                    self.probing.discard(claimed.contract_id)
                    if state is not None and state.status == "REGISTERED":
                        self.registered += 1
                    if state is None or state.reason == STOLOTO_UNAVAILABLE:  # unanswered or refused
                        self.failing.add(claimed.contract_id)
                    else:
                        self.answered.add(claimed.contract_id)
                    self.lock.notify_all()

    def _next(self, connection: Connection) -> "_Claimed | None":
        """The next register to advance, or None when the run is over for this worker."""
        with self.lock:
            while self.deadline is None or time.monotonic() < self.deadline:
                given_back = [item for item in self.claimed if item.contract_id in self.failing]
                if given_back:
                    self._give_back(connection, given_back)
                    self.claimed = [item for item in self.claimed if item.contract_id not in self.failing]
                for index, item in enumerate(self.claimed):
                    if item.contract_id not in self.probing:
                        if item.contract_id not in self.answered:
                            self.probing.add(item.contract_id)
                        return self.claimed.pop(index)
                if not self.exhausted and self._claim(connection):
                    continue
                if not self.probing:
                    return None
                self.lock.wait(timeout=1.0)  # a probe's answer lets its contract's registers go
            return None

    def _claim(self, connection: Connection) -> bool:
        """Claims up to one register per worker more, and gives back the claims of the registers advanced
        since, in one transaction; False when the database has none left for the run."""
        statement = _CLAIM_REGISTERS[connection.dialect.name == "postgresql", self.register_ids is not None]
        self._give_back(connection, self.finished, commit=False)
        self.finished = []
        now = utcnow()
        rows = connection.execute(statement, {
            "now": now, "until": now + self.claim_for, "started": self.started, "batch": self.workers,
            "skip_contracts": sorted(self.failing | self.probing), "ids": self.register_ids or []}).all()
        connection.commit()
        if not rows:
            self.exhausted = not self.probing  # a probe's contract may still have registers to give
            return False
        rows.sort(key=lambda row: (row.last_attempt_at is not None, row.last_attempt_at or now, row.id))
        self.claimed += [_Claimed(*row[:4], until=now + self.claim_for) for row in rows]
        return True

    @staticmethod
    def _give_back(connection: Connection, items: list["_Claimed"], commit: bool = True) -> None:
        for until in {item.until for item in items}:
            connection.execute(_RELEASE, {"register_ids": [item.id for item in items if item.until == until],
                                          "until": until})
        if commit:
            connection.commit()

    def _advance(self, connection: Connection, claimed: "_Claimed") -> RegistrationState | None:
        """Advances the claimed register; None if it broke (logged)."""
        try:
            cash_register = _find(connection, claimed.store_code, claimed.cash_number)
            return _advance(connection, cash_register, hold_off=self.hold_off)
        except Exception:  # one register must not end the run; the contract is left to the next one
            log.exception("cash register %s of store %s could not be advanced", claimed.cash_number,
                          claimed.store_code)
            return None
        finally:
            connection.rollback()


class _Run(_Drain):
    """The drain of «Зарегистрировать сейчас»: every register it advances counts in its run's progress."""

    def __init__(self, register_ids: list[int]):
        super().__init__(register_ids=register_ids)
        self.progress: _Progress | None = None

    def _advance(self, connection: Connection, claimed: "_Claimed") -> RegistrationState | None:
        state = super()._advance(connection, claimed)
        self.progress.advanced(state)
        return state


class _Claimed(NamedTuple):
    id: int
    cash_number: int
    store_code: str
    contract_id: int
    until: datetime


def _find(connection: Connection, store_code: str, cash_number: int) -> dict | None:
    """The register as the one query reads it, as a mapping that `move` keeps up to date."""
    row = connection.execute(_FIND, {"store_code": store_code, "cash_number": cash_number}).one_or_none()
    return None if row is None else {**row._mapping, "cash_number": cash_number}


def _advance(connection: Connection, cash_register: dict, hold_off: bool = False) -> RegistrationState:
    """Takes the register as far as it can go now: re-binding, claim, Stoloto, or a reason to wait.

    With `hold_off` (the API), Stoloto is not asked while it has just left a call unanswered: the
    register waits for the job, which always asks.
    """
    if rebind_due(cash_register):
        cash_register = _move(connection, cash_register, Move.REBIND, details=_rebind_details(cash_register))
    if cash_register["state"] == REGISTERED:
        return _state(cash_register)
    if cash_register["contract_status"] != ContractStatus.ACTIVE.value:
        return _wait(connection, cash_register, CONTRACT_NOT_ACTIVE)
    for _ in range(MAX_CLAIMS):
        if cash_register["terminal_id"] is None:
            cash_register = _claim(connection, cash_register)
            if cash_register["terminal_id"] is None:
                signals.terminals_needed.send(cash_register["store_contract_id"])
                return _wait(connection, cash_register, NO_FREE_TERMINALS)
        if cash_register["state"] == REGISTERED:  # a concurrent request for the same register finished it
            return _state(cash_register)
        connection.rollback()  # everything is committed: hold no transaction open during the call
        try:
            client = contract_client(cash_register["store_contract_id"], cash_register["certificate_pem"])
        except errors.SisError as error:  # not configured, key unreadable: wait, the claim is kept
            return _wait(connection, cash_register, STOLOTO_UNAVAILABLE, str(error))
        if hold_off and client.should_hold_off():
            return _wait(connection, cash_register, STOLOTO_UNAVAILABLE)
        outcome = client.register_terminal(
            cash_register["registration_request_id"], cash_register["terminal_number"],
            {"contract_number": cash_register["contract_number"], "store_code": cash_register["store_code"],
             "cash_number": cash_register["cash_number"], "serial_number": cash_register["serial_number"],
             "address": cash_register["address"]})
        stats.count_call(connection, REGISTRATION, outcome)  # committed with the move that follows
        if outcome.ok:
            details = f"зарегистрирована в Столото по договору № {cash_register['contract_number']}"
            _commit_without_waiting_for_the_disk(connection)
            return _state(_move(connection, cash_register, Move.REGISTER, details=details))
        if outcome.code in TERMINAL_REFUSED:
            error = str(outcome_error(outcome, "регистрации терминала"))
            _journal_failure(connection, cash_register, error)
            cash_register = _move(connection, cash_register, Move.RETIRE, details=f"номер терминала выведен: {error}")
            continue
        return _stoloto_failed(connection, cash_register, outcome)
    return _wait(connection, cash_register, NO_FREE_TERMINALS)


_ASYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def _commit_without_waiting_for_the_disk(connection: Connection) -> None:
    """The next commit, Stoloto's "registered", need not wait for PostgreSQL's disk (a commit costs ~10 ms on a
    busy server, and a registration makes two). Lost in a crash, it would be made again: the claim and the
    request id were committed, durably, before the call, so the job repeats the same request and Stoloto
    answers the same 200 with the same number (docs/protocols.md §1.3); the register only waits a little longer.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(_ASYNCHRONOUS_COMMIT)


def _move(connection: Connection, cash_register: dict, step: Move, reason: Reason | None = None,
          details: str | None = None, **values) -> dict:
    """Moves the register and commits; a concurrent request that moved it first wins, and the
    register is read again as that request left it."""
    if move(connection, cash_register, step, reason, details, **values):
        connection.commit()
        return cash_register
    connection.rollback()
    return _find(connection, cash_register["store_code"], cash_register["cash_number"])


def _rebind_details(cash_register: dict) -> str:
    moved = f"магазин привязан к договору № {cash_register['contract_number']}"
    if cash_register["terminal_id"] is None:
        return f"касса переходит на другой договор: {moved}"
    return f"номер терминала выведен: {moved}"


def _claim(connection: Connection, cash_register: dict) -> dict:
    """Claims a free terminal and binds it to the register in one transaction; the register comes
    back without a terminal if none is free.

    A concurrent request may record or bind the same register first: then our claim goes back to
    the pool (the rollback) and the register is read again, with the terminal the other request bound.
    """
    claim = _CLAIM[connection.dialect.name == "postgresql"]
    for _ in range(2):
        connection.rollback()  # end the read transaction: the claim must see the pool as it is now
        terminal = connection.execute(claim, {"pool_contract_id": cash_register["store_contract_id"]}).one_or_none()
        if terminal is None:
            connection.rollback()
            return cash_register
        if move(connection, cash_register, Move.CLAIM, terminal_id=terminal.id,
                registration_request_id=str(uuid.uuid4())):
            connection.commit()
            cash_register["terminal_number"] = terminal.number
            return cash_register
        connection.rollback()
        cash_register = _find(connection, cash_register["store_code"], cash_register["cash_number"])
        if cash_register["terminal_id"] is not None:
            return cash_register
    return cash_register


def _wait(connection: Connection, cash_register: dict, reason: Reason, error: str | None = None,
          **values) -> RegistrationState:
    """Records why the register waits (a history row when the reason is new or an error came)."""
    if error:
        values["last_error"] = error
    return _state(_move(connection, cash_register, Move.WAIT, reason, error, **values))


def _stoloto_failed(connection: Connection, cash_register: dict, outcome: Outcome) -> RegistrationState:
    if not outcome.answered:  # the outcome is unknown: the next attempt repeats this request
        error = str(outcome_error(outcome, "регистрации терминала"))
        _journal_failure(connection, cash_register, error)
        return _wait(connection, cash_register, STOLOTO_UNAVAILABLE, error)
    # A definite "no" (401, 400, KEY_MISMATCH…): the register and the admin are told what Stoloto
    # said; the claim stays, and the next attempt is a new request.
    code = outcome.code[:64]
    error = refusal_message(code, outcome.message)
    _journal_failure(connection, cash_register, error)
    return _wait(connection, cash_register, STOLOTO_REFUSED, error, stoloto_error_code=code,
                 stoloto_error_message=outcome.message, registration_request_id=str(uuid.uuid4()))


def _journal_failure(connection: Connection, cash_register: dict, error: str) -> None:
    """A failed call to Stoloto goes to «Журнал» too (and so to «Обзор»), in the caller's transaction.

    Only calls actually made: while the API holds off a failing Stoloto, nothing is added.
    """
    audit.record_in(connection, audit.SYSTEM_ACTOR, "cash_register", cash_register["id"], JOURNAL_ACTION, "error",
                    f"Магазин {cash_register['store_code']}, касса {cash_register['cash_number']}, "
                    f"терминал {cash_register['terminal_number']}: {error}")
