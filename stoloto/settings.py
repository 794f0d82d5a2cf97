""""Настройки": typed settings stored in the database; the environment gives the first values."""
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import audit, errors, keyring
from .boundary import text_problem
from .extensions import db
from .models import Setting


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    kind: type  # int, float or str
    default: object
    help: str = ""
    check: Callable[[object], str | None] = lambda value: None
    secret: bool = False  # masked on the page and in the journal, sealed with the key-encryption key at rest
    section: str = "Основные"  # the heading it stands under in «Настройки»
    choices: tuple[tuple[str, str], ...] = ()  # (value, Russian label): a list to choose from
    # Never shown back, not even masked (a password): the field comes empty, and empty keeps the stored value.
    write_only: bool = False


def _between(low, high):
    return lambda value: None if low <= value <= high else f"Допустимые значения: от {low} до {high}."


def _url(value: str) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "Укажите адрес вида https://host:port."
    return None


def _one_of(choices):
    allowed = [value for value, _ in choices]
    return lambda value: None if value in allowed else "Выберите значение из списка."


_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
# An address as mail servers take it: no spaces, one @, a domain with a dot or a bracketed IP.
_EMAIL = re.compile(r"[^@\s,;<>\"]{1,64}@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])")


def _host(value: str) -> str | None:
    if value and not _HOST.fullmatch(value):
        return "Укажите имя или IP-адрес сервера без схемы и порта, например smtp.example.ru."
    return None


def _email(value: str) -> str | None:
    if value and (len(value) > 254 or not _EMAIL.fullmatch(value)):
        return f"«{value}» — не адрес электронной почты; укажите адрес вида name@example.ru."
    return None


def email_list(value: str) -> list[str]:
    """The recipients typed comma-separated (a semicolon also separates), without empty items."""
    return [item.strip() for item in re.split(r"[,;]", value) if item.strip()]


def _emails(value: str) -> str | None:
    addresses = email_list(value)
    if len(addresses) > 50:
        return "Не больше 50 получателей."
    for address in addresses:
        problem = _email(address)
        if problem:
            return problem
    return None


STOLOTO_URL = "stoloto.url"
STOLOTO_CA_BUNDLE = "stoloto.ca_bundle"
BATCH_SIZE = "terminals.batch_size"
REFILL_THRESHOLD = "terminals.refill_threshold"
JOB_INTERVAL = "jobs.interval_seconds"
CONNECT_TIMEOUT = "http.connect_timeout"
READ_TIMEOUT = "http.read_timeout"
STOLOTO_CONCURRENCY = "stoloto.concurrency"
SET_CENTRUM_URL = "set.centrum.url"
SET_IMPORT_HOURS = "set.import_hours"
CASH_API_TOKEN = "cash_api.token"
SMTP_HOST = "alerts.smtp_host"
SMTP_PORT = "alerts.smtp_port"
SMTP_TLS = "alerts.smtp_tls"
SMTP_LOGIN = "alerts.smtp_login"
SMTP_PASSWORD = "alerts.smtp_password"
EMAIL_FROM = "alerts.email_from"
EMAIL_TO = "alerts.email_to"
WEBHOOK_URL = "alerts.webhook_url"
ALERT_STOLOTO_MINUTES = "alerts.stoloto_failing_minutes"
ALERT_WAITING_MINUTES = "alerts.registers_waiting_minutes"
ALERT_POOL_DAYS = "alerts.pool_days"
TLS_NONE, TLS_STARTTLS, TLS_SSL = "none", "starttls", "ssl"
TLS_CHOICES = ((TLS_STARTTLS, "STARTTLS (обычно порт 587)"), (TLS_SSL, "SSL/TLS (обычно порт 465)"),
               (TLS_NONE, "Без шифрования (обычно порт 25)"))
ALERTS = "Уведомления"
CERTIFICATE_RENEW_DAYS = "certificates.renew_days"


def _token(value: str) -> str | None:
    if len(value) < 16 or not value.isprintable() or " " in value:
        return "Токен: не короче 16 символов, без пробелов."
    return None

DEFINITIONS = [
    Definition(STOLOTO_URL, "Адрес сервиса Столото", str, "", "Базовый URL, например https://stoloto.example:443.",
               check=_url),
    Definition(STOLOTO_CA_BUNDLE, "Файл сертификатов УЦ для Столото (CA bundle)", str, "",
               "Путь к PEM-файлу; если пусто, используются системные сертификаты."),
    Definition(BATCH_SIZE, "Количество запрашиваемых терминалов в одном пакете", int, 50,
               check=_between(1, 1000)),
    Definition(REFILL_THRESHOLD, "Порог свободных терминалов для запроса нового пакета", int, 10,
               "Новый пакет запрашивается, когда свободных номеров договора меньше порога.",
               check=_between(0, 100000)),
    Definition(JOB_INTERVAL, "Интервал фоновых заданий, секунд", int, 30, check=_between(5, 86400)),
    Definition(CONNECT_TIMEOUT, "Таймаут соединения HTTP, секунд", float, 5.0, check=_between(0.1, 120)),
    Definition(READ_TIMEOUT, "Таймаут ответа HTTP, секунд", float, 30.0, check=_between(0.1, 600)),
    Definition(STOLOTO_CONCURRENCY, "Одновременных запросов к Столото", int, 16,
               "Сколько касс фоновое задание и «Зарегистрировать сейчас» регистрируют в Столото одновременно: "
               "при ответе Столото за 0,1 с каждый запрос даёт до 10 касс в секунду.",
               check=_between(1, 64)),
    Definition(SET_CENTRUM_URL, "Адрес сервера SET Centrum", str, "",
               "Откуда «Загрузка списка магазинов» читает магазины, например http://set-centrum:8080.",
               check=_url),
    Definition(SET_IMPORT_HOURS, "Загружать магазины из SET каждые N часов", int, 0,
               "0 — не загружать по расписанию. Загружаются только новые магазины, как кнопкой "
               "«Загрузка списка магазинов»; итог каждой загрузки записывается в «Журнал».",
               check=_between(0, 720)),
    Definition(CERTIFICATE_RENEW_DAYS, "Обновлять сертификат за N дней", int, 30,
               "Фоновое задание обновляет сертификат договора в Столото, когда до конца его действия остаётся "
               "меньше стольких дней (и меньше половины срока сертификата).", check=_between(1, 365)),
    Definition(CASH_API_TOKEN, "Токен API регистрации касс", str, "",
               "Кассы передают его в заголовке «Authorization: Bearer <токен>».", check=_token, secret=True),
    Definition(SMTP_HOST, "Почтовый сервер (SMTP)", str, "",
               "Через него СИ отправляет уведомления по электронной почте; если пусто, письма не отправляются.",
               check=_host, section=ALERTS),
    Definition(SMTP_PORT, "Порт SMTP", int, 587, check=_between(1, 65535), section=ALERTS),
    Definition(SMTP_TLS, "Шифрование SMTP", str, TLS_STARTTLS, check=_one_of(TLS_CHOICES), section=ALERTS,
               choices=TLS_CHOICES),
    Definition(SMTP_LOGIN, "Логин SMTP", str, "", "Если пусто, СИ не входит на почтовый сервер.",
               check=lambda value: None if len(value) <= 254 else "Не длиннее 254 символов.", section=ALERTS),
    Definition(SMTP_PASSWORD, "Пароль SMTP", str, "",
               "Хранится зашифрованным и не показывается; оставьте поле пустым, чтобы не менять пароль.",
               check=lambda value: None if len(value) <= 1000 else "Не длиннее 1000 символов.", secret=True,
               write_only=True, section=ALERTS),
    Definition(EMAIL_FROM, "Отправитель писем", str, "", "Адрес в поле «От», например sis@example.ru.",
               check=_email, section=ALERTS),
    Definition(EMAIL_TO, "Получатели писем", str, "", "Адреса через запятую.", check=_emails, section=ALERTS),
    Definition(WEBHOOK_URL, "Адрес webhook", str, "",
               "На него СИ отправляет каждое уведомление запросом POST в формате JSON; если пусто, не отправляет. "
               "Хранится зашифрованным: адрес webhook часто сам служит ключом доступа.",
               check=_url, secret=True, section=ALERTS),
    Definition(ALERT_STOLOTO_MINUTES, "Сбой Столото дольше, минут", int, 15,
               "Уведомление, когда вызовы одного сервиса Столото (активация, пакеты терминалов, регистрация касс) "
               "не удаются дольше этого времени.", check=_between(1, 10080), section=ALERTS),
    Definition(ALERT_WAITING_MINUTES, "Кассы ждут регистрации дольше, минут", int, 60,
               "Уведомление, когда кассы ждут регистрации дольше этого времени (по каждой причине ожидания).",
               check=_between(1, 100000), section=ALERTS),
    Definition(ALERT_POOL_DAYS, "Номера терминалов кончатся меньше чем через, дней", int, 7,
               "Уведомление, когда свободных номеров договора при расходе последних 7 дней хватит не больше чем "
               "на столько дней.", check=_between(1, 365), section=ALERTS),
]
BY_KEY = {definition.key: definition for definition in DEFINITIONS}

# Settings whose first value comes from the app config (and so from the environment).
CONFIG_DEFAULTS = {STOLOTO_URL: "STOLOTO_URL", STOLOTO_CA_BUNDLE: "STOLOTO_CA_BUNDLE",
                   SET_CENTRUM_URL: "SET_CENTRUM_URL", CASH_API_TOKEN: "CASH_API_TOKEN"}


def _default(definition: Definition):
    config_key = CONFIG_DEFAULTS.get(definition.key)
    if config_key and current_app.config.get(config_key):
        return definition.kind(current_app.config[config_key])
    return definition.default


def parse(definition: Definition, raw) -> object:
    """Converts a typed-in value; raises SisError with a Russian message for the field."""
    text = "" if raw is None else str(raw).strip()
    problem = text_problem(text)
    if problem:
        raise errors.invalid({definition.key: f"Значение {problem}: удалите этот символ."})
    if len(text) > 2000:
        raise errors.invalid({definition.key: "Значение длиннее 2000 символов."})
    try:
        value = definition.kind(text.replace(",", ".")) if definition.kind is not str else text
    except ValueError:
        kind = "целое число" if definition.kind is int else "число"
        raise errors.invalid({definition.key: f"Введите {kind}."}) from None
    problem = definition.check(value)
    if problem:
        raise errors.invalid({definition.key: problem})
    return value


# Every API call reads several settings: keep them for a second per process and database,
# so a change made in another process takes effect within CACHE_SECONDS.
CACHE_SECONDS = 1.0
_cache: dict[str, tuple[float, dict]] = {}


def forget() -> None:
    _cache.clear()


def get(key: str):
    database = current_app.config["SQLALCHEMY_DATABASE_URI"]
    cached = _cache.get(database)
    if cached is None or time.monotonic() - cached[0] > CACHE_SECONDS:
        cached = _cache[database] = (time.monotonic(), all_values())
    return cached[1][key]


def read_one(key: str):
    """One setting read alone, uncached: pages every user opens read theirs so, since a sealed setting that does
    not open (a key-encryption key since changed) must break only the pages that use it."""
    definition = BY_KEY[key]
    row = db.session.get(Setting, key)
    return parse(definition, _opened(definition, row.value)) if row is not None else _default(definition)


def stoloto_configured() -> bool:
    """Whether a Stoloto URL is set (the page header asks on every page). Reads that one setting only: a sealed
    setting that does not open must not break every page, only the ones that use it."""
    row = db.session.get(Setting, STOLOTO_URL)
    return bool(row.value if row is not None else _default(BY_KEY[STOLOTO_URL]))


def cash_api_token() -> str:
    """The cash-register API token: from the database, else CASH_API_TOKEN, else generated once and stored."""
    token = get(CASH_API_TOKEN)
    if token:
        return token
    generated = secrets.token_urlsafe(32)
    db.session.add(Setting(key=CASH_API_TOKEN, value=stored_form(BY_KEY[CASH_API_TOKEN], generated)))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()  # another process generated it first
    forget()
    return get(CASH_API_TOKEN)


def sealed_context(key: str) -> bytes:
    # Binds a sealed value to its setting: copied to another key, it does not open.
    return f"setting:{key}".encode()


def stored_form(definition: Definition, value) -> str:
    """The text a value is kept as in the settings table."""
    if definition.secret:
        return keyring.seal_text(str(value), sealed_context(definition.key))
    return str(value)


def _opened(definition: Definition, stored: str) -> str:
    if definition.secret:
        return keyring.open_text(stored, sealed_context(definition.key), f"Настройка «{definition.label}»")
    return stored


def all_values() -> dict:
    stored = {row.key: row.value for row in db.session.scalars(select(Setting))}
    values = {}
    for definition in DEFINITIONS:
        values[definition.key] = (parse(definition, _opened(definition, stored[definition.key]))
                                  if definition.key in stored else _default(definition))
    return values


def save(raw_values: dict, actor: str) -> list[str]:
    """Validates every value first and saves all or nothing; returns the labels of changed settings."""
    problems, parsed = {}, {}
    for key, raw in raw_values.items():
        try:
            parsed[key] = parse(BY_KEY[key], raw)
        except errors.SisError as error:
            problems.update(error.fields)
    if problems:
        raise errors.invalid(problems)
    current = all_values()
    changed = []
    for key, value in parsed.items():
        if value == current[key]:
            continue
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value = stored_form(BY_KEY[key], value)
        db.session.add(row)
        definition = BY_KEY[key]
        changed.append(definition.label)
        shown = "••••" if definition.secret else value
        audit.record(actor, "setting", None, "Изменение настройки", details=f"{definition.label}: {shown}")
    db.session.commit()
    forget()
    return changed


def check_environment(config: dict) -> None:
    """The first values given by the environment obey the rules of «Настройки»: a bad one stops the start,
    instead of reaching a «Настройки» page that refuses every save."""
    for key, variable in CONFIG_DEFAULTS.items():
        if not config.get(variable):
            continue
        try:
            parse(BY_KEY[key], config[variable])
        except errors.SisError as error:
            raise errors.SisError("CONFIG_INVALID", f"Переменная окружения {variable}: {error.fields[key]}",
                                  "Исправьте её значение и запустите СИ снова.") from None
