"""the job lease row says when the jobs last ran, so that every process can tell when they run next

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('scheduler_leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_run_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('scheduler_leases', schema=None) as batch_op:
        batch_op.drop_column('last_run_at')
