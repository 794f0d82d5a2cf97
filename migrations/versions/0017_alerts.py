"""alerts: Stoloto's state per service, alert episodes and their notices (issue 15 §2)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 23:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'stoloto_endpoints',
        sa.Column('endpoint', sa.String(length=32), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('last_ok_at', sa.DateTime(), nullable=True),
        sa.Column('failing_since', sa.DateTime(), nullable=True),
        sa.Column('last_failed_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('endpoint'),
    )
    op.create_table(
        'alert_episodes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('resolved_title', sa.Text(), nullable=True),
        sa.Column('resolved_message', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('uq_alert_episodes_open', 'alert_episodes', ['kind', 'subject'], unique=True,
                    sqlite_where=sa.text('resolved_at IS NULL'), postgresql_where=sa.text('resolved_at IS NULL'))
    op.create_table(
        'alert_notices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('episode_id', sa.Integer(), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_until', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('attempted_at', sa.DateTime(), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['episode_id'], ['alert_episodes.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_alert_notices_episode_id'), 'alert_notices', ['episode_id'], unique=False)
    op.create_index(op.f('ix_alert_notices_status'), 'alert_notices', ['status'], unique=False)
    op.create_index(op.f('ix_alert_notices_attempted_at'), 'alert_notices', ['attempted_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_alert_notices_attempted_at'), table_name='alert_notices')
    op.drop_index(op.f('ix_alert_notices_status'), table_name='alert_notices')
    op.drop_index(op.f('ix_alert_notices_episode_id'), table_name='alert_notices')
    op.drop_table('alert_notices')
    op.drop_index('uq_alert_episodes_open', table_name='alert_episodes')
    op.drop_table('alert_episodes')
    op.drop_table('stoloto_endpoints')
