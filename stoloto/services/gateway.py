"""The services' one door to Stoloto: the configured client, the contract's key and certificate,
and the Russian message for every kind of answer."""
import hashlib
import logging
import threading
from functools import partial

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from .. import audit, crypto, errors, keyring, settings
from ..clients.stoloto import ClientCertificate, Kind, Outcome, StolotoClient
from ..extensions import db
from ..models import Contract
from . import stoloto_status

log = logging.getLogger(__name__)
RETIRE_ACTION = "Прежний ключ удалён"
_clients: dict[tuple, StolotoClient] = {}
_clients_lock = threading.Lock()


def stoloto_client(contract: Contract | None = None) -> StolotoClient:
    """The client for the current settings; with a contract, one that presents its certificate (mutual TLS)."""
    if contract is None:
        return StolotoClient(*_options(), observer=stoloto_status.observer(db.engine))
    return contract_client(contract.id, contract.certificate_pem)


def contract_client(contract_id: int, certificate_pem: str | None) -> StolotoClient:
    """The mutual-TLS client of a contract. Clients are kept per settings and certificate, so that
    connections (and TLS sessions) are reused; the key is decrypted only when a client is made."""
    options = _options()
    if not certificate_pem:
        raise errors.SisError("NO_CERTIFICATE", "У договора нет сертификата Столото: он ещё не активирован.")
    key = (*options, contract_id, hashlib.sha256(certificate_pem.encode()).hexdigest())
    client = _clients.get(key)
    if client is None:
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                contract = db.session.get(Contract, contract_id)
                client = StolotoClient(*options, client_cert=client_certificate(contract),
                                       observer=stoloto_status.observer(db.engine))
                if contract.previous_certificate_pem:
                    client.after_first_success = partial(retire_previous_key, contract_id, key[-1])
                    client.fallback = _previous_client(contract, options)
                # The contract's client for older settings or an older certificate is done with:
                # its connections close once no call holds it any more.
                for stale in [known for known in _clients if known[-2] == contract_id]:
                    del _clients[stale]
                _clients[key] = client
    return client


def _previous_client(contract: Contract, options: tuple) -> StolotoClient | None:
    """The client with the key and certificate before the last renewal, while they are kept."""
    try:
        key = crypto.decrypt_private_key(contract.previous_private_key_encrypted, keyring.keys(),
                                         key_context(contract.id))
    except (InvalidTag, ValueError, TypeError):
        log.warning("the previous key of contract %s does not open: no fallback to it", contract.number)
        return None
    return StolotoClient(*options, client_cert=ClientCertificate(contract.previous_certificate_pem, _pem(key)),
                         observer=stoloto_status.observer(db.engine))


def retire_previous_key(contract_id: int, certificate_sha256: str) -> None:
    """The renewed certificate has worked once: the key and certificate before it are dropped.

    In a transaction of its own, since the call that proved it may be in the middle of another's; the
    UPDATE names the certificate that worked, so a later renewal's previous key is left alone.
    """
    try:
        with db.engine.begin() as connection:
            current = connection.scalar(select(Contract.certificate_pem).where(Contract.id == contract_id))
            if current is None or hashlib.sha256(current.encode()).hexdigest() != certificate_sha256:
                return
            retired = connection.execute(
                update(Contract).where(Contract.id == contract_id, Contract.certificate_pem == current,
                                       Contract.previous_private_key_encrypted.is_not(None))
                .values(previous_private_key_encrypted=None, previous_certificate_pem=None)).rowcount
            if retired:
                audit.record_in(connection, audit.SYSTEM_ACTOR, "contract", contract_id, RETIRE_ACTION,
                                details="новый сертификат принят Столото: прежние ключ и сертификат удалены")
    except SQLAlchemyError:
        # Harmless: the old key stays until the next client made for this certificate retires it.
        log.warning("could not retire the previous key of contract %s", contract_id, exc_info=True)


def _options() -> tuple:
    url = settings.get(settings.STOLOTO_URL)
    if not url:
        raise errors.SisError("STOLOTO_NOT_CONFIGURED", "Не задан адрес сервиса Столото.",
                              "Укажите его в «Настройки» → «Адрес сервиса Столото» или в переменной окружения "
                              "STOLOTO_URL.")
    return (url, settings.get(settings.STOLOTO_CA_BUNDLE) or None,
            settings.get(settings.CONNECT_TIMEOUT), settings.get(settings.READ_TIMEOUT))


def key_context(contract_id: int) -> bytes:
    # Binds the sealed key to its row: a blob copied to another contract will not open.
    return f"contract:{contract_id}".encode()


def seal_private_key(contract: Contract, key) -> None:
    """Stores the contract's key sealed with the current key-encryption key."""
    contract.private_key_encrypted = crypto.encrypt_private_key(key, keyring.keys()[0], key_context(contract.id))


def private_key(contract: Contract):
    """The contract's key, opened with whichever accepted key-encryption key sealed it."""
    try:
        return crypto.decrypt_private_key(contract.private_key_encrypted, keyring.keys(), key_context(contract.id))
    except (InvalidTag, ValueError, TypeError):
        raise keyring.unreadable(f"Закрытый ключ договора № {contract.number}") from None


def client_certificate(contract: Contract) -> ClientCertificate:
    return ClientCertificate(contract.certificate_pem, _pem(private_key(contract)))


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


FIELD_LABELS = {"contract_number": "номер договора", "contract_date": "дата заключения договора",
                "agent_inn": "ИНН агента"}


def outcome_error(outcome: Outcome, what: str) -> errors.SisError:
    """One Russian message per kind of Stoloto outcome, with Stoloto's own text (escaped when shown)."""
    said = f": {outcome.message}" if outcome.message else ""
    code = f" (код {outcome.code})" if outcome.code else ""
    if outcome.kind is Kind.REQUISITES:
        fields = ", ".join(FIELD_LABELS.get(f, f) for f in outcome.fields)
        listed = f" Проверьте: {fields}." if fields else ""
        return errors.SisError(outcome.code, f"Столото отклонил запрос {what}{said}{code}.{listed}",
                               "Исправьте реквизиты договора и активируйте договор повторно.")
    if outcome.kind is Kind.REFUSED:
        return errors.SisError(outcome.code, f"Столото отказал в {what}{said}{code}.",
                               "Повторите попытку позже.")
    return errors.SisError(outcome.code or "STOLOTO_FAILURE", f"Ошибка сервиса Столото при {what}{said}{code}.",
                           "Повторите попытку позже; если ошибка повторяется, обратитесь в службу поддержки.")


def forget_clients() -> None:
    """Drops every kept client: the next call opens the contract's key again (after `keys rotate`)."""
    with _clients_lock:
        _clients.clear()
