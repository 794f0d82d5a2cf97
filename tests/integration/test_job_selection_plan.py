"""The job's selection of waiting registers is served by an index, never by reading every register (issue 14)."""
from sqlalchemy import insert, text

from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, Store
from stoloto.services import registers

STORES, PER_STORE = 100, 30


def chain_at_rest() -> None:
    """A chain as the job finds it most of the time: most registers registered, a few waiting, and one store
    moved to another active contract (its registers still under the old one)."""
    db.session.execute(insert(Contract), [{"id": 1, "number": "PLAN-1", "status": "active"},
                                          {"id": 2, "number": "PLAN-2", "status": "active"}])
    db.session.execute(insert(Store), [{"id": s, "code": str(500 + s), "contract_id": 1}
                                       for s in range(1, STORES + 1)])
    moved_store = STORES
    db.session.execute(insert(CashRegister), [
        {"store_id": s, "cash_number": n, "contract_id": 2 if s == moved_store else 1,
         "store_moved": s == moved_store, "state": "pending" if (s * PER_STORE + n) % 97 == 0 else "registered"}
        for s in range(1, STORES + 1) for n in range(1, PER_STORE + 1)])
    db.session.commit()


def plan_of(query) -> str:
    """The plan after statistics are taken, as autovacuum would, so the database plans with the real
    proportions (on the same connection: SQLite's other connections keep the statistics they read)."""
    with db.engine.connect() as connection:
        connection.execute(text("ANALYZE"))
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "postgresql":
            rows = connection.execute(text(f"EXPLAIN {compiled}")).scalars()
        else:
            rows = (row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        plan = "\n".join(rows)
        connection.rollback()
    return plan


def test_waiting_and_moved_registers_are_selected_through_one_partial_index(app):
    """Registers that wait and registers whose store moved to another contract come from
    ix_cash_registers_waiting in the order the job takes them (the oldest first): no register outside it
    is read, and nothing is sorted."""
    with app.app_context():
        chain_at_rest()
        plan = plan_of(registers.waiting_selection(8))
    assert "ix_cash_registers_waiting" in plan, plan
    assert "Seq Scan on cash_registers" not in plan and "uq_cash_registers_store_cash" not in plan, plan
    assert "Sort" not in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
