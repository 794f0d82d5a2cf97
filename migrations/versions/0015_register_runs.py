"""register_runs: «Зарегистрировать сейчас» runs in the background and every process shows its progress

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 21:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'register_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('started_by', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('register_ids', sa.JSON(), nullable=False),
        sa.Column('done', sa.Integer(), nullable=False),
        sa.Column('registered', sa.Integer(), nullable=False),
        sa.Column('not_active', sa.Integer(), nullable=False),
        sa.Column('waiting_by_reason', sa.JSON(), nullable=True),
        sa.Column('alive_until', sa.DateTime(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade():
    op.drop_table('register_runs')
