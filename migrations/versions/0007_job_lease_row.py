"""the job lease row exists from the start, with when it was last renewed and a nudge counter

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 12:00:00

"""
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# Expired long ago: the first process to tick takes it.
NEVER = datetime(2000, 1, 1)


def upgrade():
    with op.batch_alter_table('scheduler_leases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('renewed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('nudges', sa.Integer(), server_default='0', nullable=False))
    leases = sa.table('scheduler_leases', sa.column('name', sa.String), sa.column('holder', sa.String),
                      sa.column('expires_at', sa.DateTime))
    connection = op.get_bind()
    if connection.execute(sa.select(leases.c.name).where(leases.c.name == 'jobs')).first() is None:
        op.bulk_insert(leases, [{'name': 'jobs', 'holder': '', 'expires_at': NEVER}])


def downgrade():
    with op.batch_alter_table('scheduler_leases', schema=None) as batch_op:
        batch_op.drop_column('nudges')
        batch_op.drop_column('renewed_at')
