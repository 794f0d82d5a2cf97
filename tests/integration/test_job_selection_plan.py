"""The job's selection of waiting registers is served by an index, never by reading every register (issue 14)."""
from sqlalchemy import text

from stoloto.extensions import db
from stoloto.services import registers


def plan_of(query) -> str:
    """The database's plan for the query; PostgreSQL is told not to read a table whole where an index could do."""
    with db.engine.connect() as connection:
        compiled = query.compile(connection, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))  # a table of a few rows is read whole
            rows = connection.execute(text(f"EXPLAIN {compiled}")).scalars()
        else:
            rows = (row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
        plan = "\n".join(rows)
        connection.rollback()
    return plan


def test_waiting_and_moved_registers_are_selected_through_one_partial_index(app):
    """Registers that wait and registers whose store moved to another contract come from
    ix_cash_registers_waiting in the order the job takes them (the oldest first), with no sort and no scan
    of cash_registers."""
    with app.app_context():
        plan = plan_of(registers.waiting_selection(500))
    assert "ix_cash_registers_waiting" in plan, plan
    assert "Seq Scan on cash_registers" not in plan and "SCAN cash_registers" not in plan.replace(
        "SCAN cash_registers USING INDEX", ""), plan
    assert "Sort" not in plan and "TEMP B-TREE FOR ORDER BY" not in plan, plan
