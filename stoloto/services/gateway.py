"""The configured Stoloto client and the client certificate of a contract (decrypted only in memory)."""
from cryptography.hazmat.primitives import serialization
from flask import current_app

from .. import crypto, errors, settings
from ..clients.stoloto import ClientCertificate, StolotoClient
from ..models import Contract


def stoloto_client() -> StolotoClient:
    url = settings.get(settings.STOLOTO_URL)
    if not url:
        raise errors.SisError("STOLOTO_NOT_CONFIGURED", "Не задан адрес сервиса Столото.",
                              "Укажите его в меню «Настройки».")
    return StolotoClient(url, settings.get(settings.STOLOTO_CA_BUNDLE) or None,
                         settings.get(settings.CONNECT_TIMEOUT), settings.get(settings.READ_TIMEOUT))


def private_key(contract: Contract):
    return crypto.decrypt_private_key(contract.private_key_encrypted, current_app.config["SECRET_KEY"],
                                      f"contract:{contract.id}".encode())


def client_certificate(contract: Contract) -> ClientCertificate:
    key_pem = private_key(contract).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption())
    return ClientCertificate(contract.certificate_pem, key_pem)
