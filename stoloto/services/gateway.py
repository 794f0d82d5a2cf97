"""The configured Stoloto client and the client certificate of a contract (decrypted only in memory)."""
import hashlib
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from flask import current_app

from .. import crypto, errors, settings
from ..clients.stoloto import ClientCertificate, StolotoClient
from ..models import Contract


_clients: dict[tuple, StolotoClient] = {}
_clients_lock = threading.Lock()


def stoloto_client(contract: Contract | None = None) -> StolotoClient:
    """The client for the current settings; with a contract, one that presents its certificate (mutual TLS).

    Clients are kept per settings and certificate so that connections (and TLS sessions) are reused.
    """
    url = settings.get(settings.STOLOTO_URL)
    if not url:
        raise errors.SisError("STOLOTO_NOT_CONFIGURED", "Не задан адрес сервиса Столото.",
                              "Укажите его в меню «Настройки».")
    options = (url, settings.get(settings.STOLOTO_CA_BUNDLE) or None,
               settings.get(settings.CONNECT_TIMEOUT), settings.get(settings.READ_TIMEOUT))
    if contract is None:
        return StolotoClient(*options)
    if not contract.certificate_pem:
        raise errors.SisError("NO_CERTIFICATE", "У договора нет сертификата Столото: он ещё не активирован.")
    key = (*options, contract.id, hashlib.sha256(contract.certificate_pem.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = StolotoClient(*options, client_cert=client_certificate(contract))
    return client


def private_key(contract: Contract):
    try:
        return crypto.decrypt_private_key(contract.private_key_encrypted, current_app.config["SECRET_KEY"],
                                          f"contract:{contract.id}".encode())
    except (InvalidTag, ValueError, TypeError):
        raise errors.SisError(
            "KEY_UNREADABLE", f"Закрытый ключ договора № {contract.number} не расшифровывается.",
            "SECRET_KEY не тот, с которым ключ создан: верните прежний SECRET_KEY (instance/secret_key).") from None


def client_certificate(contract: Contract) -> ClientCertificate:
    key_pem = private_key(contract).private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption())
    return ClientCertificate(contract.certificate_pem, key_pem)
