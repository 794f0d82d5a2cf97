"""register_runs.started_at indexed: each new run deletes the runs older than a week

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30 23:10:00

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_register_runs_started_at', 'register_runs', ['started_at'])


def downgrade():
    op.drop_index('ix_register_runs_started_at', table_name='register_runs')
