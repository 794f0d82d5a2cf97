"""Server logs: one line per event (text or JSON), the request id on every line, one set-up for every server."""
import json
import logging
import os
import re
import sys
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from flask import Flask, g, request

from .clock import DEFAULT_ZONE, load_zone
from .errors import SisError

FORMATS = ("text", "json")
NO_REQUEST = "-"
# An incoming X-Request-Id is kept only when it cannot forge a log line or carry a payload.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Set explicitly, so that a root logger turned to DEBUG leaves them at WARNING: apscheduler is noise
# at INFO; SQLAlchemy's statement parameters hold session tokens; the werkzeug development server logs
# each request again after SIS has, without its request id.
QUIET_LOGGERS = ("apscheduler", "sqlalchemy", "werkzeug")

_request_id: ContextVar[str] = ContextVar("sis_request_id", default=NO_REQUEST)
requests_log = logging.getLogger("stoloto.requests")
# LogRecord's own attributes; anything else on a record came in `extra=` and goes into the JSON object.
_RECORD_FIELDS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def check_log_format(value: str) -> str:
    """The SIS_LOG_FORMAT value; an unknown one stops SIS at start-up with a Russian message."""
    if value not in FORMATS:
        raise SisError("CONFIG_INVALID", f"Переменная окружения SIS_LOG_FORMAT: неизвестный формат «{value}».",
                       "Укажите text (строка на событие) или json (объект JSON на строку) и запустите СИ снова.")
    return value


@contextmanager
def request_id(value: str):
    """Lines logged inside carry `value` as their request id (a job run uses its own)."""
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


def new_request_id() -> str:
    return uuid.uuid4().hex


def job_run_id(job: str) -> str:
    """The request id of one job run: its lines (and its Stoloto calls') are found together."""
    return f"job-{job}-{uuid.uuid4().hex[:12]}"


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record the handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class SisFormatter(logging.Formatter):
    """`2026-11-30T16:30:00.123+03:00 INFO logger [request id] message`, or the same as one JSON object.

    The time is in SIS_TIMEZONE with its offset, as the panel shows it. Newlines in a message or a
    traceback are written as \\n: one event is one line, and a value typed by a user cannot forge
    a line of its own.
    """

    def __init__(self, log_format: str = "text", zone_name: str = DEFAULT_ZONE):
        super().__init__()
        self.json = check_log_format(log_format) == "json"
        self.zone = load_zone(zone_name)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, self.zone).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        problem = self.formatException(record.exc_info) if record.exc_info else ""
        request = getattr(record, "request_id", NO_REQUEST)
        if self.json:
            line = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                    "request_id": request, "message": message}
            line.update((key, value) for key, value in vars(record).items() if key not in _RECORD_FIELDS)
            if problem:
                line["exception"] = problem
            return json.dumps(line, ensure_ascii=False, default=str)
        text = f"{self.formatTime(record)} {record.levelname} {record.name} [{request}] {message}"
        if problem:
            text += "\n" + problem
        return text.replace("\r", "\\r").replace("\n", "\\n")


class SisHandler(logging.StreamHandler):
    """Writes to the process's own standard error: not to a stream a caller swapped in (click's CLI
    runner, a test's capture), whose output is the command's answer, not the log."""

    def __init__(self):
        super().__init__(sys.__stderr__)
        self.addFilter(RequestIdFilter())


def formatter_from_environment() -> SisFormatter:
    """The formatter for gunicorn's logconfig_dict, which is read before any app exists."""
    try:
        return SisFormatter(os.environ.get("SIS_LOG_FORMAT") or "text",
                            os.environ.get("SIS_TIMEZONE") or DEFAULT_ZONE)
    except SisError as error:
        raise SystemExit(f"*** СИ Столото не запущен: {error}") from None


def gunicorn_logconfig() -> dict:
    """gunicorn's `logconfig_dict`: its own lines in SIS's format; its access log gives way to SIS's request lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"sis": {"()": formatter_from_environment}},
        "handlers": {"sis": {"()": SisHandler, "formatter": "sis"}},
        "root": {"level": "INFO", "handlers": ["sis"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


_configured = False


def configure_logging(app: Flask) -> None:
    """Sets up the process's logging once (create_app may run many times) and gives the app request ids.

    Under gunicorn with gunicorn_logconfig() the handler is already there: it is reused, not doubled.
    """
    global _configured
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, SisHandler)), None)
    if handler is None:
        handler = SisHandler()
        root.addHandler(handler)
    if not _configured:
        _configured = True
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)  # Python's warnings too, as lines with a time and a request id
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    handler.setFormatter(SisFormatter(app.config["SIS_LOG_FORMAT"], app.config["SIS_TIMEZONE"]))
    register_request_ids(app)


def register_request_ids(app: Flask) -> None:
    @app.before_request
    def _start_request():
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else new_request_id()
        g.request_id_token = _request_id.set(g.request_id)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish_request(response):
        if "request_id" in g:
            response.headers["X-Request-Id"] = g.request_id
            took = round((time.perf_counter() - g.request_started) * 1000)
            # The path only: a query string may carry what a log must not.
            requests_log.info("%s %s %s %d ms %s", request.method, request.path, response.status_code,
                              took, request.remote_addr,
                              extra={"method": request.method, "path": request.path,
                                     "status": response.status_code, "duration_ms": took})
        return response

    @app.teardown_request
    def _end_request(error=None):
        token = g.pop("request_id_token", None)
        if token is not None:
            try:
                _request_id.reset(token)
            except ValueError:  # torn down in another context than it started in: just leave the request
                _request_id.set(NO_REQUEST)
