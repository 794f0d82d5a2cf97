"""Client of Stoloto's agent services (docs/protocols.md §1): activation, terminal batches, registration,
certificate renewal."""
import json
import logging
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum

import requests
from requests.adapters import HTTPAdapter
from requests.hooks import default_hooks
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from ..boundary import storable
from ..metrics import stoloto_call
from ..stoloto_services import ACTIVATE, BATCHES, REGISTRATION, RENEW

log = logging.getLogger(__name__)
# Stoloto's error code and text are kept as SIS stores them (cash_registers.stoloto_error_code is 64 long).
CODE_LENGTH, MESSAGE_LENGTH = 64, 1000
# After Stoloto left a call unanswered, callers that need not wait for it hold off this long.
HOLD_OFF_SECONDS = 30.0
_clock = time.monotonic


class Kind(str, Enum):
    SUCCESS = "success"
    REQUISITES = "requisites"  # the contract's number/date/INN are wrong: correct them and retry
    REFUSED = "refused"        # Stoloto says "not now": try again later
    FAILURE = "failure"        # anything else: contact support


# (HTTP status, error code) → kind. Codes not listed here are failures.
ERROR_KINDS = {
    (404, "CONTRACT_NOT_FOUND"): Kind.REQUISITES,
    (422, "CONTRACT_DATA_MISMATCH"): Kind.REQUISITES,
    (409, "KEY_NOT_REGISTERED"): Kind.REFUSED,
    (409, "TERMINAL_LIMIT_EXCEEDED"): Kind.REFUSED,
}


@dataclass
class Outcome:
    kind: Kind
    status: int | None = None       # HTTP status; None when no answer arrived
    code: str = ""                  # Stoloto's error code, or ours (TIMEOUT, CONNECTION, BAD_RESPONSE…)
    message: str = ""               # Stoloto's text, shown escaped
    fields: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind is Kind.SUCCESS

    @property
    def answered(self) -> bool:
        """True when Stoloto gave a definite protocol answer; False when the outcome is unknown
        (timeout, dropped connection, 5xx, garbage), so the same X-Request-Id must be reused."""
        return self.status is not None and self.status < 500 and self.code != "BAD_RESPONSE"


@dataclass(frozen=True)
class ClientCertificate:
    certificate_pem: str
    # Decrypted only for the call, written to a 0600 file removed after it; repr=False keeps it out of any log.
    key_pem: bytes = field(repr=False)


class _Adapter(HTTPAdapter):
    """requests' adapter for the one address a client calls.

    Its connection pool is found once per address, not by parsing the URL and building urllib3's pool key
    on every call. With `ssl_context` (mutual TLS) the context already holds the client certificate and key,
    in memory only.
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None, **kwargs):
        self.ssl_context = ssl_context
        self._pools = {}
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        return super().init_poolmanager(*args, **kwargs)

    def get_connection_with_tls_context(self, request, verify, proxies=None, cert=None):
        # StolotoClient._send passes no proxies: the key need not name them.
        scheme, _, authority = request.url.split("/", 3)[:3]
        key = (scheme, authority, verify, cert)
        pool = self._pools.get(key)
        if pool is None:  # one address per client: the pool manager (4 pools) never closes it for another
            pool = self._pools[key] = super().get_connection_with_tls_context(request, verify, proxies, cert)
        return pool


class StolotoClient:
    """One client per contract certificate; keep it: its connections stay alive between calls."""

    def __init__(self, base_url: str, ca_bundle: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, client_cert: ClientCertificate | None = None,
                 observer: Callable[[str, "Outcome"], None] | None = None):
        self.base_url = base_url.rstrip("/")
        self._url = _checked_url(self.base_url)
        self.observer = observer  # told every call's outcome, by service (stoloto_services.py)
        self.verify = ca_bundle or True
        self.timeout = (connect_timeout, read_timeout)
        self._hold_off_until = 0.0  # see should_hold_off()
        self._hold_off_lock = threading.Lock()
        # Called once, after the first call Stoloto accepted (the gateway retires a renewed contract's old key).
        self.after_first_success = None
        # A renewed contract's client with the certificate before it: asked when Stoloto answers 401 to the
        # new one, since the old certificate stays valid for a while after a renewal (§1.4).
        self.fallback: StolotoClient | None = None
        # Safe to repeat: every POST carries an X-Request-Id that Stoloto deduplicates.
        # Only connection set-up failures are retried here; a slow answer is the caller's to retry.
        retry = Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0,
                      allowed_methods=None, backoff_factor=0.2, raise_on_redirect=False)
        pool = {"max_retries": retry, "pool_connections": 4, "pool_maxsize": 64}
        # The stands without TLS (docs/protocols.md allows it for tests) get no client certificate.
        mutual_tls = client_cert is not None and not self.base_url.startswith("http://")
        self.adapter = _Adapter(_mutual_tls_context(ca_bundle, client_cert) if mutual_tls else None, **pool)

    @stoloto_call(ACTIVATE)
    def activate(self, request_id: str, contract_number: str, contract_date: str, agent_inn: str,
                 csr_pem: str) -> Outcome:
        outcome = self._post(ACTIVATE, "/api/v1/contracts/activate", request_id, {
            "contract_number": contract_number, "contract_date": contract_date,
            "agent_inn": agent_inn, "csr": csr_pem})
        if outcome.ok and not all(isinstance(outcome.data.get(k), str) and outcome.data.get(k)
                                  for k in ("certificate", "ca_certificate")):
            return _bad_response(outcome.status, "в ответе нет сертификата")
        return outcome

    @stoloto_call(RENEW)
    def renew_certificate(self, request_id: str, contract_number: str, csr_pem: str) -> Outcome:
        """§1.4: a certificate for a new key, asked for with the current certificate (mutual TLS)."""
        outcome = self._post(RENEW, "/api/v1/certificates/renew", request_id, {
            "contract_number": contract_number, "csr": csr_pem})
        if outcome.ok and not all(isinstance(outcome.data.get(k), str) and outcome.data.get(k)
                                  for k in ("certificate", "ca_certificate")):
            return _bad_response(outcome.status, "в ответе нет сертификата")
        return outcome

    @stoloto_call(BATCHES)
    def request_batch(self, request_id: str, contract_number: str, count: int) -> Outcome:
        outcome = self._post(BATCHES, "/api/v1/terminals/batches", request_id,
                             {"contract_number": contract_number, "count": count})
        if outcome.ok:
            terminals = outcome.data.get("terminals")
            if (not isinstance(terminals, list) or not 1 <= len(terminals) <= count
                    or not all(isinstance(t, str) and t.isdigit() for t in terminals)
                    or len(set(terminals)) != len(terminals)):
                return _bad_response(outcome.status, "некорректный список терминалов")
        return outcome

    @stoloto_call(REGISTRATION)
    def register_terminal(self, request_id: str, terminal_number: str, payload: dict) -> Outcome:
        outcome = self._post(REGISTRATION, f"/api/v1/terminals/{terminal_number}/registration", request_id,
                             payload)
        if outcome.ok and outcome.data.get("status") != "REGISTERED":
            return _bad_response(outcome.status, "неожиданный статус регистрации")
        return outcome

    def should_hold_off(self) -> bool:
        """True for HOLD_OFF_SECONDS after Stoloto left a call unanswered (timeout, no connection, 5xx).

        The cash-register API asks this before calling: while Stoloto hangs, a register answers
        PENDING at once instead of each one waiting for the read timeout and holding a server
        thread. When the time is up, one caller tries again and the others keep holding off
        until its answer comes; any answer ends the hold-off.
        """
        with self._hold_off_lock:
            now = _clock()
            if now < self._hold_off_until:
                return True
            if self._hold_off_until:
                self._hold_off_until = now + HOLD_OFF_SECONDS  # this caller tries; the others wait for it
            return False

    def _post(self, endpoint: str, path: str, request_id: str, body: dict) -> Outcome:
        started = time.perf_counter()
        outcome = self._send(path, request_id, body)
        _log_call(path, request_id, body.get("contract_number"), outcome, time.perf_counter() - started)
        if outcome.status == 401 and self.fallback is not None:
            log.warning("Stoloto refused the renewed certificate on %s: the previous one is tried", path)
            return self.fallback._post(endpoint, path, request_id, body)
        with self._hold_off_lock:
            self._hold_off_until = 0.0 if outcome.answered else _clock() + HOLD_OFF_SECONDS
            first_success = None
            if outcome.ok:
                first_success, self.after_first_success = self.after_first_success, None
        if first_success is not None:
            first_success()
        if self.observer is not None:
            self.observer(endpoint, outcome)
        return outcome

    def _send(self, path: str, request_id: str, body: dict) -> Outcome:
        if self._url is None:
            return Outcome(Kind.FAILURE, code="CONNECTION", message="сервис Столото недоступен: неверный адрес")
        content = json.dumps(body, allow_nan=False).encode()
        request = requests.PreparedRequest()  # what Request.prepare() makes of it, without parsing the URL again
        request.method, request.url, request.body, request.hooks = "POST", self._url + path, content, default_hooks()
        request.headers = CaseInsensitiveDict({"X-Request-Id": request_id, "Accept": "application/json",
                                               "Content-Type": "application/json",
                                               "Content-Length": str(len(content))})
        try:
            # Straight to the adapter's connection pool, not through a Session: Stoloto sets no cookies
            # and is never to be redirected to, and the session's cookie, hook and settings merging
            # cost a fifth of the call. No proxies or .netrc from the environment either.
            response = self.adapter.send(request, timeout=self.timeout, verify=self.verify)
        except requests.exceptions.Timeout:
            return Outcome(Kind.FAILURE, code="TIMEOUT", message="Столото не ответил вовремя")
        except requests.exceptions.SSLError as error:
            log.debug("Stoloto TLS error on %s: %s", path, error)  # the call's own line follows
            return Outcome(Kind.FAILURE, code="TLS", message="ошибка защищённого соединения (TLS)")
        except requests.exceptions.RequestException as error:
            if _was_read_timeout(error):
                return Outcome(Kind.FAILURE, code="TIMEOUT", message="Столото не ответил вовремя")
            log.debug("Stoloto unreachable on %s: %s", path, type(error).__name__)
            return Outcome(Kind.FAILURE, code="CONNECTION", message="сервис Столото недоступен")
        try:
            return _interpret(response)
        finally:
            response.close()  # the connection goes back to the pool (or is closed, if the body was not read)


def _checked_url(base_url: str) -> str | None:
    """requests' own check and quoting of the address, made once: each call only appends a path of its own."""
    checked = requests.PreparedRequest()
    try:
        checked.prepare_url(base_url, None)
    except (requests.exceptions.RequestException, ValueError):
        return None
    return checked.url.rstrip("/")


def _log_call(path: str, request_id: str, contract_number: str | None, outcome: Outcome, seconds: float) -> None:
    """The one line per call: what an administrator matches with Stoloto's own log (by X-Request-Id)."""
    result = "ok" if outcome.ok else outcome.code
    took = round(seconds * 1000)
    # Not answered (timeout, no connection, 5xx, garbage) is worth a warning; Stoloto's refusals are answers.
    level = logging.INFO if outcome.answered else logging.WARNING
    log.log(level, "Stoloto POST %s: %s %s, %d ms, X-Request-Id %s, contract %s", path,
            outcome.status if outcome.status is not None else "no answer", result, took, request_id, contract_number,
            extra={"endpoint": path, "x_request_id": request_id, "status": outcome.status, "outcome": result,
                   "duration_ms": took, "contract_number": contract_number})


def _was_read_timeout(error: Exception) -> bool:
    # With a Retry policy urllib3 wraps a read timeout in MaxRetryError, which requests
    # re-raises as ConnectionError instead of ReadTimeout.
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, ReadTimeoutError)


def _bad_response(status: int | None, what: str) -> Outcome:
    return Outcome(Kind.FAILURE, status=status, code="BAD_RESPONSE", message=f"некорректный ответ Столото: {what}")


def _interpret(response: requests.Response) -> Outcome:
    status = response.status_code
    if 300 <= status < 400:
        return _bad_response(status, f"перенаправление {status}")
    try:
        data = response.json()
    except ValueError:
        if status >= 500:
            return Outcome(Kind.FAILURE, status=status, code=f"HTTP_{status}",
                           message=f"сервис Столото вернул ошибку {status}")
        return _bad_response(status, "ответ не в формате JSON")
    if not isinstance(data, dict):
        return _bad_response(status, "ответ не является объектом JSON")
    if 200 <= status < 300:
        return Outcome(Kind.SUCCESS, status=status, data=data)
    error = data.get("error")
    if not isinstance(error, dict):
        if status >= 500:
            return Outcome(Kind.FAILURE, status=status, code=f"HTTP_{status}",
                           message=f"сервис Столото вернул ошибку {status}")
        return _bad_response(status, f"ошибка {status} без описания")
    code = storable(str(error.get("code") or f"HTTP_{status}"), CODE_LENGTH)
    fields = error.get("fields") if isinstance(error.get("fields"), list) else []
    return Outcome(ERROR_KINDS.get((status, code), Kind.FAILURE), status=status, code=code,
                   message=storable(str(error.get("message") or ""), MESSAGE_LENGTH),
                   fields=[storable(str(f), CODE_LENGTH) for f in fields], data=data)


def _mutual_tls_context(ca_bundle: str | None, client_cert: ClientCertificate) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle or None)
    with _certificate_files(client_cert) as (cert_path, key_path):
        context.load_cert_chain(cert_path, key_path)
    return context  # the files are gone; the key lives on only inside the context


@contextmanager
def _certificate_files(client_cert: ClientCertificate):
    """The certificate and key as files (ssl loads only files), in a private 0700 folder, removed after."""
    folder = tempfile.mkdtemp(prefix="sis-tls-")
    cert_path, key_path = os.path.join(folder, "client.pem"), os.path.join(folder, "client.key")
    try:
        for path, content in ((cert_path, client_cert.certificate_pem.encode()), (key_path, client_cert.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
        yield (cert_path, key_path)
    finally:
        for path in (cert_path, key_path):
            if os.path.exists(path):
                os.remove(path)
        os.rmdir(folder)
