"""Alerts (issue 15 §2): conditions checked by the job, each an episode told once when it starts and once when it
clears, by e-mail and/or a webhook; every step journaled, and the database decides which process tells it."""
import json
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from .. import audit, clock, settings, stoloto_services
from ..extensions import db
from ..lifecycle import ContractStatus
from ..models import AlertEpisode, AlertNotice, CashRegister, Contract, StolotoEndpoint, Terminal, TerminalBatch, utcnow
from ..plural import plural
from ..register_lifecycle import REASON_LABELS, RegisterState
from . import forecast, stores
from .stoloto_status import FAILING

log = logging.getLogger(__name__)
PRODUCT = "СИ Столото"
OBJECT_TYPE = "alert"

# The kinds the job checks (and so also clears); other kinds are opened and closed by their services.
STOLOTO_FAILING = "stoloto_down"
POOL_REFUSED = "pool_refused"      # free numbers under the refill threshold while Stoloto refuses new batches
POOL_FORECAST = "pool_forecast"    # at the last 7 days' rate the free numbers run out within the setting's days
CERT_EXPIRY_30 = "cert_expiry_30"
CERT_EXPIRY_7 = "cert_expiry_7"
REGISTERS_WAITING = "registers_waiting"
SET_FAILING = "set_failing"        # the scheduled SET import failed, and no import has succeeded since
RENEWAL_FAILED = "renewal_failed"  # opened and closed by the certificate renewal through open_alert/close_alert

FIRING, RESOLVED, TEST = "firing", "resolved", "test"
EMAIL, WEBHOOK = "email", "webhook"
CHANNEL_LABELS = {EMAIL: "e-mail", WEBHOOK: "webhook"}
PENDING, SENT, FAILED = "pending", "sent", "failed"

# A sender holds a notice this long (longer than any send can take); then another may try it.
CLAIM = timedelta(minutes=5)
RETRY = timedelta(minutes=5)
MAX_ATTEMPTS = 12  # an hour of tries, then the notice is given up (journaled)
SMTP_TIMEOUT = 10.0
WEBHOOK_TIMEOUT = (5.0, 10.0)  # connect, read
LIMIT_CODE = "TERMINAL_LIMIT_EXCEEDED"


@dataclass(frozen=True)
class Alert:
    """A condition that holds now: `title` is the e-mail's subject line, `message` its text."""
    kind: str
    subject: str
    title: str
    message: str


@dataclass
class Report:
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    sent: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Delivery:
    """One attempt to send: to which channel and address, and how it went, in Russian."""
    channel: str
    target: str
    ok: bool
    result: str

    def __str__(self) -> str:
        return f"{CHANNEL_LABELS[self.channel]} ({self.target}): {self.result}"


class DeliveryError(Exception):
    """A channel refused or could not be reached; the text is the Russian reason."""


def headline(text: str) -> str:
    return f"{PRODUCT}: {text}"


def _minutes(delta: timedelta) -> str:
    return f"{max(0, int(delta.total_seconds() // 60))} мин."


def _at(moment: datetime) -> str:
    return f"{clock.local(moment):%d.%m.%Y %H:%M} ({clock.label()})"


# --- the conditions ---------------------------------------------------------------------------

def _stoloto_failing(now: datetime) -> list[Alert]:
    """A Stoloto service failed at least twice and the first failure is N minutes old: one lost call is not an
    outage, and a service nobody calls again (a single activation) is not told as failing for ever."""
    limit = timedelta(minutes=settings.get(settings.ALERT_STOLOTO_MINUTES))
    rows = _fresh(select(StolotoEndpoint).where(
        StolotoEndpoint.state == FAILING, StolotoEndpoint.failing_since <= now - limit,
        StolotoEndpoint.last_failed_at > StolotoEndpoint.failing_since))
    alerts = []
    for row in rows:
        label = stoloto_services.label(row.endpoint)
        last_ok = f" Последний успешный вызов: {_at(row.last_ok_at)}." if row.last_ok_at else ""
        alerts.append(Alert(STOLOTO_FAILING, row.endpoint,
                            headline(f"сбой Столото ({label}) длится {_minutes(now - row.failing_since)}"),
                            f"Вызовы сервиса Столото «{label}» не удаются с {_at(row.failing_since)}. "
                            f"Последняя ошибка: {(row.last_error or '').rstrip('.')}.{last_ok}"))
    return alerts


def _pool_refused(now: datetime) -> list[Alert]:
    """An «Активный» contract's free numbers are under the refill threshold and Stoloto's last answer to a batch
    was TERMINAL_LIMIT_EXCEEDED: registers will soon wait, and only Stoloto can raise the limit."""
    threshold = settings.get(settings.REFILL_THRESHOLD)
    free = (select(func.count()).select_from(Terminal)
            .where(Terminal.contract_id == Contract.id, Terminal.status == "free").scalar_subquery())
    last_answered = (select(TerminalBatch.last_error).where(TerminalBatch.contract_id == Contract.id,
                                                           TerminalBatch.status.in_(("done", "failed")))
                     .order_by(TerminalBatch.id.desc()).limit(1).scalar_subquery())
    rows = db.session.execute(select(Contract.id, Contract.number, free).where(
        Contract.status == ContractStatus.ACTIVE.value, free < threshold,
        last_answered.like(f"%{LIMIT_CODE}%")))
    return [Alert(POOL_REFUSED, str(contract_id),
                  headline(f"у договора № {number} кончаются номера терминалов, Столото отказывает в новых"),
                  f"Свободных номеров терминалов у договора № {number}: {count} (порог запроса нового пакета "
                  f"{threshold}). Столото отказывает в новых пакетах (код {LIMIT_CODE}): обратитесь в Столото, "
                  "чтобы увеличить лимит терминалов по договору.")
            for contract_id, number, count in rows]


def _pool_forecast(now: datetime) -> list[Alert]:
    """At the last 7 days' rate (the forecast «Обзор» shows), a contract's free numbers last no longer than the
    setting: time to ask Stoloto for a higher limit. A contract that used nothing has no rate and no alert."""
    limit = settings.get(settings.ALERT_POOL_DAYS)
    alerts = []
    for pool in forecast.pool_forecasts().values():
        if not pool.used or pool.days_left is None or pool.days_left > limit:
            continue
        when = (f"кончатся примерно через {plural(pool.days_left, 'день', 'дня', 'дней')}" if pool.days_left
                else "кончились")
        alerts.append(Alert(POOL_FORECAST, str(pool.contract_id),
                            headline(f"номера терминалов договора № {pool.contract_number} {when}"),
                            f"Свободных номеров: {pool.free}; за 7 дней использовано {pool.used}. {pool.text} "
                            "Если Столото не выдаст новые пакеты, кассы начнут ждать номеров: проверьте лимит "
                            "терминалов по договору в Столото."))
    return alerts


def _certificates(now: datetime) -> list[Alert]:
    """Certificates that end within 30 days or have ended: one query on ix_contracts_certificate_not_after, kept
    with each certificate stored, so no certificate is parsed every minute."""
    rows = db.session.execute(select(Contract.id, Contract.number, Contract.certificate_not_after).where(
        Contract.certificate_not_after <= now + timedelta(days=30)))
    alerts = []
    for contract_id, number, expires in rows:
        left = expires - now
        if left < timedelta(0):
            title, state = f"сертификат договора № {number} истёк", f"истёк {_at(expires)}"
        else:
            days = plural(left.days, "день", "дня", "дней")
            title = f"сертификат договора № {number} истекает через {days}"
            state = f"истекает {_at(expires)}, через {days}"
        for kind, limit in ((CERT_EXPIRY_30, 30), (CERT_EXPIRY_7, 7)):
            if left <= timedelta(days=limit):
                alerts.append(Alert(kind, str(contract_id), headline(title),
                                    f"Сертификат Столото договора № {number} {state}. Без действующего "
                                    "сертификата Столото не выдаёт номера терминалов и не регистрирует кассы: "
                                    "обновите сертификат."))
    return alerts


def _registers_waiting(now: datetime) -> list[Alert]:
    limit = settings.get(settings.ALERT_WAITING_MINUTES)
    rows = db.session.execute(select(CashRegister.reason, func.count()).where(
        CashRegister.state == RegisterState.PENDING.value, CashRegister.reason.is_not(None),
        CashRegister.created_at <= now - timedelta(minutes=limit)).group_by(CashRegister.reason))
    alerts = []
    for reason, count in rows:
        label = REASON_LABELS.get(reason, reason)
        registers = plural(count, "касса ждёт", "кассы ждут", "касс ждут")
        alerts.append(Alert(REGISTERS_WAITING, reason,
                            headline(f"{registers} регистрации дольше {limit} мин. («{label}»)"),
                            f"{registers.capitalize()} регистрации дольше {limit} мин. Причина ожидания: "
                            f"«{label}». Список — в «Кассы», фильтр «Причина ожидания»."))
    return alerts


def _set_failing(now: datetime) -> list[Alert]:
    """While the schedule is on, the newest SET import failed: the chain's new stores stop arriving. Any later
    import that succeeds, from the button too, clears it."""
    if not settings.get(settings.SET_IMPORT_HOURS):
        return []
    last = stores.last_set_import()
    if last is None or last.ok:
        return []
    return [Alert(SET_FAILING, "set", headline("загрузка магазинов из SET Centrum не удалась"),
                  f"Загрузка магазинов из SET Centrum {_at(last.finished_at)} не удалась: "
                  f"{(last.error_message or '').rstrip('.')}. Новые магазины не добавляются; следующая попытка — "
                  "по расписанию, или нажмите «Загрузить из SET» в «Магазины».")]


# Each gives the alerts of its kinds that hold now; the job opens and clears exactly the kinds in CHECKED_KINDS.
CHECKS: tuple[Callable[[datetime], list[Alert]], ...] = (_stoloto_failing, _pool_refused, _pool_forecast, _certificates,
                                                         _registers_waiting, _set_failing)
CHECKED_KINDS = {STOLOTO_FAILING, POOL_REFUSED, POOL_FORECAST, CERT_EXPIRY_30, CERT_EXPIRY_7, REGISTERS_WAITING,
                 SET_FAILING}


def _fresh(statement):
    # The session keeps objects across commits (expire_on_commit=False), and these rows change under it, written by
    # Core statements and by other processes: each read replaces what the session holds.
    return db.session.scalars(statement.execution_options(populate_existing=True))


def _resolution(episode: AlertEpisode, now: datetime) -> tuple[str, str]:
    lasted = f"Уведомление длилось {_minutes(now - episode.started_at)} (с {_at(episode.started_at)})."
    if episode.kind == STOLOTO_FAILING:
        label = stoloto_services.label(episode.subject)
        return (headline(f"Столото снова работает ({label})"),
                f"Вызовы сервиса Столото «{label}» снова удаются. {lasted}")
    if episode.kind == REGISTERS_WAITING:
        return (headline("кассы больше не ждут регистрации дольше порога"),
                f"Касс, ждущих регистрации дольше порога, больше нет. {lasted}")
    if episode.kind == RENEWAL_FAILED:
        return headline("сертификат обновлён"), f"Сертификат договора обновлён. {lasted}"
    if episode.kind in (CERT_EXPIRY_30, CERT_EXPIRY_7):
        return headline("сертификат обновлён"), f"Сертификат договора больше не истекает в ближайшие дни. {lasted}"
    if episode.kind == POOL_FORECAST:
        return (headline("номеров терминалов хватает дольше порога"),
                f"При нынешнем расходе свободных номеров договора хватит дольше порога уведомления. {lasted}")
    if episode.kind == SET_FAILING:
        return (headline("магазины из SET Centrum снова загружаются"),
                f"Загрузка магазинов из SET Centrum удалась. {lasted}")
    if episode.kind == POOL_REFUSED:
        return (headline("номера терминалов снова есть"),
                f"Свободных номеров терминалов у договора снова не меньше порога, или Столото снова выдаёт "
                f"пакеты. {lasted}")
    return headline(f"завершено: {episode.title.removeprefix(headline(''))}"), lasted


# --- episodes ---------------------------------------------------------------------------------

def _channels() -> dict[str, str]:
    """The configured channels and where each sends, as told to users: {"email": "a@b.ru, c@d.ru",
    "webhook": "hooks.example.ru"}."""
    channels = {}
    if settings.get(settings.SMTP_HOST) and settings.get(settings.EMAIL_TO) and settings.get(settings.EMAIL_FROM):
        channels[EMAIL] = ", ".join(settings.email_list(settings.get(settings.EMAIL_TO)))
    if settings.get(settings.WEBHOOK_URL):
        # Only the host: a webhook's path often holds its secret (Slack's, Teams'), and «Журнал» is open to viewers.
        channels[WEBHOOK] = urlsplit(settings.get(settings.WEBHOOK_URL)).hostname or ""
    return channels


def _notify(episode_id: int | None, state: str, now: datetime, claimed: bool = False) -> list[AlertNotice]:
    notices = [AlertNotice(episode_id=episode_id, state=state, channel=channel, status=PENDING, attempts=0,
                           created_at=now, claimed_until=now + CLAIM if claimed else None)
               for channel in _channels()]
    db.session.add_all(notices)
    return notices


def open_alert(kind: str, subject: str, title: str, message: str, actor: str = audit.SYSTEM_ACTOR) -> bool:
    """Starts an episode of `kind` for `subject` unless one is open; True when this call started it. Its notices
    go out with the job's next run. For any service (the certificate renewal calls it with RENEWAL_FAILED and the
    contract's id); commits the session, the caller's work in it too, whether it started an episode or not."""
    now = utcnow()
    try:
        # A savepoint: an episode already open (opened by this process earlier or by another at the same moment)
        # undoes only the episode, never the caller's work. The notices and the journal row are in it too, so that
        # on SQLite, where a savepoint may be the transaction itself, the three are released together.
        with db.session.begin_nested():
            episode = AlertEpisode(kind=kind, subject=str(subject)[:64], started_at=now, title=title,
                                   message=message)
            db.session.add(episode)
            db.session.flush()
            notices = _notify(episode.id, FIRING, now)
            where = ", ".join(CHANNEL_LABELS[n.channel] for n in notices) or "каналы уведомлений не настроены"
            audit.record(actor, OBJECT_TYPE, episode.id, "Уведомление: начало", "warning", f"{title} ({where})")
    except IntegrityError:
        db.session.commit()
        return False
    db.session.commit()
    return True


def close_alert(kind: str, subject: str, title: str | None = None, message: str | None = None,
                actor: str = audit.SYSTEM_ACTOR) -> bool:
    """Ends the open episode of `kind` for `subject`, if any; True when this call ended it. Commits."""
    episode = _fresh(select(AlertEpisode).where(AlertEpisode.kind == kind, AlertEpisode.subject == str(subject)[:64],
                                                AlertEpisode.resolved_at.is_(None))).first()
    if episode is None:
        return False
    return _close(episode, utcnow(), title, message, actor)


def _close(episode: AlertEpisode, now: datetime, title: str | None, message: str | None, actor: str) -> bool:
    default_title, default_message = _resolution(episode, now)
    title, message = title or default_title, message or default_message
    closed = db.session.execute(
        update(AlertEpisode).where(AlertEpisode.id == episode.id, AlertEpisode.resolved_at.is_(None))
        .values(resolved_at=now, resolved_title=title, resolved_message=message)
        .execution_options(synchronize_session=False))
    if closed.rowcount != 1:
        db.session.rollback()  # another run closed it first and told it
        return False
    notices = _notify(episode.id, RESOLVED, now)
    where = ", ".join(CHANNEL_LABELS[n.channel] for n in notices) or "каналы уведомлений не настроены"
    audit.record(actor, OBJECT_TYPE, episode.id, "Уведомление: завершение", "ok", f"{title} ({where})")
    db.session.commit()
    return True


def check(now: datetime | None = None) -> Report:
    """Opens an episode for each condition that holds and has none, closes those whose condition no longer holds."""
    now = now or utcnow()
    report = Report()
    holding: dict[tuple[str, str], Alert] = {}
    for condition in CHECKS:
        for alert in condition(now):
            holding[(alert.kind, alert.subject)] = alert
    db.session.rollback()  # the checks' reads end here: each change below is its own transaction
    open_episodes = {(e.kind, e.subject): e for e in _fresh(
        select(AlertEpisode).where(AlertEpisode.resolved_at.is_(None), AlertEpisode.kind.in_(CHECKED_KINDS)))}
    for key, alert in holding.items():
        if key not in open_episodes and open_alert(alert.kind, alert.subject, alert.title, alert.message):
            report.opened.append(alert.title)
    for key, episode in open_episodes.items():
        if key not in holding and _close(episode, now, None, None, audit.SYSTEM_ACTOR):
            report.resolved.append(episode.title)
    return report


def run() -> Report:
    """The job's entry point: check the conditions, then send what is due."""
    report = check()
    sent, failed = deliver()
    report.sent, report.failed = sent, failed
    return report


# --- sending ----------------------------------------------------------------------------------

def _payload(notice: AlertNotice, episode: AlertEpisode | None, now: datetime) -> dict:
    def iso(moment):
        return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z") if moment else None
    if episode is None:
        return {"kind": "test", "subject": "", "state": TEST, "title": headline("тестовое уведомление"),
                "message": "Это тестовое уведомление из «Настройки»: канал работает.", "started_at": iso(now),
                "resolved_at": None, "sent_at": iso(now), "episode_id": None, "source": PRODUCT}
    resolved = notice.state == RESOLVED
    return {"kind": episode.kind, "subject": episode.subject, "state": notice.state,
            "title": episode.resolved_title if resolved else episode.title,
            "message": episode.resolved_message if resolved else episode.message,
            "started_at": iso(episode.started_at), "resolved_at": iso(episode.resolved_at) if resolved else None,
            "sent_at": iso(now), "episode_id": episode.id, "source": PRODUCT}


def _send_email(payload: dict) -> str:
    host, port = settings.get(settings.SMTP_HOST), settings.get(settings.SMTP_PORT)
    tls, login = settings.get(settings.SMTP_TLS), settings.get(settings.SMTP_LOGIN)
    recipients = settings.email_list(settings.get(settings.EMAIL_TO))
    started = f"Начало: {_at(datetime.fromisoformat(payload['started_at']).replace(tzinfo=None))}."
    message = MIMEText(f"{payload['message']}\n\n{started}\n\n— {PRODUCT}\n", "plain", "utf-8")
    # Header, not the newer EmailMessage: Python 3.11's folding of a long Cyrillic subject drops the spaces
    # between its encoded words, and every mail client then shows the words run together.
    message["Subject"] = Header(payload["title"], "utf-8")
    message["From"] = settings.get(settings.EMAIL_FROM)
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=settings.get(settings.EMAIL_FROM).rpartition("@")[2] or None)
    context = ssl.create_default_context()
    try:
        if tls == settings.TLS_SSL:
            connection = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
        else:
            connection = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
        with connection:
            if tls == settings.TLS_STARTTLS:
                connection.starttls(context=context)
            if login:
                connection.login(login, settings.get(settings.SMTP_PASSWORD))
            refused = connection.send_message(message, to_addrs=recipients)
    except smtplib.SMTPAuthenticationError:
        raise DeliveryError(f"почтовый сервер {host}:{port} не принял логин и пароль") from None
    except smtplib.SMTPRecipientsRefused:
        raise DeliveryError(f"почтовый сервер {host}:{port} отказался принять письмо для всех получателей") from None
    except smtplib.SMTPException as error:
        raise DeliveryError(f"почтовый сервер {host}:{port} ответил ошибкой: {_short(error)}") from None
    except (OSError, ssl.SSLError) as error:  # refused, unreachable, timed out, TLS failed
        raise DeliveryError(f"почтовый сервер {host}:{port} недоступен: {_short(error)}") from None
    if refused:
        return f"принято почтовым сервером, кроме адресов: {', '.join(refused)}"
    return "принято почтовым сервером"


def _send_webhook(payload: dict) -> str:
    url = settings.get(settings.WEBHOOK_URL)
    try:
        response = requests.post(url, data=json.dumps(payload, ensure_ascii=False).encode(), timeout=WEBHOOK_TIMEOUT,
                                 allow_redirects=False,
                                 headers={"Content-Type": "application/json; charset=utf-8",
                                          "User-Agent": "SIS-alerts"})
    except requests.exceptions.RequestException as error:
        # Said by kind, not by requests' own text: that names the whole URL, and the path is often the key.
        raise DeliveryError(f"webhook на {urlsplit(url).hostname} недоступен: {_webhook_failure(error)}") from None
    with response:
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook ответил {response.status_code}")
    return f"принято, ответ {response.status_code}"


def _webhook_failure(error: requests.exceptions.RequestException) -> str:
    if isinstance(error, requests.exceptions.SSLError):
        return "ошибка защищённого соединения (TLS)"
    if isinstance(error, requests.exceptions.Timeout):
        return "не ответил вовремя"
    if isinstance(error, requests.exceptions.ConnectionError):
        return "соединение не установлено"
    return type(error).__name__


def _short(error: Exception) -> str:
    text = (str(error) or type(error).__name__).rstrip(".")  # the sentence around it has its own period
    return text if len(text) <= 300 else text[:300] + "…"


SENDERS = {EMAIL: _send_email, WEBHOOK: _send_webhook}


def _attempt(notice: AlertNotice, actor: str) -> Delivery:
    """Sends one claimed notice and records the result (its own commit); never raises for the channel's failure."""
    now = utcnow()
    episode = db.session.get(AlertEpisode, notice.episode_id, populate_existing=True) if notice.episode_id else None
    channels = _channels()
    payload = _payload(notice, episode, now)
    notice_id, episode_id, state, channel, attempts = (notice.id, notice.episode_id, notice.state, notice.channel,
                                                       notice.attempts)
    db.session.commit()  # no transaction stays open while the mail server or the webhook is slow
    if channel not in channels:
        ok, result = False, "канал больше не настроен в «Настройки»"
    else:
        try:
            ok, result = True, SENDERS[channel](payload)
        except DeliveryError as error:
            ok, result = False, str(error)
    done = utcnow()
    values = {"attempted_at": done, "result": result}
    if ok:
        values["status"] = SENT
    elif state == TEST or attempts >= MAX_ATTEMPTS or channel not in channels:
        values["status"] = FAILED
    else:
        values["claimed_until"] = done + RETRY
    db.session.execute(update(AlertNotice).where(AlertNotice.id == notice_id).values(**values)
                       .execution_options(synchronize_session=False))
    delivery = Delivery(channel, channels.get(channel, ""), ok, result)
    what = "тестовое уведомление" if episode_id is None else f"«{payload['title']}»"
    if ok:
        audit.record(actor, OBJECT_TYPE, episode_id, "Отправка уведомления", "ok", f"{what} — {delivery}")
    else:
        gave_up = " Попытки прекращены." if values.get("status") == FAILED and state != TEST else ""
        audit.record(actor, OBJECT_TYPE, episode_id, "Отправка уведомления", "warning",
                     f"{what} не доставлено — {delivery}.{gave_up}")
        log.warning("alert notice %s not delivered by %s: %s", notice_id, channel, result)
    db.session.commit()
    return delivery


def _claim(notice_id: int, now: datetime) -> bool:
    claimed = db.session.execute(
        update(AlertNotice).where(AlertNotice.id == notice_id, AlertNotice.status == PENDING,
                                  (AlertNotice.claimed_until.is_(None)) | (AlertNotice.claimed_until < now))
        .values(claimed_until=now + CLAIM, attempts=AlertNotice.attempts + 1)
        .execution_options(synchronize_session=False))
    db.session.commit()
    return claimed.rowcount == 1


def deliver(limit: int = 100) -> tuple[int, int]:
    """Sends the due notices, each claimed first so that two runs never send one twice; returns (sent, failed).
    A channel that fails once is left alone for the rest of the run: an unreachable server costs one timeout."""
    now = utcnow()
    due = list(db.session.scalars(select(AlertNotice.id).where(
        AlertNotice.status == PENDING, (AlertNotice.claimed_until.is_(None)) | (AlertNotice.claimed_until < now))
        .order_by(AlertNotice.id).limit(limit)))
    broken: set[str] = set()
    sent = failed = 0
    for notice_id in due:
        notice = db.session.get(AlertNotice, notice_id, populate_existing=True)
        if notice is None or notice.channel in broken or not _claim(notice_id, now):
            continue
        db.session.refresh(notice)
        delivery = _attempt(notice, audit.SYSTEM_ACTOR)
        if delivery.ok:
            sent += 1
        else:
            failed += 1
            broken.add(notice.channel)
    return sent, failed


def send_test(actor: str) -> dict[str, str]:
    """«Отправить тестовое уведомление»: a test notice to every configured channel, sent by a thread of its own so
    that the request never waits for a mail server or a webhook (last_test follows it). Returns where it goes, as
    _channels() tells it; {} when no channel is configured."""
    now = utcnow()
    channels = _channels()
    notices = _notify(None, TEST, now, claimed=True)
    for notice in notices:
        notice.attempts = 1
    audit.record(actor, OBJECT_TYPE, None, "Тестовое уведомление", "ok",
                 ", ".join(CHANNEL_LABELS[n.channel] for n in notices) or "каналы уведомлений не настроены")
    db.session.commit()
    if notices:
        # Should this process stop before it is over, the claims expire and the job sends what is left.
        threading.Thread(target=_send_in_thread, args=(current_app._get_current_object(), [n.id for n in notices],
                                                       actor), name="sis-test-alert", daemon=True).start()
    return channels


def _send_in_thread(app: Flask, notice_ids: list[int], actor: str) -> None:
    with app.app_context():
        try:
            for notice_id in notice_ids:
                _attempt(db.session.get(AlertNotice, notice_id, populate_existing=True), actor)
        except Exception:  # a thread's error would otherwise vanish
            log.exception("test alert failed")
        finally:
            db.session.remove()


@dataclass(frozen=True)
class LastTest:
    """The latest «Отправить тестовое уведомление» as «Настройки» shows it while it is sent and after."""
    at: datetime
    waiting: bool
    notice: str
    category: str  # the notice's Bootstrap text colour


def last_test() -> LastTest | None:
    """The latest test's notice: each channel's result, or that it is still being sent; None before any test."""
    latest = db.session.scalar(select(func.max(AlertNotice.created_at)).where(AlertNotice.state == TEST))
    if latest is None:
        return None
    notices = list(_fresh(select(AlertNotice).where(AlertNotice.state == TEST, AlertNotice.created_at == latest)
                          .order_by(AlertNotice.id)))
    channels = _channels()
    parts = [f"{_where(notice.channel, channels)}: "
             + ("ещё отправляется" if notice.status == PENDING else (notice.result or "").rstrip("."))
             for notice in notices]
    failed = sum(notice.status == FAILED for notice in notices)
    if any(notice.status == PENDING for notice in notices):
        waiting, lead, category = True, "Тестовое уведомление отправляется: ", "info"
    elif not failed:
        waiting, lead, category = False, "Тестовое уведомление отправлено: ", "success"
    else:
        waiting, category = False, "danger" if failed == len(notices) else "warning"
        lead = ("Тестовое уведомление не доставлено: " if failed == len(notices)
                else "Тестовое уведомление отправлено не везде: ")
    return LastTest(latest, waiting, lead + "; ".join(parts) + ".", category)


def _where(channel: str, channels: dict[str, str]) -> str:
    label = CHANNEL_LABELS[channel]
    return f"{label} ({channels[channel]})" if channels.get(channel) else label


def where_sent(channels: dict[str, str]) -> str:
    """Where a test goes, for the button's flash: «e-mail (ops@example.ru), webhook (hooks.example.ru)»."""
    return ", ".join(_where(channel, channels) for channel in channels)


@dataclass(frozen=True)
class LastDelivery:
    channel: str
    at: datetime
    ok: bool
    result: str


def last_deliveries() -> list[LastDelivery]:
    """Each channel's latest attempt, for «Настройки»."""
    found = []
    for channel in (EMAIL, WEBHOOK):
        notice = _fresh(select(AlertNotice).where(AlertNotice.channel == channel, AlertNotice.attempted_at.is_not(None))
                        .order_by(AlertNotice.attempted_at.desc(), AlertNotice.id.desc()).limit(1)).first()
        if notice is not None:
            found.append(LastDelivery(channel, notice.attempted_at, notice.status == SENT, notice.result or ""))
    return found


def open_episodes() -> list[AlertEpisode]:
    return list(_fresh(select(AlertEpisode).where(AlertEpisode.resolved_at.is_(None))
                       .order_by(AlertEpisode.started_at)))
