"""cash_registers.store_moved: a register whose store moved to another contract is found by ix_cash_registers_waiting

The job's selection compared every register's contract with its store's (a full scan of cash_registers);
the flag, kept by every write of either side, puts those registers in the waiting index beside the
registers that wait.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 21:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _waiting_index(batch_op, predicate: str) -> None:
    # SQLite sorts NULLs first anyway and refuses NULLS FIRST in an index.
    if op.get_bind().dialect.name == 'postgresql':
        batch_op.create_index('ix_cash_registers_waiting', [sa.text('last_attempt_at NULLS FIRST'), 'id'],
                              unique=False, postgresql_where=sa.text(predicate))
    else:
        batch_op.create_index('ix_cash_registers_waiting', ['last_attempt_at', 'id'], unique=False,
                              sqlite_where=sa.text(predicate))


def upgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('store_moved', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE cash_registers SET store_moved = "
               "(contract_id IS DISTINCT FROM (SELECT stores.contract_id FROM stores WHERE stores.id = store_id))"
               if op.get_bind().dialect.name == 'postgresql' else
               "UPDATE cash_registers SET store_moved = "
               "(contract_id IS NOT (SELECT stores.contract_id FROM stores WHERE stores.id = store_id))")
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_registers_waiting')
        # The job's condition (models.WAITING_OR_MOVED) as each database is sent it, so each proves the index covers it.
        moved = "store_moved" if op.get_bind().dialect.name == 'postgresql' else "store_moved = 1"
        _waiting_index(batch_op, f"state = 'pending' OR {moved}")


def downgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_registers_waiting')
        _waiting_index(batch_op, "state = 'pending'")
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_column('store_moved')
