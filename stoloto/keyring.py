"""The key-encryption key at work: seals and opens what SIS keeps secret at rest (contracts' private
keys, secret settings) with SIS_KEY_ENCRYPTION_KEY or instance/key_encryption_key, never SECRET_KEY."""
import base64
from pathlib import Path

from cryptography.exceptions import InvalidTag
from flask import current_app

from . import config, crypto, errors

SEALED_TEXT_PREFIX = "sealed:"
WHERE = "SIS_KEY_ENCRYPTION_KEY или файл instance/key_encryption_key"


def key_texts() -> list[str]:
    return config.key_encryption_keys(current_app.config["SIS_KEY_ENCRYPTION_KEY"],
                                      Path(current_app.config["SIS_INSTANCE_PATH"]))


def keys() -> list[bytes]:
    """The accepted keys, the sealing one first. Read from their source on every call: calls are rare
    (sealing, a contract's first mutual-TLS client, the settings cache's refresh), and so another
    process's `flask keys rotate` takes effect here at once."""
    return [crypto.parse_key_encryption_key(text) for text in key_texts()]


def from_environment() -> bool:
    return bool(current_app.config["SIS_KEY_ENCRYPTION_KEY"])


def unreadable(what: str) -> errors.SisError:
    return errors.SisError("KEY_UNREADABLE", f"{what} не расшифровывается.",
                           f"Ключ шифрования ключей не тот, которым он зашифрован: верните прежний ({WHERE}).")


def seal_text(value: str, context: bytes, kek: bytes | None = None) -> str:
    """A secret setting as stored: «sealed:» and the sealed value in base64url."""
    blob = crypto.seal(value.encode(), kek or keys()[0], context)
    return SEALED_TEXT_PREFIX + base64.urlsafe_b64encode(blob).decode()


def sealed_text_by(stored: str) -> bytes | None:
    """The id of the key that sealed a stored secret setting; None when it is not sealed."""
    if not stored.startswith(SEALED_TEXT_PREFIX):
        return None
    return crypto.sealed_by(base64.urlsafe_b64decode(stored[len(SEALED_TEXT_PREFIX):]))


def open_text(stored: str, context: bytes, what: str, accepted: list[bytes] | None = None) -> str:
    if not stored.startswith(SEALED_TEXT_PREFIX):
        raise unreadable(what)
    try:
        blob = base64.urlsafe_b64decode(stored[len(SEALED_TEXT_PREFIX):])
        return crypto.unseal(blob, accepted or keys(), context).decode()
    except (InvalidTag, ValueError):
        raise unreadable(what) from None
