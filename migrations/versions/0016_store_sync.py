"""set_imports and store_uploads: the scheduled SET import's outcome, and a store file awaiting «Загрузить»

set_imports keeps every SET import's result (the schedule reads when it last ran; an alert reads whether
it failed); store_uploads keeps a parsed «Загрузка из файла» between its preview and its confirmation,
in the database so that any worker process can confirm it.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 23:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'set_imports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('scheduled', sa.Boolean(), nullable=False),
        sa.Column('finished_at', sa.DateTime(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('added', sa.Integer(), nullable=False),
        sa.Column('error_code', sa.String(length=64), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_set_imports_scheduled', 'set_imports', ['scheduled', 'id'], unique=False)
    op.create_table(
        'store_uploads',
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('rows', sa.JSON(), nullable=False),
        sa.Column('skipped', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('token'),
    )


def downgrade():
    op.drop_table('store_uploads')
    op.drop_index('ix_set_imports_scheduled', table_name='set_imports')
    op.drop_table('set_imports')
