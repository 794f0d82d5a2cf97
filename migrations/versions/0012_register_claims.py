"""cash_registers.claimed_until: a run that drains waiting registers claims each one, so no two runs advance it at once

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:45:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_column('claimed_until')
