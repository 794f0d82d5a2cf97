"""contracts: the certificate's end and state, the key waiting for a renewed certificate, the previous key

Every page's header warns of certificates that end soon: certificate_not_after, filled from certificate_pem,
lets one indexed query find them.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 23:00:00

"""
import sqlalchemy as sa
from alembic import op
from cryptography import x509

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

_COLUMNS = (
    ('certificate_not_after', sa.DateTime()),
    ('certificate_state', sa.String(length=16)),
    ('pending_private_key_encrypted', sa.LargeBinary()),
    ('pending_csr_pem', sa.Text()),
    ('renewal_request_id', sa.String(length=36)),
    ('renewal_error', sa.Text()),
    ('renewal_failed_at', sa.DateTime()),
    ('previous_private_key_encrypted', sa.LargeBinary()),
    ('previous_certificate_pem', sa.Text()),
)


def upgrade():
    with op.batch_alter_table('contracts', schema=None) as batch_op:
        for name, kind in _COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
        batch_op.create_index('ix_contracts_certificate_not_after', ['certificate_not_after'], unique=False)
    contracts = sa.table('contracts', sa.column('id', sa.Integer()), sa.column('certificate_pem', sa.Text()),
                         sa.column('certificate_not_after', sa.DateTime()),
                         sa.column('certificate_state', sa.String()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(contracts.c.id, contracts.c.certificate_pem)
                              .where(contracts.c.certificate_pem.is_not(None))).all()
    for contract_id, pem in rows:
        try:
            not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc.replace(tzinfo=None)
        except ValueError:
            not_after = None  # activation never stores such a certificate; nothing to count down
        connection.execute(sa.update(contracts).where(contracts.c.id == contract_id)
                           .values(certificate_not_after=not_after, certificate_state='valid'))


def downgrade():
    op.drop_index('ix_contracts_certificate_not_after', table_name='contracts')
    # ALTER TABLE … DROP COLUMN on both (SQLite since 3.35): a batch would copy the table, and SQLite refuses to
    # drop a table other tables' foreign keys point at.
    for name, _kind in reversed(_COLUMNS):
        op.execute(f'ALTER TABLE contracts DROP COLUMN {name}')
