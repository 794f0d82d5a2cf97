"""partial indexes: the job's waiting registers (oldest first), «Кассы»'s reason filter, the free terminals

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 20:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        # SQLite sorts NULLs first anyway and refuses NULLS FIRST in an index.
        if op.get_bind().dialect.name == 'postgresql':
            batch_op.create_index('ix_cash_registers_waiting', [sa.text('last_attempt_at NULLS FIRST'), 'id'],
                                  unique=False, postgresql_where=sa.text("state = 'pending'"))
        else:
            batch_op.create_index('ix_cash_registers_waiting', ['last_attempt_at', 'id'], unique=False,
                                  sqlite_where=sa.text("state = 'pending'"))
        batch_op.create_index('ix_cash_registers_reason', ['reason'], unique=False,
                              postgresql_where=sa.text('reason IS NOT NULL'),
                              sqlite_where=sa.text('reason IS NOT NULL'))
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.create_index('ix_terminals_free', ['contract_id', 'id'], unique=False,
                              postgresql_where=sa.text("status = 'free'"), sqlite_where=sa.text("status = 'free'"))


def downgrade():
    with op.batch_alter_table('terminals', schema=None) as batch_op:
        batch_op.drop_index('ix_terminals_free')
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_registers_reason')
        batch_op.drop_index('ix_cash_registers_waiting')
