"""A contract's certificate over its life: its validity, renewal by §1.4 (by hand and by the job), and after
an expiry the re-keying: a new key and «Приложение №5», then §1.1 with the new key.

A renewal is crash-safe as the terminal batches are: the new key, its request and the X-Request-Id are
committed before the call; a retry repeats the call with the same id and Stoloto answers with the same
certificate; the certificate and the key swap places in one conditional UPDATE after it.
"""
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from cryptography import x509
from sqlalchemy import select, update

from .. import appendix, audit, clock, crypto, errors, keyring, settings, stats
from ..certificate_lifecycle import WARNING_DAYS, CertificateState, Validity, move, state_of, validity
from ..clients.stoloto import Outcome
from ..extensions import db
from ..lifecycle import ContractStatus, status_label
from ..models import Contract, utcnow
from ..stoloto_services import ACTIVATE, RENEW
from . import alerts
from .contracts import get_contract
from .gateway import key_context, outcome_error, stoloto_client

log = logging.getLogger(__name__)
ACTION_RENEW = "Обновить сертификат"
ACTION_REKEY = "Перевыпустить ключ"
ACTION_ACTIVATE_NEW_KEY = "Активация с новым ключом"
EXPIRED = "CERTIFICATE_EXPIRED"
# Contracts with a certificate: activated at Stoloto.
CERTIFIED = (ContractStatus.AWAITING_TERMINALS.value, ContractStatus.ACTIVE.value)
# After a refused renewal the job waits this long before asking Stoloto again (a button asks at once).
RENEWAL_PAUSE = timedelta(hours=1)
# The header names this many contracts at most; more are «и другие».
ATTENTION_SHOWN = 5


def now():
    return utcnow()


def validity_of(contract: Contract) -> Validity | None:
    return validity(contract.certificate_state, contract.certificate_not_after, now())


@dataclass(frozen=True)
class Attention:
    contract_id: int
    number: str
    validity: Validity


def needing_attention() -> tuple[list[Attention], bool]:
    """Contracts whose certificate ends within WARNING_DAYS, has ended or waits for a new key, soonest first,
    and whether there are more than shown: one query on ix_contracts_certificate_not_after (every page asks)."""
    moment = now()
    rows = db.session.execute(
        select(Contract.id, Contract.number, Contract.certificate_state, Contract.certificate_not_after)
        .where(Contract.certificate_not_after < moment + timedelta(days=WARNING_DAYS))
        .order_by(Contract.certificate_not_after, Contract.id).limit(ATTENTION_SHOWN + 1)).all()
    shown = [Attention(row.id, row.number, validity(row.certificate_state, row.certificate_not_after, moment))
             for row in rows[:ATTENTION_SHOWN] if row.certificate_state]
    return shown, len(rows) > ATTENTION_SHOWN


def by_end(limit: int = 50) -> list[tuple[Contract, Validity]]:
    """The contracts with a certificate, the soonest to end first («Обзор»)."""
    moment = now()
    contracts = db.session.scalars(select(Contract).where(Contract.certificate_not_after.is_not(None))
                                   .order_by(Contract.certificate_not_after, Contract.id).limit(limit)).all()
    return [(c, validity(c.certificate_state, c.certificate_not_after, moment)) for c in contracts]


def offered_action(contract: Contract) -> str | None:
    """What the contract's page offers for its certificate: "renew" («Обновить сертификат») while it is valid
    or renewing, "rekey" («Перевыпустить ключ») once it has expired, nothing before activation or while re-keying."""
    shown = validity_of(contract)
    if shown is None or shown.state is CertificateState.REKEYING:
        return None
    if shown.state is CertificateState.EXPIRED or shown.ended:
        return "rekey"
    return "renew"


def record_certificate(contract: Contract, certificate: x509.Certificate, pem: str, ca_pem: str) -> None:
    """Stores an issued certificate with its end (for the pages' warnings); the caller commits."""
    contract.certificate_pem = pem
    contract.ca_certificate_pem = ca_pem
    contract.certificate_not_after = certificate.not_valid_after_utc.replace(tzinfo=None)
    contract.certificate_state = CertificateState.VALID.value


def checked_certificate(pem: str, ca_pem: str, fingerprint: str, failure) -> x509.Certificate:
    """The certificate Stoloto issued, readable and for the key with `fingerprint`; else `failure(code, text)`."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        raise failure("BAD_CERTIFICATE", "Столото вернул нечитаемый сертификат.") from None
    if crypto.public_key_fingerprint(certificate.public_key()) != fingerprint:
        raise failure("CERTIFICATE_KEY_MISMATCH", "Столото выдал сертификат не на ключ этого договора.")
    return certificate


def ends_at(certificate: x509.Certificate) -> str:
    return f"действует до {clock.local(certificate.not_valid_after_utc):%d.%m.%Y %H:%M} ({clock.label()})"


# -- renewal (§1.4) -------------------------------------------------------------------------------------------


@dataclass
class Renewal:
    contract: Contract
    renewed: bool  # False: another request had renewed it with the same answer meanwhile


def renew(contract_id: int, actor: str) -> Renewal:
    """«Обновить сертификат»: a new key and request, the call with the current certificate, the new
    certificate stored. A renewal left unfinished (lost answer, dead process) is repeated with its request id.
    Raises SisError with what to do; every ending goes through `renewal_ended`."""
    contract = get_contract(contract_id)
    try:
        request_id = _begin_renewal(contract, actor)
    except errors.SisError as error:
        audit.record_refusal(actor, "contract", contract_id, ACTION_RENEW, error)
        if error.code == EXPIRED:
            renewal_ended(contract_id, error)
        raise
    try:
        client = stoloto_client(contract)  # the current certificate vouches for the new key
    except errors.SisError as error:  # not configured, key unreadable: the renewal waits, its id kept
        audit.record_refusal(actor, "contract", contract_id, ACTION_RENEW, error)
        renewal_ended(contract_id, error)
        raise
    outcome = client.renew_certificate(request_id, contract.number, contract.pending_csr_pem)
    stats.record_call(db.session, RENEW, outcome)
    try:
        renewal = _finish_renewal(contract, request_id, outcome, actor)
    except errors.SisError as error:
        renewal_ended(contract_id, error)
        raise
    renewal_ended(contract_id, None)
    return renewal


def renew_by_number(number: str, actor: str) -> Renewal:
    """`flask certificates renew --contract НОМЕР`."""
    contract_id = db.session.scalar(select(Contract.id).where(Contract.number == number))
    if contract_id is None:
        raise errors.not_found(f"Договор № {number}")
    return renew(contract_id, actor)


def renewal_ended(contract_id: int, error: errors.SisError | None) -> None:
    """The one place every renewal ends, by hand or by the job: `error` is None when a certificate was stored.

    The alert «сертификат не обновлён» opens on an error and closes on success (once each, by the alerts job).
    """
    number = db.session.scalar(select(Contract.number).where(Contract.id == contract_id))
    if error is not None:
        log.warning("certificate renewal of contract %s failed: %s", contract_id, error)
        alerts.open_alert(alerts.RENEWAL_FAILED, str(contract_id),
                          alerts.headline(f"сертификат договора № {number} не обновлён"),
                          f"Обновить сертификат Столото договора № {number} не удалось: {error}")
    else:
        log.info("certificate of contract %s renewed", contract_id)
        alerts.close_alert(alerts.RENEWAL_FAILED, str(contract_id))


def _begin_renewal(contract: Contract, actor: str) -> str:
    """The renewal's request id: a pending one's, or a new key, request and id committed before the call."""
    for _ in range(2):
        state = state_of(contract)
        if contract.status not in CERTIFIED or state is None:
            raise errors.action_not_allowed(ACTION_RENEW, _status_label(contract))
        if state is CertificateState.RENEWING:
            return contract.renewal_request_id  # unfinished: the same request again, Stoloto answers the same
        if state is not CertificateState.VALID:
            raise _expired_error(contract)
        if contract.certificate_not_after <= now():
            move(contract, CertificateState.EXPIRED, actor, details="срок действия сертификата закончился")
            db.session.commit()
            raise _expired_error(contract)
        key = crypto.generate_private_key()
        current = x509.load_pem_x509_certificate(contract.certificate_pem.encode())
        try:
            move(contract, CertificateState.RENEWING, actor,
                 details=f"новый ключ {crypto.format_fingerprint(crypto.public_key_fingerprint(key.public_key()))}",
                 pending_private_key_encrypted=_sealed(contract, key),
                 pending_csr_pem=crypto.build_csr_for_subject(key, current.subject),
                 renewal_request_id=str(uuid.uuid4()))
            db.session.commit()  # the key and the request id are durable before Stoloto hears of them
            return contract.renewal_request_id
        except errors.SisError as error:
            if error.code != "STATUS_CHANGED":
                raise
            db.session.rollback()  # a concurrent renewal began first: join it
            db.session.refresh(contract)
    raise errors.status_changed()


def _finish_renewal(contract: Contract, request_id: str, outcome, actor: str) -> Renewal:
    if outcome.ok:
        try:
            certificate = checked_certificate(outcome.data["certificate"], outcome.data["ca_certificate"],
                                              _pending_fingerprint(contract), _renewal_failure)
        except errors.SisError as error:
            _abandon(contract, request_id, CertificateState.VALID, error, actor)
            raise
        return _store_renewed(contract, request_id, certificate, outcome.data, actor)
    if not outcome.answered:  # unknown: the request stays pending, a retry repeats it with the same id
        error = outcome_error(outcome, "обновлении сертификата")
        db.session.execute(update(Contract).where(Contract.id == contract.id,
                                                  Contract.renewal_request_id == request_id)
                           .values(renewal_error=str(error), renewal_failed_at=now()))
        audit.record(actor, "contract", contract.id, ACTION_RENEW, "error", f"{error} Запрос будет повторён.")
        db.session.commit()
        raise error
    if outcome.status == 401:
        error = _expired_error(contract, outcome)
        _abandon(contract, request_id, CertificateState.EXPIRED, error, actor)
        raise error
    error = outcome_error(outcome, "обновлении сертификата")
    _abandon(contract, request_id, CertificateState.VALID, error, actor)
    raise error


def _store_renewed(contract: Contract, request_id: str, certificate: x509.Certificate, data: dict,
                   actor: str) -> Renewal:
    """The new certificate and key become the contract's; the old ones are kept until the new has worked once."""
    try:
        move(contract, CertificateState.VALID, actor, details=f"новый сертификат {ends_at(certificate)}",
             where=(Contract.renewal_request_id == request_id,), renewal_request_id=None,
             **_swap(contract, certificate, data, keep_previous=True))
        db.session.commit()
    except errors.SisError as error:
        if error.code != "STATUS_CHANGED":
            raise
        db.session.rollback()
        db.session.refresh(contract)
        if contract.certificate_pem == data["certificate"]:  # a concurrent retry stored the same answer first
            return Renewal(contract, renewed=False)
        raise
    return Renewal(contract, renewed=True)


def _swap(contract: Contract, certificate: x509.Certificate, data: dict, keep_previous: bool) -> dict:
    return {
        "previous_private_key_encrypted": contract.private_key_encrypted if keep_previous else None,
        "previous_certificate_pem": contract.certificate_pem if keep_previous else None,
        "private_key_encrypted": contract.pending_private_key_encrypted,
        "public_key_fingerprint": crypto.public_key_fingerprint(certificate.public_key()),
        "csr_pem": contract.pending_csr_pem,
        "certificate_pem": data["certificate"],
        "ca_certificate_pem": data["ca_certificate"],
        "certificate_not_after": certificate.not_valid_after_utc.replace(tzinfo=None),
        "pending_private_key_encrypted": None, "pending_csr_pem": None,
        "renewal_error": None, "renewal_failed_at": None,
    }


def _abandon(contract: Contract, request_id: str, target: CertificateState, error: errors.SisError,
             actor: str) -> None:
    """A definite answer other than a certificate: the new key is dropped, the next renewal is a new request."""
    try:
        move(contract, target, actor, details=str(error), where=(Contract.renewal_request_id == request_id,),
             pending_private_key_encrypted=None, pending_csr_pem=None, renewal_request_id=None,
             renewal_error=str(error), renewal_failed_at=now())
        db.session.commit()
    except errors.SisError:
        db.session.rollback()  # a concurrent retry ended it first


def _renewal_failure(code: str, message: str) -> errors.SisError:
    return errors.SisError(code, message, "Действующий сертификат остаётся в работе. Повторите обновление позже; "
                                          "если ошибка повторяется, обратитесь в службу поддержки Столото.")


def _expired_error(contract: Contract, outcome=None) -> errors.SisError:
    said = f" Ответ Столото: {outcome.message} (код {outcome.code})." if outcome is not None and outcome.code else ""
    return errors.SisError(
        EXPIRED, f"Сертификат договора № {contract.number} истёк: Столото не обновляет его.{said}",
        "Нажмите «Перевыпустить ключ», передайте новое «Приложение №5» в Столото и, когда Столото "
        "зарегистрирует ключ, нажмите «Активировать договор».")


def _status_label(contract: Contract) -> str:
    return status_label(contract.status)


def _sealed(contract: Contract, key) -> bytes:
    """Sealed as the current key is, with the same context: it becomes the current key without re-sealing."""
    return crypto.encrypt_private_key(key, keyring.keys()[0], key_context(contract.id))


def _pending_fingerprint(contract: Contract) -> str:
    return crypto.public_key_fingerprint(crypto.load_csr(contract.pending_csr_pem).public_key())


# -- the job --------------------------------------------------------------------------------------------------


@dataclass
class RenewalReport:
    renewed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def renewal_due(certificate: x509.Certificate, days: int) -> bool:
    """Due when fewer than `days` days are left, and less than half its life: a certificate issued for
    less than twice that (minutes, on a stand) is renewed at half-life, not at once and again."""
    moment = now()
    not_before = certificate.not_valid_before_utc.replace(tzinfo=None)
    not_after = certificate.not_valid_after_utc.replace(tzinfo=None)
    left = not_after - moment
    return left < timedelta(days=days) and left < (not_after - not_before) / 2


def renew_due(actor: str = audit.SYSTEM_ACTOR) -> RenewalReport:
    """The job: renews every certificate due (setting «Обновлять сертификат за N дней»), finishes renewals left
    unfinished, and marks certificates that ended unrenewed as expired."""
    report = RenewalReport()
    days = settings.get(settings.CERTIFICATE_RENEW_DAYS)
    moment = now()
    candidates = db.session.execute(
        select(Contract.id, Contract.number, Contract.certificate_state, Contract.renewal_failed_at)
        .where(Contract.status.in_(CERTIFIED),
               ((Contract.certificate_not_after < moment + timedelta(days=days))
                & (Contract.certificate_state == CertificateState.VALID.value))
               # unfinished, whenever it began (a button far from the end too): finished with its request id
               | (Contract.certificate_state == CertificateState.RENEWING.value))
        .order_by(Contract.certificate_not_after)).all()
    for row in candidates:
        if row.certificate_state == CertificateState.VALID.value:
            if row.renewal_failed_at is not None and row.renewal_failed_at > moment - RENEWAL_PAUSE:
                continue
            contract = db.session.get(Contract, row.id)
            current = x509.load_pem_x509_certificate(contract.certificate_pem.encode())
            if not renewal_due(current, days):
                continue
        try:
            renew(row.id, actor)
        except errors.SisError as error:
            report.errors[row.number] = str(error)
            continue
        report.renewed.append(row.number)
    return report


# -- re-keying after an expiry (a new «Приложение №5», then §1.1) ----------------------------------------------


def rekey(contract_id: int, actor: str) -> Contract:
    """«Перевыпустить ключ»: the certificate has expired, so a new key, its request and a new «Приложение №5»
    marked as a re-keying; the contract waits for Stoloto to register the key. Terminals and registers stay."""
    contract = get_contract(contract_id)
    try:
        state = state_of(contract)
        if contract.status not in CERTIFIED or state is None:
            raise errors.action_not_allowed(ACTION_REKEY, _status_label(contract))
        if state is CertificateState.REKEYING:
            raise errors.SisError("ALREADY_REKEYED", "Ключ договора уже перевыпущен: «Приложение №5» сформировано.",
                                  "Скачайте его кнопкой «Приложение к договору» и передайте в Столото.")
        if state in (CertificateState.VALID, CertificateState.RENEWING):
            if contract.certificate_not_after > now():
                raise errors.SisError("CERTIFICATE_VALID", "Сертификат договора ещё действует: ключ перевыпускать "
                                                           "не нужно.", "Нажмите «Обновить сертификат».")
            move(contract, CertificateState.EXPIRED, actor, details="срок действия сертификата закончился",
                 pending_private_key_encrypted=None, pending_csr_pem=None, renewal_request_id=None)
        key = crypto.generate_private_key()
        fingerprint = crypto.public_key_fingerprint(key.public_key())
        csr_pem = crypto.build_csr(key, contract.number, contract.agent_inn, contract.agent_name)
        generated_at = now()
        move(contract, CertificateState.REKEYING, actor,
             details=f"новый ключ {crypto.format_fingerprint(fingerprint)}, сформировано «Приложение №5»",
             pending_private_key_encrypted=_sealed(contract, key), pending_csr_pem=csr_pem,
             activation_request_id=None, appendix_generated_at=generated_at,
             appendix_docx=_rekeying_appendix(contract, fingerprint, csr_pem, generated_at))
        db.session.commit()
    except errors.SisError as error:
        audit.record_refusal(actor, "contract", contract_id, ACTION_REKEY, error)
        raise
    return contract


def _rekeying_appendix(contract: Contract, fingerprint: str, csr_pem: str, generated_at) -> bytes:
    return appendix.build_appendix(appendix.AppendixData(
        contract_number=contract.number, contract_date=contract.contract_date, agent_inn=contract.agent_inn,
        agent_name=contract.agent_name, key_algorithm=crypto.KEY_ALGORITHM,
        fingerprint=crypto.format_fingerprint(fingerprint),
        csr_subject=crypto.describe_subject(crypto.load_csr(csr_pem).subject), csr_pem=csr_pem,
        generated_at=clock.local(generated_at), rekeying=True))


def pending_fingerprint(contract: Contract) -> str | None:
    """The new key's fingerprint (formatted) while one waits for its certificate."""
    return crypto.format_fingerprint(_pending_fingerprint(contract)) if contract.pending_csr_pem else None


def send_activation(contract: Contract, csr_pem: str) -> Outcome:
    """§1.1 for a contract's first key or, after «Перевыпустить ключ», its new one: the request id is committed
    before sending, so a retry after a lost answer reuses it; a definite answer ends the request."""
    client = stoloto_client()
    if not contract.activation_request_id:
        contract.activation_request_id = str(uuid.uuid4())
        db.session.commit()
    outcome = client.activate(contract.activation_request_id, contract.number,
                              contract.contract_date.isoformat(), contract.agent_inn, csr_pem)
    stats.record_call(db.session, ACTIVATE, outcome)
    if outcome.answered:
        contract.activation_request_id = None
        db.session.commit()
    return outcome


def activate_new_key(contract_id: int, actor: str) -> Contract:
    """«Активировать договор» after «Перевыпустить ключ»: §1.1 with the new key. Stoloto answers with a
    certificate for it once it has registered the key from the new «Приложение №5», KEY_MISMATCH before."""
    contract = get_contract(contract_id)
    try:
        if state_of(contract) is not CertificateState.REKEYING:
            raise errors.action_not_allowed(ACTION_ACTIVATE_NEW_KEY, _status_label(contract))
        outcome = send_activation(contract, contract.pending_csr_pem)
        if not outcome.ok:
            if outcome.code in ("KEY_MISMATCH", "KEY_NOT_REGISTERED"):
                raise _new_key_not_registered(contract, outcome)
            raise outcome_error(outcome, "активации договора с новым ключом")
        certificate = checked_certificate(outcome.data["certificate"], outcome.data["ca_certificate"],
                                          _pending_fingerprint(contract), _rekey_failure)
        move(contract, CertificateState.VALID, actor, details=f"сертификат на новый ключ {ends_at(certificate)}",
             **_swap(contract, certificate, outcome.data, keep_previous=False))
        db.session.commit()
    except errors.SisError as error:
        audit.record_refusal(actor, "contract", contract_id, ACTION_ACTIVATE_NEW_KEY, error)
        raise
    return contract


def _new_key_not_registered(contract: Contract, outcome) -> errors.SisError:
    return errors.SisError(
        outcome.code, f"Столото ещё не зарегистрировал новый ключ договора № {contract.number} "
                      f"(перевыпуск ключа): {outcome.message} (код {outcome.code}).",
        "Передайте новое «Приложение №5» в Столото, дождитесь регистрации ключа и нажмите «Активировать договор» "
        "снова. Номера терминалов и кассы договора сохраняются.", level="warning")


def _rekey_failure(code: str, message: str) -> errors.SisError:
    return errors.SisError(code, message, "Повторите активацию позже; если ошибка повторяется, обратитесь в "
                                          "службу поддержки Столото.")

