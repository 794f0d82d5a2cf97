"""Prometheus metrics: the counters SIS keeps as it works, the database's state read at scrape time, GET /metrics."""
import hmac
import ipaddress
import logging
import os
import re
import time
from datetime import UTC
from functools import wraps

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .errors import SisError
from .extensions import db
from .lifecycle import ContractStatus
from .models import CashRegister, Contract, SchedulerLease, Store, Terminal, utcnow
from .register_lifecycle import RegisterState

log = logging.getLogger(__name__)

# prometheus_client picks its storage when first imported: with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py
# sets it in the master, before any worker imports this), every process writes its figures into files there and
# a scrape adds them up, whichever worker answers it.
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
MIN_TOKEN_LENGTH = 16
disable_created_metrics()  # `*_created` samples only double the output; Prometheus does not need them

# The figures counted as SIS works; in one process they live here, under gunicorn in the multiprocess folder.
REGISTRY = CollectorRegistry()
STOLOTO_CALLS = Counter("sis_stoloto_calls", "Вызовы Столото по методу и исходу",
                        ["endpoint", "outcome", "code"], registry=REGISTRY)
STOLOTO_CALL_SECONDS = Histogram("sis_stoloto_call_duration_seconds", "Длительность вызова Столото", ["endpoint"],
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60),
                                 registry=REGISTRY)
SET_IMPORTS = Counter("sis_set_imports", "Загрузки магазинов из SET Centrum по исходу", ["outcome"],
                      registry=REGISTRY)
SET_STORES_ADDED = Counter("sis_set_stores_added", "Магазины, добавленные загрузками из SET Centrum",
                           registry=REGISTRY)
JOB_RUNS = Counter("sis_job_runs", "Запуски фоновых заданий по исходу", ["job", "outcome"], registry=REGISTRY)
JOB_SECONDS = Histogram("sis_job_duration_seconds", "Длительность запуска фонового задания", ["job"],
                        buckets=(.01, .05, .1, .5, 1, 5, 10, 30, 60, 120, 300), registry=REGISTRY)
# "max": the newest success of any process, a worker that has died included.
JOB_LAST_SUCCESS = Gauge("sis_job_last_success_timestamp_seconds", "Время последнего успешного запуска задания",
                         ["job"], multiprocess_mode="max", registry=REGISTRY)

# Stoloto's error codes become label values: only code-like ones, and not without end (a broken or hostile
# Stoloto must not make a new time series per answer).
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
MAX_CODES = 100
_codes_seen: set[str] = set()
_UNANSWERED = {"TIMEOUT": "timeout", "TLS": "tls", "CONNECTION": "connection"}


def _code_label(code: str) -> str:
    if code in _codes_seen:
        return code
    if not _CODE.fullmatch(code) or len(_codes_seen) >= MAX_CODES:
        return "OTHER"
    _codes_seen.add(code)
    return code


def _call_labels(outcome) -> tuple[str, str]:
    """(outcome, code) of a clients.stoloto.Outcome: ok, refusal, 5xx, bad_body, timeout, tls, connection."""
    if outcome.ok:
        return "ok", ""
    if outcome.code == "BAD_RESPONSE":
        return "bad_body", ""
    if outcome.status is None:
        return _UNANSWERED.get(outcome.code, "connection"), ""
    return ("5xx" if outcome.status >= 500 else "refusal"), _code_label(outcome.code)


def stoloto_call(endpoint: str):
    """Decorates a StolotoClient method: counts its outcome and times it (a Counter inc and a Histogram observe)."""
    seconds = STOLOTO_CALL_SECONDS.labels(endpoint)

    def decorate(method):
        @wraps(method)
        def measured(*args, **kwargs):
            started = time.perf_counter()
            try:
                outcome = method(*args, **kwargs)
            except Exception:
                STOLOTO_CALLS.labels(endpoint, "error", "").inc()
                raise
            finally:
                seconds.observe(time.perf_counter() - started)
            STOLOTO_CALLS.labels(endpoint, *_call_labels(outcome)).inc()
            return outcome
        return measured
    return decorate


def set_import(function):
    """Decorates the SET import service: counts each import by outcome (ok or the error code) and the stores added."""
    @wraps(function)
    def counted(*args, **kwargs):
        try:
            added = function(*args, **kwargs)
        except SisError as error:
            SET_IMPORTS.labels(error.code).inc()
            raise
        SET_IMPORTS.labels("ok").inc()
        SET_STORES_ADDED.inc(added)
        return added
    return counted


def job_run(job: str):
    """Decorates a background job: its runs by outcome, their duration, the time of the last one that succeeded."""
    def decorate(function):
        @wraps(function)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception:
                JOB_RUNS.labels(job, "error").inc()
                raise
            finally:
                JOB_SECONDS.labels(job).observe(time.perf_counter() - started)
            JOB_RUNS.labels(job, "ok").inc()
            JOB_LAST_SUCCESS.labels(job).set(time.time())
            return result
        return timed
    return decorate


def _timestamp(moment) -> float:
    return moment.replace(tzinfo=UTC).timestamp()  # the database keeps naive UTC


class DatabaseCollector:
    """The database's state at scrape time: six queries, each on an index or a small table."""

    def collect(self):
        started = time.perf_counter()
        up = GaugeMetricFamily("sis_database_up", "1, если база данных ответила на запросы метрик")
        try:
            families = list(self._families())
        except SQLAlchemyError:
            log.exception("metrics: the database did not answer")
            db.session.rollback()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily("sis_database_collect_seconds", "Сколько заняли запросы метрик к базе данных")
        took.add_metric([], time.perf_counter() - started)
        yield took

    def _families(self):
        now = utcnow()
        contracts = db.session.execute(select(Contract.id, Contract.number, Contract.status,
                                              Contract.certificate_not_after)).all()
        names = {row.id: row.number or f"#{row.id}" for row in contracts}

        by_status = GaugeMetricFamily("sis_contracts", "Договоры по статусу", labels=["status"])
        counts = {status.value: 0 for status in ContractStatus}
        for row in contracts:
            counts[row.status] = counts.get(row.status, 0) + 1
        for status, count in counts.items():
            by_status.add_metric([status], count)
        yield by_status

        expiry = GaugeMetricFamily("sis_contract_certificate_expiry_seconds",
                                   "Сколько секунд осталось до конца действия сертификата договора",
                                   labels=["contract"])
        for row in contracts:
            if row.certificate_not_after is not None:  # kept with the certificate: no PEM parsed per scrape
                expiry.add_metric([names[row.id]], _timestamp(row.certificate_not_after) - _timestamp(now))
        yield expiry

        terminals = GaugeMetricFamily("sis_terminals", "Номера терминалов договора по статусу",
                                      labels=["contract", "status"])
        for contract_id, status, count in db.session.execute(
                select(Terminal.contract_id, Terminal.status, func.count())
                .group_by(Terminal.contract_id, Terminal.status)):
            terminals.add_metric([names.get(contract_id, f"#{contract_id}"), status], count)
        yield terminals

        registers = GaugeMetricFamily("sis_cash_registers", "Кассы по состоянию и причине ожидания",
                                      labels=["state", "reason"])
        # Two queries, not one GROUP BY state, reason: the state index answers the first alone, and the second
        # reads only the waiting registers' rows (on SQLite with 200,000 registers: 90 ms instead of 350 ms).
        for state, count in db.session.execute(
                select(CashRegister.state, func.count()).group_by(CashRegister.state)):
            if state != RegisterState.PENDING:
                registers.add_metric([state, ""], count)
        for reason, count in db.session.execute(
                select(CashRegister.reason, func.count()).where(CashRegister.state == RegisterState.PENDING)
                .group_by(CashRegister.reason)):
            registers.add_metric([RegisterState.PENDING.value, reason or ""], count)
        yield registers

        stores = GaugeMetricFamily("sis_stores", "Магазины по источнику (set, manual, file)", labels=["source"])
        for source, count in db.session.execute(select(Store.source, func.count()).group_by(Store.source)):
            stores.add_metric([source], count)
        yield stores

        holder = GaugeMetricFamily("sis_job_lease_holder",
                                   "Процесс, держащий аренду фоновых заданий (1 — аренда действует)",
                                   labels=["lease", "holder"])
        expires = GaugeMetricFamily("sis_job_lease_expiry_timestamp_seconds", "Когда истекает аренда заданий",
                                    labels=["lease"])
        for name, process, expires_at in db.session.execute(
                select(SchedulerLease.name, SchedulerLease.holder, SchedulerLease.expires_at)):
            holder.add_metric([name, process], 1 if expires_at > now else 0)
            expires.add_metric([name], _timestamp(expires_at))
        yield holder
        yield expires
        db.session.rollback()  # read only: end the transaction now, not at the request's end


blueprint = Blueprint("metrics", __name__)


def _error(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response, status


def _is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return (mapped or ip).is_loopback


@blueprint.before_request
def _guard():
    token = current_app.config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return _error(401, "UNAUTHORIZED", "Нужен заголовок Authorization: Bearer <значение METRICS_TOKEN>.")
        return None
    # Behind SIS_BEHIND_PROXY this is the client's address as the proxy tells it, so a request through the
    # proxy is never loopback.
    if not _is_loopback(request.remote_addr):
        return _error(403, "FORBIDDEN", "Метрики доступны только с этого же компьютера (127.0.0.1, ::1). "
                                        "Для доступа по сети задайте METRICS_TOKEN.")
    return None


@blueprint.get("/metrics")
def exposition():
    registry = CollectorRegistry()
    if MULTIPROCESS:
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    registry.register(DatabaseCollector())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def register_metrics(app: Flask) -> None:
    """GET /metrics; METRICS_TOKEN (environment or config) opens it to the network."""
    token = app.config.setdefault("METRICS_TOKEN", os.environ.get("METRICS_TOKEN", ""))
    if token and (len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token)):
        raise SisError("CONFIG_INVALID", f"Переменная окружения METRICS_TOKEN: не короче {MIN_TOKEN_LENGTH} "
                                         "символов, без пробелов.", "Исправьте её значение и запустите СИ снова.")
    app.register_blueprint(blueprint)
