"""cash_registers.cash_number and .serial_number indexed: «Кассы»'s search finds them without reading every row

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 20:00:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cash_registers_cash_number'), ['cash_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_cash_registers_serial_number'), ['serial_number'], unique=False)


def downgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cash_registers_serial_number'))
        batch_op.drop_index(batch_op.f('ix_cash_registers_cash_number'))
