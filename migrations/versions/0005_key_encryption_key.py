"""key-encryption key: private keys and the cash API token sealed with it

Private keys were sealed with a key derived from SECRET_KEY, the cash API token kept in plain text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00

Runs under `flask db upgrade`, in the app: SECRET_KEY opens what revision 0003 sealed, and the
key-encryption key (SIS_KEY_ENCRYPTION_KEY or instance/key_encryption_key) seals it again.
"""
import os

import click
import sqlalchemy as sa
from alembic import op
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

from stoloto import crypto, keyring

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Revision 0003's format, frozen here: 0x01, a 12-byte nonce, AES-256-GCM under a key derived from SECRET_KEY.
LEGACY_VERSION = b"\x01"
TOKEN = "cash_api.token"  # the one secret setting
contracts = sa.table("contracts", sa.column("id", sa.Integer), sa.column("number", sa.String),
                     sa.column("private_key_encrypted", sa.LargeBinary))
settings = sa.table("settings", sa.column("key", sa.String), sa.column("value", sa.Text))


def _legacy_cipher() -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"sis/private-key-at-rest/v1").derive(current_app.config["SECRET_KEY"].encode()))


def _context(contract_id: int) -> bytes:
    return f"contract:{contract_id}".encode()


def _token_context() -> bytes:
    return f"setting:{TOKEN}".encode()


def _sealed_keys(bind):
    return bind.execute(sa.select(contracts.c.id, contracts.c.number, contracts.c.private_key_encrypted)
                        .where(contracts.c.private_key_encrypted.is_not(None)).order_by(contracts.c.id)).all()


def _store_key(bind, contract_id: int, blob: bytes) -> None:
    bind.execute(sa.update(contracts).where(contracts.c.id == contract_id).values(private_key_encrypted=blob))


def _store_token(bind, value: str) -> None:
    bind.execute(sa.update(settings).where(settings.c.key == TOKEN).values(value=value))


def upgrade():
    bind = op.get_bind()
    kek = keyring.keys()[0]
    legacy = _legacy_cipher()
    for contract_id, number, blob in _sealed_keys(bind):
        blob = bytes(blob)
        if blob[:1] != LEGACY_VERSION:
            continue
        try:
            der = legacy.decrypt(blob[1:13], blob[13:], _context(contract_id))
        except InvalidTag:
            # The whole upgrade rolls back: nothing is half-migrated.
            raise click.ClickException(
                f"Закрытый ключ договора № {number} не расшифровывается этим SECRET_KEY. Запустите обновление "
                "с тем SECRET_KEY, с которым работала прежняя версия SIS (instance/secret_key); "
                "база не изменена.") from None
        _store_key(bind, contract_id, crypto.seal(der, kek, _context(contract_id)))
    token = bind.scalar(sa.select(settings.c.value).where(settings.c.key == TOKEN))
    if token is not None and not token.startswith(keyring.SEALED_TEXT_PREFIX):
        _store_token(bind, keyring.seal_text(token, _token_context(), kek))


def downgrade():
    bind = op.get_bind()
    accepted = keyring.keys()
    legacy = _legacy_cipher()
    for contract_id, number, blob in _sealed_keys(bind):
        blob = bytes(blob)
        if blob[:1] == LEGACY_VERSION:
            continue
        try:
            der = crypto.unseal(blob, accepted, _context(contract_id))
        except (InvalidTag, ValueError):
            raise click.ClickException(f"Закрытый ключ договора № {number} не расшифровывается ключом "
                                       f"шифрования ({keyring.WHERE}); база не изменена.") from None
        nonce = os.urandom(12)
        _store_key(bind, contract_id, LEGACY_VERSION + nonce + legacy.encrypt(nonce, der, _context(contract_id)))
    token = bind.scalar(sa.select(settings.c.value).where(settings.c.key == TOKEN))
    if token is not None and token.startswith(keyring.SEALED_TEXT_PREFIX):
        _store_token(bind, keyring.open_text(token, _token_context(), "Токен API касс", accepted))
