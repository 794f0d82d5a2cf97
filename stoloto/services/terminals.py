"""Terminal numbers: fetching batches from Stoloto (docs/protocols.md §1.2) so that none is lost or doubled.

A batch row and its X-Request-Id are committed before the call; the numbers and the batch's
completion are committed together after it. A batch left pending (the answer was lost, the
process died) is retried with the same id, and Stoloto answers with the same numbers.
"""
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit, errors, settings, stats
from ..extensions import db
from ..lifecycle import ContractStatus, transition
from ..models import Contract, Terminal, TerminalBatch, utcnow
from ..stoloto_services import BATCHES
from .gateway import outcome_error, stoloto_client

log = logging.getLogger(__name__)
ACTION = "Получение пакета терминалов"
# After a definite refusal (e.g. TERMINAL_LIMIT_EXCEEDED) wait before asking again.
FAILED_BATCH_PAUSE = timedelta(minutes=5)
PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass
class FetchReport:
    received: dict[str, int] = field(default_factory=dict)  # contract number → numbers received
    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"{number}: получено {count}" for number, count in self.received.items()]
        parts += [f"{number}: {error}" for number, error in self.errors.items()]
        return "; ".join(parts) or "пакеты не нужны"


def pool_counts(contract_id: int) -> dict[str, int]:
    rows = db.session.execute(select(Terminal.status, func.count()).where(Terminal.contract_id == contract_id)
                              .group_by(Terminal.status)).all()
    return {status: count for status, count in rows}


def free_count(contract_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Terminal)
                             .where(Terminal.contract_id == contract_id, Terminal.status == "free"))


def due_contract_ids() -> list[int]:
    """Contracts waiting for their first batch, active ones under the threshold, and unfinished batches."""
    threshold = settings.get(settings.REFILL_THRESHOLD)
    free = (select(func.count()).select_from(Terminal)
            .where(Terminal.contract_id == Contract.id, Terminal.status == "free").scalar_subquery())
    pending = select(TerminalBatch.contract_id).where(TerminalBatch.status == PENDING)
    query = select(Contract.id).where(
        (Contract.status == ContractStatus.AWAITING_TERMINALS.value)
        | ((Contract.status == ContractStatus.ACTIVE.value) & (free < threshold))
        | Contract.id.in_(pending)
    ).order_by(Contract.id)
    return list(db.session.scalars(query))


def fetch_due_batches(actor: str = audit.SYSTEM_ACTOR) -> FetchReport:
    report = FetchReport()
    for contract_id in due_contract_ids():
        contract = db.session.get(Contract, contract_id)
        try:
            received = fetch_batch(contract_id, actor)
        except errors.SisError as error:
            report.errors[contract.number] = str(error)
            continue
        if received:
            report.received[contract.number] = received
    return report


def fetch_batch(contract_id: int, actor: str = audit.SYSTEM_ACTOR, force: bool = False) -> int:
    """Requests (or re-requests) one batch for the contract; returns how many numbers arrived."""
    contract = db.session.get(Contract, contract_id)
    if contract.status not in (ContractStatus.AWAITING_TERMINALS.value, ContractStatus.ACTIVE.value):
        return 0
    batch = _pending_batch(contract) or (None if not force and _recently_refused(contract)
                                         else _new_batch(contract))
    if batch is None:
        return 0
    client = stoloto_client(contract)
    batch.attempts += 1
    db.session.commit()
    outcome = client.request_batch(batch.request_id, contract.number, batch.requested_count)
    stats.record_call(db.session, BATCHES, outcome)
    if outcome.ok:
        return _complete(batch, outcome.data, actor)
    error = outcome_error(outcome, "получении пакета терминалов")
    batch.last_error = str(error)
    if outcome.answered:
        batch.status = FAILED  # a definite "no": the next batch is a new request with a new id
        batch.completed_at = utcnow()
    audit.record(actor, "contract", contract.id, ACTION, "error", f"пакет #{batch.id}: {error}")
    db.session.commit()
    log.warning("batch %s for contract %s: %s", batch.id, contract.number, error)
    raise error


def _pending_batch(contract: Contract) -> TerminalBatch | None:
    return db.session.scalar(select(TerminalBatch).where(TerminalBatch.contract_id == contract.id,
                                                         TerminalBatch.status == PENDING))


def _recently_refused(contract: Contract) -> bool:
    last = db.session.scalar(select(TerminalBatch).where(TerminalBatch.contract_id == contract.id)
                             .order_by(TerminalBatch.id.desc()).limit(1))
    return last is not None and last.status == FAILED and last.completed_at > utcnow() - FAILED_BATCH_PAUSE


def _new_batch(contract: Contract) -> TerminalBatch | None:
    batch = TerminalBatch(contract_id=contract.id, request_id=str(uuid.uuid4()),
                          requested_count=settings.get(settings.BATCH_SIZE), status=PENDING)
    db.session.add(batch)
    try:
        db.session.commit()  # the request id is durable before Stoloto hears of it
    except IntegrityError:
        db.session.rollback()  # another runner opened a batch for this contract first
        return None
    return batch


def _complete(batch: TerminalBatch, data: dict, actor: str) -> int:
    numbers = data["terminals"]
    finished = db.session.execute(
        update(TerminalBatch).where(TerminalBatch.id == batch.id, TerminalBatch.status == PENDING)
        .values(status=DONE, stoloto_batch_id=str(data.get("batch_id") or ""), received_count=len(numbers),
                completed_at=utcnow(), last_error=None)
        .execution_options(synchronize_session=False))
    if finished.rowcount != 1:
        db.session.rollback()  # someone else completed it with the same answer
        return 0
    db.session.execute(insert(Terminal), [
        {"number": number, "contract_id": batch.contract_id, "batch_id": batch.id, "status": "free",
         "created_at": utcnow()} for number in numbers])
    stats.count_terminals(db.session, batch.contract_id, utcnow(), issued=len(numbers))
    contract = db.session.get(Contract, batch.contract_id)
    audit.record(actor, "contract", contract.id, ACTION,
                 details=f"пакет {data.get('batch_id')}: {len(numbers)} номеров ({numbers[0]}…{numbers[-1]})")
    if contract.status == ContractStatus.AWAITING_TERMINALS.value:
        transition(contract, ContractStatus.ACTIVE, actor)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        message = "Столото выдал номер терминала, который уже есть в СИ: пакет не принят."
        db.session.execute(update(TerminalBatch).where(TerminalBatch.id == batch.id)
                           .values(status=FAILED, last_error=message, completed_at=utcnow()))
        audit.record(actor, "contract", batch.contract_id, ACTION, "error", message)
        db.session.commit()
        raise errors.SisError("DUPLICATE_TERMINAL", message, "Обратитесь в службу поддержки.") from None
    db.session.expire_all()
    return len(numbers)
