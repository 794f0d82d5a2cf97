"""«Смена ключа шифрования» (`flask keys rotate`): a new key-encryption key, and every contract's private
key and every secret setting sealed again with it."""
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from .. import audit, config, crypto, keyring, settings
from ..errors import SisError
from ..extensions import db
from ..models import Contract, Setting
from . import gateway

ACTION = "Смена ключа шифрования"
OBJECT_TYPE = "key_encryption_key"
_contracts = Contract.__table__
# Every sealed key a contract may hold: the current one, one waiting for its certificate, the one before a renewal.
KEY_COLUMNS = {"private_key_encrypted": "Закрытый ключ", "pending_private_key_encrypted": "Новый закрытый ключ",
               "previous_private_key_encrypted": "Прежний закрытый ключ"}
_settings = Setting.__table__


@dataclass(frozen=True)
class Rotation:
    private_keys: int  # contracts' private keys sealed again
    secret_settings: int  # secret settings sealed again (the cash API token)
    new_key: str | None  # when SIS_KEY_ENCRYPTION_KEY gives the key: the value the administrator must set
    key_file: Path | None  # otherwise: the file now holding the new key


def rotate(actor: str) -> Rotation:
    """Seals everything again with a new key-encryption key, in one transaction.

    With the key in instance/key_encryption_key, the file holds the new key and the old one while the
    command runs: every process (they read the file whenever they seal or open) seals with the new key and
    still opens what the old one sealed. Contracts are locked meanwhile, so a key sealed by another process
    lands before the re-sealing reads it, or after, sealed with the new key. Only then is the old key dropped.
    """
    old_texts, old = keyring.key_texts(), keyring.keys()
    new_text = config.new_key_encryption_key()
    new = crypto.parse_key_encryption_key(new_text)
    folder = None if keyring.from_environment() else Path(current_app.config["SIS_INSTANCE_PATH"])
    try:
        _reseal(old, new, write=False)  # refuse before anything changes if something does not open
        db.session.rollback()
        if folder:
            config.write_key_encryption_keys(folder, [new_text, *old_texts])
        private_keys, secret_settings = _reseal([new, *old], new, write=True)
        audit.record(actor, OBJECT_TYPE, None, ACTION,
                     details=f"Перешифровано ключей: {private_keys}, секретных настроек: {secret_settings}; "
                             f"новый ключ {crypto.key_id(new).hex()}")
        db.session.commit()
        # What a process sealed with the old key just before the file changed, and committed after.
        while any(late := _reseal([new, *old], new, write=True)):
            db.session.commit()
            private_keys, secret_settings = private_keys + late[0], secret_settings + late[1]
    except (SisError, SQLAlchemyError, OSError) as error:
        db.session.rollback()
        audit.record_now(actor, OBJECT_TYPE, None, ACTION, "error", str(error))
        raise
    if folder:
        config.write_key_encryption_keys(folder, [new_text])
    gateway.forget_clients()
    return Rotation(private_keys, secret_settings, None if folder else new_text,
                    folder / config.KEY_ENCRYPTION_KEY_FILE if folder else None)


def _reseal(accepted: list[bytes], new: bytes, write: bool) -> tuple[int, int]:
    """Opens every sealed value not sealed with `new` yet; with `write`, seals it with `new`.

    Each UPDATE names the value it replaces, so a value changed meanwhile is left for the next pass.
    """
    new_id, private_keys, secret_settings = crypto.key_id(new), 0, 0
    # Every row is locked, not only those with a key: a contract getting its key right now is waited for.
    rows = db.session.execute(select(_contracts.c.id, _contracts.c.number,
                                     *(_contracts.c[column] for column in KEY_COLUMNS))
                              .order_by(_contracts.c.id).with_for_update()).all()
    for contract_id, number, *blobs in rows:
        for column, blob in zip(KEY_COLUMNS, blobs, strict=True):
            if blob is None or crypto.sealed_by(bytes(blob)) == new_id:
                continue
            context = gateway.key_context(contract_id)
            try:
                plain = crypto.unseal(bytes(blob), accepted, context)
            except (InvalidTag, ValueError):
                raise keyring.unreadable(f"{KEY_COLUMNS[column]} договора № {number}") from None
            if write:
                private_keys += db.session.execute(
                    update(_contracts).where(_contracts.c.id == contract_id, _contracts.c[column] == blob)
                    .values({column: crypto.seal(plain, new, context),
                             "updated_at": _contracts.c.updated_at})).rowcount  # not a change of the contract
    for definition in (d for d in settings.DEFINITIONS if d.secret):
        stored = db.session.scalar(select(_settings.c.value).where(_settings.c.key == definition.key)
                                   .with_for_update())
        if stored is None or keyring.sealed_text_by(stored) == new_id:
            continue
        context = settings.sealed_context(definition.key)
        plain = keyring.open_text(stored, context, f"Настройка «{definition.label}»", accepted)
        if write:
            secret_settings += db.session.execute(
                update(_settings).where(_settings.c.key == definition.key, _settings.c.value == stored)
                .values(value=keyring.seal_text(plain, context, new), updated_at=_settings.c.updated_at)).rowcount
    return private_keys, secret_settings
