"""Rows the tests set up in one call, where the manual's steps would take many."""
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store, Terminal, TerminalBatch
from stoloto.services import activation, contracts, terminals
from stoloto.services.contracts import ContractInput


def active_contract_with_a_used_number(number: str, terminal_number: str) -> tuple[Contract, Terminal]:
    """An «Активный» contract and one terminal number of its, already registered (its batch done); flushed."""
    contract = Contract(number=number, status="active", agent_inn="7707083893")
    db.session.add(contract)
    db.session.flush()
    batch = TerminalBatch(contract_id=contract.id, request_id=f"00000000-0000-4000-8000-{terminal_number:0>12}",
                          requested_count=1, status="done")
    db.session.add(batch)
    db.session.flush()
    terminal = Terminal(number=terminal_number, contract_id=contract.id, batch_id=batch.id, status="registered")
    db.session.add(terminal)
    db.session.flush()
    return contract, terminal


def contract_awaiting_activation(stand, number: str, **at_stoloto) -> int:
    """A contract added, its «Приложение №5» made and its key registered at the stand (with `at_stoloto`, e.g.
    terminal_limit): «Ожидание активации»."""
    contract = contracts.create_contract(ContractInput(number=number, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "t")
    contracts.prepare_activation(contract.id, "t")
    stand.register(number, **at_stoloto)
    stand.confirm(contract.public_key_fingerprint)
    return contract.id


def activated_contract(stand, number: str, **at_stoloto) -> int:
    """contract_awaiting_activation, then activated: «Ожидание терминалов», waiting for its first batch."""
    contract_id = contract_awaiting_activation(stand, number, **at_stoloto)
    activation.activate(contract_id, "t")
    return contract_id


def active_contract(stand, number="REG-1") -> int:
    """An activated contract with its first batch of numbers: «Активный»."""
    contract_id = activated_contract(stand, number)
    terminals.fetch_due_batches()
    return contract_id


def stocked_contract(stand, number: str, terminals_wanted: int) -> int:
    """An «Активный» contract with at least `terminals_wanted` free numbers."""
    settings.save({settings.BATCH_SIZE: 1000, settings.REFILL_THRESHOLD: terminals_wanted}, "t")
    contract_id = activated_contract(stand, number)
    while terminals.pool_counts(contract_id).get("free", 0) < terminals_wanted:
        terminals.fetch_due_batches()
    return contract_id


def store(code: str, contract_id: int | None, address: str = "г. Москва, ул. Ленина, д. 1") -> int:
    row = Store(code=code, contract_id=contract_id, name=f"Магазин №{code}", address=address, source="manual")
    db.session.add(row)
    db.session.commit()
    return row.id


def waiting_registers(contract_id: int | None, store_code: str, count: int) -> list[int]:
    """`count` registers of a new store that asked before its contract was «Активный»: they wait for the job."""
    store_id = store(store_code, contract_id)
    rows = [CashRegister(store_id=store_id, cash_number=n, contract_id=contract_id, state="pending",
                         reason="CONTRACT_NOT_ACTIVE") for n in range(1, count + 1)]
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]
