"""Rows the tests set up in one call, where the manual's steps would take many."""
from stoloto.extensions import db
from stoloto.models import Contract, Terminal, TerminalBatch


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
