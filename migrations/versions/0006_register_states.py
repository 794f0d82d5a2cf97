"""cash registers keep what Stoloto said when it refused their registration

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 12:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stoloto_error_code', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('stoloto_error_message', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('cash_registers', schema=None) as batch_op:
        batch_op.drop_column('stoloto_error_message')
        batch_op.drop_column('stoloto_error_code')
