"""Stoloto test stand: a fake Stoloto agent service (docs/protocols.md §1, §4), HTTPS with its own CA and mutual TLS."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import signal
import socket
import sqlite3
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

# A fixed name: under `python -m` __name__ would be "__main__".
log = logging.getLogger("stoloto.stands.stoloto_stand")

# Status of every error code of docs/protocols.md §1; the "error" fault kind answers with these.
ERROR_STATUSES = {
    "VALIDATION_ERROR": 400,
    "UNAUTHORIZED": 401,
    "CONTRACT_NOT_FOUND": 404,
    "TERMINAL_UNKNOWN": 404,
    "KEY_NOT_REGISTERED": 409,
    "KEY_MISMATCH": 409,
    "CONTRACT_NOT_ACTIVATED": 409,
    "TERMINAL_LIMIT_EXCEEDED": 409,
    "TERMINAL_ALREADY_BOUND": 409,
    "CONTRACT_DATA_MISMATCH": 422,
}
API_ENDPOINTS = ("activate", "batches", "registration")
# "delay_after": do the work (and store it for idempotency), then hold the answer back — the
# window in which a client may die after Stoloto issued something but before it saved it.
# "certificate" (activate only): 200 ACTIVATED with a certificate the client must refuse, one for
# another key ("other_key") or one that is not a certificate at all ("malformed").
FAULT_KINDS = ("delay", "delay_after", "status", "garbage", "html502", "drop", "error", "certificate")
CERTIFICATE_VARIANTS = ("other_key", "malformed")
MALFORMED_CERTIFICATE = ("-----BEGIN CERTIFICATE-----\n"
                         "c3RhbmQgZmF1bHQ6IHRoaXMgaXMgbm90IGEgY2VydGlmaWNhdGU=\n"
                         "-----END CERTIFICATE-----\n")
DEFAULT_TERMINAL_LIMIT = 10_000
MAX_BATCH = 1000
FIRST_TERMINAL = 100_001  # shown as "0100001": 7 digits, leading zero kept
CLIENT_CERT_DAYS = 365

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INN_RE = re.compile(r"^(\d{10}|\d{12})$")
DIGITS_RE = re.compile(r"^\d{1,20}$")
FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")

MAX_LATENCY_MS = 60_000  # the stand's --latency-ms and POST /control/latency
GARBAGE_BODY = b"<<stand fault: this is not JSON>> {\"status\": "
HTML_502_BODY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


# ---------------------------------------------------------------------------
# Plumbing shared with the SET Centrum stand: errors, faults, the server thread.
# ---------------------------------------------------------------------------


class ApiError(Exception):
    """An answer `{"error": {...}}` with a non-2xx status, raised anywhere in a view."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


def invalid(message: str, fields: list[str] | None = None) -> ApiError:
    """A 400 VALIDATION_ERROR; `fields` names the offending request fields."""
    extra = {"fields": fields} if fields else {}
    return ApiError(400, "VALIDATION_ERROR", message, **extra)


class DropConnection(BaseException):
    """Raised by a view to close the connection without sending any HTTP answer.

    A BaseException on purpose: Flask and werkzeug turn every Exception into a 500
    answer, while the "drop" fault must leave the client with no answer at all.
    StandRequestHandler.handle catches it.
    """


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """A UTF-8 JSON answer (Cyrillic kept readable, unlike Flask's default escaping)."""
    text = json.dumps(body, ensure_ascii=False)
    return Response(text, status=status, content_type="application/json", headers=headers)


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """The common error body of docs/protocols.md: {"error": {"code", "message", ...}}."""
    headers = {"Location": "/redirected-by-stand-fault"} if 300 <= status < 400 else None
    return json_response(status, {"error": {"code": code, "message": message, **extra}}, headers)


def install_error_handlers(app: Flask) -> None:
    """Every error of the stand, even an unknown path, answers with the JSON error body."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, **exc.extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = {400: "VALIDATION_ERROR", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                413: "PAYLOAD_TOO_LARGE"}.get(status, f"HTTP_{status}")
        return error_response(status, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("stand error on %s %s", request.method, request.path)
        return error_response(500, "INTERNAL_ERROR", "internal error of the test stand")


def read_json_object() -> dict[str, Any]:
    """The request body as a JSON object, else 400."""
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    return body


def int_field(data: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    """An integer field (booleans and strings refused) within [low, high]."""
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"'{name}' must be an integer from {low} to {high}", [name])
    return value


def number_field(data: dict, name: str, low: float, high: float, default: float) -> float:
    """A number field within [low, high]."""
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise invalid(f"'{name}' must be a number from {low} to {high}", [name])
    return float(value)


def default_status_code(status: int) -> str:
    """An error code for a bare injected status."""
    return {429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 502: "BAD_GATEWAY",
            503: "SERVICE_UNAVAILABLE", 504: "GATEWAY_TIMEOUT"}.get(status, "STAND_FAULT")


def parse_fault(data: dict, kinds: tuple[str, ...], endpoints: tuple[str, ...]) -> dict[str, Any]:
    """Validate a POST /control/faults body into a pending fault."""
    kind = data.get("kind")
    if kind not in kinds:
        raise invalid(f"'kind' must be one of: {', '.join(kinds)}", ["kind"])
    endpoint = data.get("endpoint", "any")
    if endpoint not in endpoints + ("any",):
        raise invalid(f"'endpoint' must be one of: {', '.join(endpoints + ('any',))}", ["endpoint"])
    fault: dict[str, Any] = {"endpoint": endpoint, "kind": kind,
                             "remaining": int_field(data, "count", 1, 1_000_000, default=1)}
    if kind in ("delay", "delay_after"):
        fault["seconds"] = number_field(data, "seconds", 0, 600, default=1.0)
    elif kind == "status":
        fault["status"] = int_field(data, "status", 200, 599, default=500)
        fault["code"] = _code_field(data) or default_status_code(fault["status"])
    elif kind == "error":
        fault.update(_error_fault_fields(data))
    return fault


def _code_field(data: dict) -> str | None:
    code = data.get("code")
    if code is not None and (not isinstance(code, str) or not code.strip()):
        raise invalid("'code' must be a non-empty string", ["code"])
    return code


def _error_fault_fields(data: dict) -> dict[str, Any]:
    """The "error" kind answers an error code of docs/protocols.md §1 with its status (overridable)."""
    code = data.get("code")
    if code not in ERROR_STATUSES:
        raise invalid(f"'code' must be one of: {', '.join(ERROR_STATUSES)}", ["code"])
    fields: dict[str, Any] = {"code": code,
                              "status": int_field(data, "status", 200, 599, default=ERROR_STATUSES[code])}
    if code == "CONTRACT_DATA_MISMATCH":
        fields["fields"] = data.get("fields") or ["contract_date"]
    return fields


class FaultQueue:
    """Faults waiting for the next matching calls; in memory only, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[dict[str, Any]] = []

    def add(self, fault: dict[str, Any]) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, endpoint: str) -> dict[str, Any] | None:
        """Consume one use of the oldest fault matching `endpoint` (or "any")."""
        with self._lock:
            for fault in self._faults:
                if fault["endpoint"] in (endpoint, "any"):
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        self._faults.remove(fault)
                    return dict(fault)
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(fault) for fault in self._faults]


def add_fault_routes(app: Flask, faults: FaultQueue, parse: Callable[[dict], dict[str, Any]]) -> None:
    """/control/faults of a stand: POST queues a fault (checked by `parse`), DELETE clears them."""

    @app.post("/control/faults")
    def control_add_fault() -> Response:
        faults.add(parse(read_json_object()))
        return json_response(201, {"faults": faults.pending()})

    @app.delete("/control/faults")
    def control_clear_faults() -> Response:
        faults.clear()
        return json_response(200, {"faults": []})


def apply_fault(fault: dict[str, Any], is_running: Callable[[], bool]) -> Response | None:
    """Answer as the fault says; None means "go on and answer normally" (delay)."""
    kind = fault["kind"]
    if kind == "delay":
        time.sleep(fault["seconds"])
        if not is_running():
            # The stand was stopped meanwhile; its storage may be closed already.
            raise DropConnection()
        return None
    if kind == "delay_after":
        g.delay_after = fault["seconds"]  # slept in the after_request hook, once the work is stored
        return None
    if kind == "drop":
        raise DropConnection()
    if kind == "garbage":
        # Declared as JSON on purpose: a client must check the body, not the header.
        return Response(GARBAGE_BODY, status=200, content_type="application/json")
    if kind == "html502":
        return Response(HTML_502_BODY, status=502, content_type="text/html; charset=utf-8")
    if kind in ("status", "error"):
        extra = {"fields": fault["fields"]} if "fields" in fault else {}
        return error_response(fault["status"], fault["code"], "fault injected by the test stand", **extra)
    return None


class StandRequestHandler(WSGIRequestHandler):
    """werkzeug request handler that passes the TLS peer certificate on and can drop connections."""

    # A stuck client must not hold a server thread forever.
    timeout = 30
    # Note: werkzeug answers "Connection: close" to every request (it cannot drain an unread body
    # safely), so each call to the stand costs a TLS handshake; SIS's client keeps connections alive
    # wherever the server allows it.

    def setup(self) -> None:
        super().setup()
        self.tls_failed = False
        # Headers and body go out as separate small writes; without NODELAY, Nagle holds
        # the body back until werkzeug closes the socket (~10 ms per TLS request).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(self.connection, ssl.SSLSocket):
            # The listening socket does not handshake on accept (that would run in the
            # accept loop, so one silent client would block everybody); do it here.
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as exc:
                self.tls_failed = True
                log.info("TLS handshake with %s failed: %s", self.client_address[0], exc)

    def handle(self) -> None:
        if self.tls_failed:
            return
        try:
            super().handle()
        except DropConnection:
            # socketserver closes the socket right after; the client gets no answer.
            self.close_connection = True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        environ["stand.peer_cert"] = self._peer_certificate()
        return environ

    def _peer_certificate(self) -> bytes | None:
        """DER of the client certificate, None without TLS or without a certificate."""
        getpeercert = getattr(self.connection, "getpeercert", None)
        if getpeercert is None:
            return None
        try:
            return getpeercert(binary_form=True)
        except ValueError:
            return None

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: each stand app logs its own line per request."""


class BackgroundServer:
    """A threaded werkzeug server for a WSGI app, run on a daemon thread or in the foreground."""

    def __init__(self, app: Any, host: str, port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def bind(self) -> None:
        """Listen on host:port; the real port is known afterwards (port 0 = any free)."""
        try:
            server = make_server(self.host, self.port, self.app, threaded=True,
                                 request_handler=StandRequestHandler)
        except SystemExit as exc:
            # werkzeug exits the process when it cannot bind; a library must not.
            raise OSError(f"cannot listen on {self.host}:{self.port}") from exc
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False)
            server.ssl_context = self.ssl_context
        self.port = server.port
        self._server = server

    def start(self, name: str) -> None:
        self.bind()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        """Serve in the calling thread until Ctrl-C."""
        try:
            self._server.serve_forever(poll_interval=0.5)
        finally:
            self._server = None

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._halt(server)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @staticmethod
    def _halt(server: Any) -> None:
        server.shutdown()  # returns once serve_forever has left its loop
        server.server_close()

    def url(self) -> str:
        scheme = "http" if self.ssl_context is None else "https"
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"


KEEP_ALIVE_CONNECTIONS = 256
# Calls answered at once: with --latency-ms each one holds a thread that long, and SIS may call with up to
# 64 at a time («Одновременных запросов к Столото»).
STAND_THREADS = 64


class KeepAliveServer(BackgroundServer):
    """cheroot instead of werkzeug: connections stay open between calls, as a real service's do.

    cheroot hands the verified client certificate to the app as SSL_CLIENT_CERT (PEM). It cannot
    drop a connection from inside the app, so the "drop" fault needs the werkzeug server.
    """

    def __init__(self, app: Any, host: str, port: int, ssl_context: ssl.SSLContext | None = None,
                 certificate: Path | None = None, key: Path | None = None) -> None:
        super().__init__(app, host, port, ssl_context)
        self.certificate, self.key = certificate, key

    def _wsgi(self, environ: dict, start_response: Callable) -> Any:
        pem = environ.get("SSL_CLIENT_CERT")
        environ["stand.peer_cert"] = ssl.PEM_cert_to_DER_cert(pem) if pem else None
        return self.app(environ, start_response)

    def bind(self) -> None:
        from cheroot import wsgi
        from cheroot.ssl.builtin import BuiltinSSLAdapter
        server = wsgi.Server((self.host, self.port), self._wsgi, numthreads=STAND_THREADS, shutdown_timeout=1)
        # cheroot keeps only 10 idle connections open by default and closes the rest after each answer,
        # so a busier client would pay a mutual-TLS handshake per call.
        server.keep_alive_conn_limit = KEEP_ALIVE_CONNECTIONS
        if self.ssl_context is not None:
            adapter = BuiltinSSLAdapter(str(self.certificate), str(self.key))
            adapter.context = self.ssl_context  # ours: CERT_OPTIONAL against the stand CA
            server.ssl_adapter = adapter
        server.prepare()
        self.port = server.socket.getsockname()[1]
        self._server = server

    def start(self, name: str) -> None:
        self.bind()
        self._thread = threading.Thread(target=self._server.serve, name=name, daemon=True)
        self._thread.start()

    def serve_forever(self) -> None:
        server = self._server
        try:
            server.serve()
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM: stop quietly, as werkzeug's server does
        finally:
            server.stop()  # cheroot's worker threads would otherwise keep the process alive
            self._server = None

    @staticmethod
    def _halt(server: Any) -> None:
        server.stop()


# ---------------------------------------------------------------------------
# PKI: the stand's own CA, its TLS server certificate, client certificates.
# ---------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def spki_fingerprint(public_key: Any) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo, lowercase hex (as in Appendix 5)."""
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: Any) -> str:
    """Accept any case, spaces, colons or dashes; 400 unless 64 hex digits remain."""
    value = re.sub(r"[\s:\-]", "", text).lower() if isinstance(text, str) else ""
    if not FINGERPRINT_RE.match(value):
        raise invalid("'fingerprint' must be a SHA-256 fingerprint (64 hex digits)", ["fingerprint"])
    return value


def write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by the owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_usage(digital_signature: bool = False, key_encipherment: bool = False,
              cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=False,
                         key_encipherment=key_encipherment, data_encipherment=False,
                         key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)


class StandPki:
    """The stand's CA and TLS server certificate, made on first start and kept in the data dir."""

    def __init__(self, data_dir: Path, server_names: list[str]) -> None:
        self.ca_path = data_dir / "ca.pem"
        self.ca_key_path = data_dir / "ca.key"
        self.server_cert_path = data_dir / "server.pem"
        self.server_key_path = data_dir / "server.key"
        self._load_or_create_ca()
        if not self._server_cert_usable(server_names):
            self._create_server_cert(server_names)

    @property
    def ca_pem(self) -> str:
        return cert_pem(self.ca_cert).decode()

    def _load_or_create_ca(self) -> None:
        if self.ca_path.exists() and self.ca_key_path.exists():
            self.ca_cert = x509.load_pem_x509_certificate(self.ca_path.read_bytes())
            self.ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
            return
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Stoloto test stand"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "Stoloto Test Stand CA")])
        now = utcnow()
        public = self.ca_key.public_key()
        self.ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(key_usage(digital_signature=True, cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        write_private(self.ca_key_path, key_pem(self.ca_key))
        self.ca_path.write_bytes(cert_pem(self.ca_cert))

    def _server_cert_usable(self, server_names: list[str]) -> bool:
        """Reuse the stored server certificate unless it is missing, stale or lacks a name."""
        if not (self.server_cert_path.exists() and self.server_key_path.exists()):
            return False
        cert = x509.load_pem_x509_certificate(self.server_cert_path.read_bytes())
        try:
            cert.verify_directly_issued_by(self.ca_cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            log.info("server certificate not issued by the stand CA (%s), making a new one", exc)
            return False
        if cert.not_valid_after_utc - utcnow() < dt.timedelta(days=30):
            return False
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        present = {str(v) for v in san.get_values_for_type(x509.DNSName)}
        present |= {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        return set(server_names) <= present

    def _create_server_cert(self, server_names: list[str]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(self.ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.SubjectAlternativeName(san_entries(server_names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        write_private(self.server_key_path, key_pem(key))
        self.server_cert_path.write_bytes(cert_pem(cert))

    def server_context(self) -> ssl.SSLContext:
        """TLS server context: asks for a client certificate, optional, issued by the stand CA."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert_path, self.server_key_path)
        context.load_verify_locations(cafile=str(self.ca_path))
        context.verify_mode = ssl.CERT_OPTIONAL
        return context

    def sign_client_certificate(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        """A one-year TLS client certificate with the CSR subject and key."""
        public = csr.public_key()
        now = utcnow()
        return (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.ca_cert.subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CLIENT_CERT_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(digital_signature=True,
                                     key_encipherment=isinstance(public, rsa.RSAPublicKey)), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                           critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )


def san_entries(names: list[str]) -> list[x509.GeneralName]:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return entries


def server_names_for(host: str) -> list[str]:
    """localhost and loopback always; the listening host too when it is a specific name."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host not in ("", "0.0.0.0", "::") and host not in names:
        names.append(host)
    return names


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR and check its self-signature; 400 otherwise."""
    try:
        csr = x509.load_pem_x509_csr(pem.encode())
        csr.public_key()
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise invalid(f"'csr' is not a valid PEM certificate request: {exc}", ["csr"]) from exc
    if not valid:
        raise invalid("'csr' signature does not match its public key", ["csr"])
    return csr


# ---------------------------------------------------------------------------
# Storage: one SQLite file, one connection guarded by a lock (the server is threaded).
# ---------------------------------------------------------------------------

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contracts (
    number_key TEXT PRIMARY KEY, contract_number TEXT NOT NULL, contract_date TEXT NOT NULL,
    agent_inn TEXT NOT NULL, terminal_limit INTEGER NOT NULL, agent_id TEXT,
    key_fingerprint TEXT, certificate TEXT, certificate_sha256 TEXT UNIQUE, activated_at TEXT);
CREATE TABLE IF NOT EXISTS confirmed_keys (fingerprint TEXT PRIMARY KEY, confirmed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, number_key TEXT NOT NULL, request_id TEXT NOT NULL,
    requested INTEGER NOT NULL, issued INTEGER NOT NULL, issued_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terminals (
    terminal_number TEXT PRIMARY KEY, number_key TEXT NOT NULL, batch_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bindings (
    terminal_number TEXT PRIMARY KEY, store_code TEXT NOT NULL, cash_number INTEGER NOT NULL,
    serial_number TEXT, address TEXT, bound_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    request_key TEXT PRIMARY KEY, status INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL);
"""
# Wiped by /control/reset; `meta` stays, so numbers already handed out are never reused.
STATE_TABLES = ("contracts", "confirmed_keys", "batches", "terminals", "bindings", "idempotency")


class StandStore:
    """SQLite state of the Stoloto stand; every use goes through `transaction()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        with self.lock:
            if self._conn is None:
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
                conn.row_factory = sqlite3.Row
                # WAL without an fsync per commit: survives a killed process (what the tests do),
                # and keeps the stand from being the slowest part of a benchmark.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA)
                self._conn = conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self):
        """Serialize with the lock and commit (or roll back) as one SQLite transaction."""
        with self.lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("the stand storage is closed")
            if conn.in_transaction:
                # Nested use inside an outer transaction: the outer one commits.
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def get_meta(self, name: str, default: str | None = None) -> str | None:
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else default

    def set_meta(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def next_number(self, name: str, first: int) -> int:
        """The next value of a persistent sequence."""
        return self.reserve_numbers(name, first, 1)[0]

    def reserve_numbers(self, name: str, first: int, count: int) -> range:
        """`count` consecutive values of a persistent sequence; meta keeps the next free value."""
        with self.transaction():
            start = int(self.get_meta(name, str(first)))
            self.set_meta(name, str(start + count))
        return range(start, start + count)

    def wipe(self) -> None:
        with self.transaction() as db:
            for table in STATE_TABLES:
                db.execute(f"DELETE FROM {table}")


def contract_key(number: str) -> str:
    """Lookup key of a contract number: case and whitespace do not make another contract."""
    return re.sub(r"\s+", "", number).casefold()


# ---------------------------------------------------------------------------
# Request validation (docs/protocols.md §1 field rules).
# ---------------------------------------------------------------------------


def string_field(data: dict, name: str, pattern: re.Pattern | None = None, what: str = "a non-empty string") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or (pattern is not None and not pattern.match(value)):
        raise invalid(f"'{name}' must be {what}", [name])
    return value.strip()


def date_field(data: dict, name: str) -> str:
    value = string_field(data, name, DATE_RE, "a date YYYY-MM-DD")
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"'{name}' is not a real date", [name]) from exc
    return value


def optional_string(data: dict, name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid(f"'{name}' must be a string or null", [name])
    return value


def contract_fields(data: dict) -> dict[str, Any]:
    """Number, date and INN of a contract (activation request or control registration)."""
    return {
        "contract_number": string_field(data, "contract_number"),
        "contract_date": date_field(data, "contract_date"),
        "agent_inn": string_field(data, "agent_inn", INN_RE, "10 or 12 digits"),
    }


def request_id_header() -> str:
    """The mandatory X-Request-Id (a UUID), lowercased to compare."""
    value = request.headers.get("X-Request-Id", "").strip()
    if not UUID_RE.match(value):
        raise invalid("header X-Request-Id must be a UUID", ["X-Request-Id"])
    return value.lower()


# ---------------------------------------------------------------------------
# The Stoloto logic.
# ---------------------------------------------------------------------------


class StolotoBackend:
    """What Stoloto does: contracts, key confirmation, activation, terminal batches, bindings."""

    def __init__(self, store: StandStore, pki: StandPki) -> None:
        self.store = store
        self.pki = pki
        self.calls: Counter[str] = Counter()
        self.executed: Counter[str] = Counter()
        self.replayed: Counter[str] = Counter()

    # -- flags -------------------------------------------------------------

    def flag(self, name: str) -> bool:
        return self.store.get_meta(name, "0") == "1"

    def set_flag(self, name: str, enabled: bool) -> None:
        self.store.set_meta(name, "1" if enabled else "0")

    # -- idempotency -------------------------------------------------------

    def idempotent(self, endpoint: str, request_key: str, work: Callable[[], tuple[int, Any]]) -> Response:
        """Replay the stored success for a known request key, else do the work once.

        Only 2xx answers are stored: a refusal (key not registered yet, limit reached)
        must be re-examined when the client retries with the same id later.
        """
        with self.store.transaction() as db:
            row = db.execute("SELECT status, body FROM idempotency WHERE request_key = ?",
                             (request_key,)).fetchone()
            if row is not None:
                self.replayed[endpoint] += 1
                g.replayed = True
                return Response(row["body"], status=row["status"], content_type="application/json")
            status, body = work()
            self.executed[endpoint] += 1
            text = json.dumps(body, ensure_ascii=False)
            if 200 <= status < 300:
                db.execute("INSERT INTO idempotency (request_key, status, body, created_at) VALUES (?, ?, ?, ?)",
                           (request_key, status, text, utcnow().isoformat()))
        return Response(text, status=status, content_type="application/json")

    # -- contracts (control) -----------------------------------------------

    def register_contract(self, data: dict) -> tuple[int, dict]:
        fields = contract_fields(data)
        limit = int_field(data, "terminal_limit", 0, 10_000_000, default=DEFAULT_TERMINAL_LIMIT)
        key = contract_key(fields["contract_number"])
        with self.store.transaction() as db:
            exists = db.execute("SELECT 1 FROM contracts WHERE number_key = ?", (key,)).fetchone()
            if exists:
                db.execute("UPDATE contracts SET contract_number = ?, contract_date = ?, agent_inn = ?, "
                           "terminal_limit = ? WHERE number_key = ?",
                           (fields["contract_number"], fields["contract_date"], fields["agent_inn"], limit, key))
            else:
                db.execute("INSERT INTO contracts (number_key, contract_number, contract_date, agent_inn, "
                           "terminal_limit) VALUES (?, ?, ?, ?, ?)",
                           (key, fields["contract_number"], fields["contract_date"], fields["agent_inn"], limit))
            contract = self._contract_state(db, self._contract(db, key))
        return (200 if exists else 201), {"contract": contract}

    def confirm_key(self, fingerprint: str) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO confirmed_keys (fingerprint, confirmed_at) VALUES (?, ?)",
                       (fingerprint, utcnow().isoformat()))

    @staticmethod
    def _contract(db: sqlite3.Connection, key: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM contracts WHERE number_key = ?", (key,)).fetchone()

    # -- §1.1 activation ---------------------------------------------------

    def activate(self, data: dict) -> tuple[int, dict]:
        fields = contract_fields(data)
        csr_pem = string_field(data, "csr", what="a PEM certificate request")
        key = contract_key(fields["contract_number"])
        with self.store.transaction() as db:
            contract = self._contract(db, key)
            if contract is None:
                contract = self._auto_register(db, key, fields)
            self._check_requisites(contract, fields)
            csr = load_csr(csr_pem)
            fingerprint = spki_fingerprint(csr.public_key())
            if contract["key_fingerprint"] is None:
                self._require_confirmed(db, fingerprint)
                contract = self._issue_certificate(db, contract, csr, fingerprint)
            elif contract["key_fingerprint"] != fingerprint:
                raise ApiError(409, "KEY_MISMATCH", "договор уже активирован с другим ключом")
            return 200, {"status": "ACTIVATED", "agent_id": contract["agent_id"],
                         "certificate": contract["certificate"], "ca_certificate": self.pki.ca_pem}

    def wrong_activation(self, variant: str) -> dict:
        """The "certificate" fault: a success body whose certificate is for a stranger's key, or unreadable."""
        if variant == "other_key":
            stranger = ec.generate_private_key(ec.SECP256R1())
            csr = (x509.CertificateSigningRequestBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand fault: another key")]))
                   .sign(stranger, hashes.SHA256()))
            certificate = cert_pem(self.pki.sign_client_certificate(csr)).decode()
        else:
            certificate = MALFORMED_CERTIFICATE
        return {"status": "ACTIVATED", "agent_id": "A-999999", "certificate": certificate,
                "ca_certificate": self.pki.ca_pem}

    def _auto_register(self, db: sqlite3.Connection, key: str, fields: dict) -> sqlite3.Row:
        """Unknown contract: 404, unless auto-register mode makes it known on the spot (demo)."""
        if not self.flag("auto_register"):
            raise ApiError(404, "CONTRACT_NOT_FOUND", "договор в Столото не найден")
        db.execute("INSERT INTO contracts (number_key, contract_number, contract_date, agent_inn, terminal_limit) "
                   "VALUES (?, ?, ?, ?, ?)",
                   (key, fields["contract_number"], fields["contract_date"], fields["agent_inn"],
                    DEFAULT_TERMINAL_LIMIT))
        return self._contract(db, key)

    @staticmethod
    def _check_requisites(contract: sqlite3.Row, fields: dict) -> None:
        mismatched = [name for name in ("contract_number", "contract_date", "agent_inn")
                      if contract[name] != fields[name]]
        if mismatched:
            raise ApiError(422, "CONTRACT_DATA_MISMATCH",
                           "реквизиты не совпадают с договором, зарегистрированным в Столото: "
                           + ", ".join(mismatched), fields=mismatched)

    def _require_confirmed(self, db: sqlite3.Connection, fingerprint: str) -> None:
        row = db.execute("SELECT 1 FROM confirmed_keys WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if row is not None:
            return
        if not self.flag("auto_confirm"):
            raise ApiError(409, "KEY_NOT_REGISTERED",
                           "ключ ещё не зарегистрирован в Столото")
        self.confirm_key(fingerprint)

    def _issue_certificate(self, db: sqlite3.Connection, contract: sqlite3.Row,
                           csr: x509.CertificateSigningRequest, fingerprint: str) -> sqlite3.Row:
        cert = self.pki.sign_client_certificate(csr)
        der = cert.public_bytes(serialization.Encoding.DER)
        agent_id = contract["agent_id"] or f"A-{self.store.next_number('next_agent', 1):06d}"
        db.execute("UPDATE contracts SET agent_id = ?, key_fingerprint = ?, certificate = ?, "
                   "certificate_sha256 = ?, activated_at = ? WHERE number_key = ?",
                   (agent_id, fingerprint, cert_pem(cert).decode(), hashlib.sha256(der).hexdigest(),
                    utcnow().isoformat(), contract["number_key"]))
        return self._contract(db, contract["number_key"])

    # -- callers of §1.2/§1.3 ----------------------------------------------

    def contract_by_certificate(self, der: bytes | None) -> str:
        """The contract the presented client certificate was issued for; 401 otherwise."""
        if der is None:
            raise ApiError(401, "UNAUTHORIZED", "нужен клиентский сертификат")
        with self.store.transaction() as db:
            row = db.execute("SELECT number_key FROM contracts WHERE certificate_sha256 = ?",
                             (hashlib.sha256(der).hexdigest(),)).fetchone()
        if row is None:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат неизвестен")
        return row["number_key"]

    def caller_contract(self, body_number: str, cert_contract: str | None) -> sqlite3.Row:
        """The calling contract: the certificate's one (the body must agree) or, over plain HTTP, the body's."""
        key = contract_key(body_number)
        if cert_contract is not None and key != cert_contract:
            raise ApiError(401, "UNAUTHORIZED", "клиентский сертификат выдан для другого договора")
        with self.store.transaction() as db:
            contract = self._contract(db, key)
        if contract is None:
            raise ApiError(401, "UNAUTHORIZED", "договор неизвестен")
        return contract

    # -- §1.2 batches --------------------------------------------------------

    def issue_batch(self, contract: sqlite3.Row, count: int, request_id: str) -> tuple[int, dict]:
        if contract["key_fingerprint"] is None:
            raise ApiError(409, "CONTRACT_NOT_ACTIVATED", "договор не активирован")
        key = contract["number_key"]
        with self.store.transaction() as db:
            issued = db.execute("SELECT COUNT(*) FROM terminals WHERE number_key = ?", (key,)).fetchone()[0]
            remaining = contract["terminal_limit"] - issued
            if remaining <= 0:
                raise ApiError(409, "TERMINAL_LIMIT_EXCEEDED", "лимит терминалов договора исчерпан")
            numbers = [f"{n:07d}" for n in self.store.reserve_numbers("next_terminal", FIRST_TERMINAL,
                                                                      min(count, remaining))]
            batch_id = f"B-{self.store.next_number('next_batch', 1):06d}"
            db.execute("INSERT INTO batches (batch_id, number_key, request_id, requested, issued, issued_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (batch_id, key, request_id, count, len(numbers), utcnow().isoformat()))
            db.executemany("INSERT INTO terminals (terminal_number, number_key, batch_id) VALUES (?, ?, ?)",
                           [(number, key, batch_id) for number in numbers])
        return 201, {"batch_id": batch_id, "terminals": numbers}

    # -- §1.3 registration ---------------------------------------------------

    def register_terminal(self, contract: sqlite3.Row, terminal_number: str, binding: dict) -> tuple[int, dict]:
        with self.store.transaction() as db:
            owner = db.execute("SELECT number_key FROM terminals WHERE terminal_number = ?",
                               (terminal_number,)).fetchone()
            if owner is None or owner["number_key"] != contract["number_key"]:
                raise ApiError(404, "TERMINAL_UNKNOWN", "терминал не выдавался этому договору")
            bound = db.execute("SELECT store_code, cash_number FROM bindings WHERE terminal_number = ?",
                               (terminal_number,)).fetchone()
            if bound is None:
                db.execute("INSERT INTO bindings (terminal_number, store_code, cash_number, serial_number, "
                           "address, bound_at) VALUES (?, ?, ?, ?, ?, ?)",
                           (terminal_number, binding["store_code"], binding["cash_number"],
                            binding["serial_number"], binding["address"], utcnow().isoformat()))
            elif (bound["store_code"], bound["cash_number"]) != (binding["store_code"], binding["cash_number"]):
                raise ApiError(409, "TERMINAL_ALREADY_BOUND",
                               f"терминал уже привязан к магазину {bound['store_code']}, "
                               f"кассе {bound['cash_number']}")
        return 200, {"terminal_number": terminal_number, "status": "REGISTERED"}

    # -- control: state and reset ------------------------------------------

    def reset(self) -> None:
        self.store.wipe()
        for counter in (self.calls, self.executed, self.replayed):
            counter.clear()

    def state(self) -> dict[str, Any]:
        with self.store.transaction() as db:
            contracts = db.execute("SELECT * FROM contracts ORDER BY contract_number").fetchall()
            numbers = {row["number_key"]: row["contract_number"] for row in contracts}
            return {
                "auto_confirm": self.flag("auto_confirm"),
                "auto_register": self.flag("auto_register"),
                "contracts": [self._contract_state(db, row) for row in contracts],
                "confirmed_fingerprints": [row[0] for row in db.execute(
                    "SELECT fingerprint FROM confirmed_keys ORDER BY confirmed_at, fingerprint")],
                "terminals": self._terminals_state(db, numbers),
                "batches": self._batches_state(db, numbers),
                "bindings": self._bindings_state(db, numbers),
                "calls": {name: self.calls[name] for name in API_ENDPOINTS},
                "executed": {name: self.executed[name] for name in API_ENDPOINTS},
                "replayed": {name: self.replayed[name] for name in API_ENDPOINTS},
            }

    def contracts(self) -> list[dict[str, Any]]:
        """Every registered contract with its counts of issued and bound numbers, without certificates or lists."""
        with self.store.transaction() as db:
            issued = {row[0]: row[1] for row in db.execute(
                "SELECT number_key, COUNT(*) FROM terminals GROUP BY number_key")}
            bound = {row[0]: row[1] for row in db.execute(
                "SELECT t.number_key, COUNT(*) FROM bindings b JOIN terminals t USING (terminal_number) "
                "GROUP BY t.number_key")}
            return [{"contract_number": row["contract_number"], "contract_date": row["contract_date"],
                     "agent_inn": row["agent_inn"], "terminal_limit": row["terminal_limit"],
                     "agent_id": row["agent_id"], "activated": row["key_fingerprint"] is not None,
                     "key_fingerprint": row["key_fingerprint"], "activated_at": row["activated_at"],
                     "terminals_issued": issued.get(row["number_key"], 0),
                     "terminals_bound": bound.get(row["number_key"], 0)}
                    for row in db.execute("SELECT * FROM contracts ORDER BY contract_number")]

    def confirmed_keys(self) -> list[dict[str, str]]:
        with self.store.transaction() as db:
            return [{"fingerprint": row["fingerprint"], "confirmed_at": row["confirmed_at"]} for row in db.execute(
                "SELECT fingerprint, confirmed_at FROM confirmed_keys ORDER BY confirmed_at, fingerprint")]

    @staticmethod
    def _contract_state(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        issued = db.execute("SELECT COUNT(*) FROM terminals WHERE number_key = ?", (row["number_key"],)).fetchone()[0]
        return {"contract_number": row["contract_number"], "contract_date": row["contract_date"],
                "agent_inn": row["agent_inn"], "terminal_limit": row["terminal_limit"],
                "agent_id": row["agent_id"], "activated": row["key_fingerprint"] is not None,
                "key_fingerprint": row["key_fingerprint"], "certificate": row["certificate"],
                "activated_at": row["activated_at"], "terminals_issued": issued}

    @staticmethod
    def _terminals_state(db: sqlite3.Connection, numbers: dict[str, str]) -> dict[str, list[str]]:
        terminals: dict[str, list[str]] = {number: [] for number in numbers.values()}
        for row in db.execute("SELECT terminal_number, number_key FROM terminals ORDER BY terminal_number"):
            terminals.setdefault(numbers.get(row["number_key"], row["number_key"]), []).append(row["terminal_number"])
        return terminals

    @staticmethod
    def _batches_state(db: sqlite3.Connection, numbers: dict[str, str]) -> list[dict[str, Any]]:
        return [{"batch_id": row["batch_id"], "contract_number": numbers.get(row["number_key"], row["number_key"]),
                 "request_id": row["request_id"], "requested": row["requested"], "issued": row["issued"],
                 "issued_at": row["issued_at"]}
                for row in db.execute("SELECT * FROM batches ORDER BY batch_id")]

    @staticmethod
    def _bindings_state(db: sqlite3.Connection, numbers: dict[str, str]) -> list[dict[str, Any]]:
        rows = db.execute("SELECT b.*, t.number_key FROM bindings b JOIN terminals t USING (terminal_number) "
                          "ORDER BY b.terminal_number")
        return [{"terminal_number": row["terminal_number"],
                 "contract_number": numbers.get(row["number_key"], row["number_key"]),
                 "store_code": row["store_code"], "cash_number": row["cash_number"],
                 "serial_number": row["serial_number"], "address": row["address"], "bound_at": row["bound_at"]}
                for row in rows]


def binding_fields(data: dict) -> dict[str, Any]:
    """Body of §1.3 beyond contract_number."""
    return {
        "store_code": string_field(data, "store_code", DIGITS_RE, "a string of digits"),
        "cash_number": int_field(data, "cash_number", 1, 9999),
        "serial_number": optional_string(data, "serial_number"),
        "address": optional_string(data, "address"),
    }


# ---------------------------------------------------------------------------
# The Flask app: §1 API and §4 control interface.
# ---------------------------------------------------------------------------


def create_stoloto_app(stand: StolotoStand) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    install_error_handlers(app)
    install_request_hooks(app, stand)
    add_api_routes(app, stand)
    add_control_routes(app, stand)
    return app


def install_request_hooks(app: Flask, stand: StolotoStand) -> None:
    """Count API calls, apply pending faults first of all, log one line per request."""

    @app.before_request
    def _faults() -> Response | None:
        endpoint = request.endpoint
        if endpoint not in API_ENDPOINTS:
            return None
        stand.backend.calls[endpoint] += 1
        if stand.latency_ms:  # a remote Stoloto: every §1 call takes this long, faults included
            time.sleep(stand.latency_ms / 1000)
        fault = stand.faults.take(endpoint)
        if fault is None:
            return None
        g.fault = fault["kind"]
        if fault["kind"] == "drop":
            log.info("%s %s -> connection dropped (fault)", request.method, request.path)
        if fault["kind"] == "certificate":
            return json_response(200, stand.backend.wrong_activation(fault["variant"]))
        return apply_fault(fault, lambda: stand.running)

    @app.after_request
    def _hold_answer(response: Response) -> Response:
        if g.get("delay_after"):
            time.sleep(g.delay_after)
        return response

    @app.after_request
    def _log_line(response: Response) -> Response:
        if not log.isEnabledFor(logging.INFO):
            return response
        notes = []
        if request.headers.get("X-Request-Id"):
            notes.append(f"request-id={request.headers['X-Request-Id']}")
        if g.get("fault"):
            notes.append(f"fault={g.fault}")
        if g.get("replayed"):
            notes.append("replayed")
        log.info("%s %s -> %s%s", request.method, request.path, response.status_code,
                 "".join(f" {note}" for note in notes))
        return response


def add_api_routes(app: Flask, stand: StolotoStand) -> None:
    backend = stand.backend

    def authenticated_contract() -> str | None:
        """Over TLS the client certificate decides; over plain HTTP (tests only) nobody is checked here."""
        if not stand.tls:
            return None
        return backend.contract_by_certificate(request.environ.get("stand.peer_cert"))

    @app.post("/api/v1/contracts/activate")
    def activate() -> Response:
        request_id = request_id_header()
        return backend.idempotent("activate", f"activate|{request_id}",
                                  lambda: backend.activate(read_json_object()))

    @app.post("/api/v1/terminals/batches")
    def batches() -> Response:
        request_id = request_id_header()
        cert_contract = authenticated_contract()

        def work() -> tuple[int, dict]:
            data = read_json_object()
            number = string_field(data, "contract_number")
            count = int_field(data, "count", 1, MAX_BATCH)
            return backend.issue_batch(backend.caller_contract(number, cert_contract), count, request_id)

        return backend.idempotent("batches", f"batches|{cert_contract or ''}|{request_id}", work)

    @app.post("/api/v1/terminals/<terminal_number>/registration")
    def registration(terminal_number: str) -> Response:
        request_id = request_id_header()
        cert_contract = authenticated_contract()

        def work() -> tuple[int, dict]:
            data = read_json_object()
            number = string_field(data, "contract_number")
            binding = binding_fields(data)
            contract = backend.caller_contract(number, cert_contract)
            return backend.register_terminal(contract, terminal_number, binding)

        key = f"registration|{terminal_number}|{cert_contract or ''}|{request_id}"
        return backend.idempotent("registration", key, work)


def add_control_routes(app: Flask, stand: StolotoStand) -> None:
    backend = stand.backend

    @app.post("/control/contracts")
    def control_contracts() -> Response:
        status, body = backend.register_contract(read_json_object())
        return json_response(status, body)

    @app.get("/control/contracts")
    def control_list_contracts() -> Response:
        return json_response(200, {"contracts": backend.contracts()})

    @app.get("/control/keys")
    def control_list_keys() -> Response:
        return json_response(200, {"keys": backend.confirmed_keys()})

    @app.post("/control/keys/confirm")
    def control_confirm_key() -> Response:
        fingerprint = normalize_fingerprint(read_json_object().get("fingerprint"))
        backend.confirm_key(fingerprint)
        return json_response(200, {"fingerprint": fingerprint, "confirmed": True})

    @app.post("/control/auto-confirm")
    def control_auto_confirm() -> Response:
        backend.set_flag("auto_confirm", enabled_field(read_json_object()))
        return json_response(200, {"auto_confirm": backend.flag("auto_confirm")})

    @app.post("/control/auto-register")
    def control_auto_register() -> Response:
        backend.set_flag("auto_register", enabled_field(read_json_object()))
        return json_response(200, {"auto_register": backend.flag("auto_register")})

    def parse_stand_fault(data: dict) -> dict[str, Any]:
        fault = parse_fault(data, FAULT_KINDS, API_ENDPOINTS)
        if fault["kind"] == "drop" and stand.keep_alive:
            raise invalid("the 'drop' fault needs the werkzeug server (start the stand without --keep-alive)",
                          ["kind"])
        if fault["kind"] == "certificate":
            if fault["endpoint"] != "activate":
                raise invalid("the 'certificate' fault answers 'activate' only", ["endpoint"])
            fault["variant"] = data.get("variant", "other_key")
            if fault["variant"] not in CERTIFICATE_VARIANTS:
                raise invalid(f"'variant' must be one of: {', '.join(CERTIFICATE_VARIANTS)}", ["variant"])
        return fault

    add_fault_routes(app, stand.faults, parse_stand_fault)

    @app.post("/control/latency")
    def control_latency() -> Response:
        stand.latency_ms = int_field(read_json_object(), "ms", 0, MAX_LATENCY_MS)
        return json_response(200, {"latency_ms": stand.latency_ms})

    @app.get("/control/state")
    def control_state() -> Response:
        return json_response(200, {**backend.state(), "tls": stand.tls, "latency_ms": stand.latency_ms,
                                   "faults": stand.faults.pending()})

    @app.post("/control/reset")
    def control_reset() -> Response:
        stand.reset()
        return json_response(200, {"status": "RESET"})

    @app.get("/control/ca")
    def control_ca() -> Response:
        return Response(backend.pki.ca_pem, content_type="application/x-pem-file")


def enabled_field(data: dict) -> bool:
    value = data.get("enabled")
    if not isinstance(value, bool):
        raise invalid("'enabled' must be true or false", ["enabled"])
    return value


# ---------------------------------------------------------------------------
# The stand object and its CLI.
# ---------------------------------------------------------------------------


class ServedStand:
    """What both stands share: a server in `_server`, its address, and use as a context manager."""

    _server: BackgroundServer

    @property
    def url(self) -> str:
        return self._server.url()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self) -> ServedStand:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> ServedStand:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


class StolotoStand(ServedStand):
    """The Stoloto test stand: `StolotoStand(data_dir).start()`, then SIS talks to `url` trusting `ca_path`."""

    def __init__(self, data_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 0, tls: bool = True,
                 auto_confirm: bool | None = None, auto_register: bool | None = None,
                 keep_alive: bool = False, latency_ms: int = 0) -> None:
        self.data_dir = Path(data_dir)
        # Added to every §1 answer, so a benchmark or the demo plays a remote Stoloto; reset returns to it.
        self.latency_ms = self._initial_latency_ms = latency_ms
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.host = host
        self.tls = tls
        self.pki = StandPki(self.data_dir, server_names_for(host))
        self.store = StandStore(self.data_dir / "stoloto.sqlite3")
        self.store.open()
        self.backend = StolotoBackend(self.store, self.pki)
        self.faults = FaultQueue()
        # None keeps the mode remembered in the data dir; reset returns to what was asked here.
        self._initial_flags = {"auto_confirm": auto_confirm, "auto_register": auto_register}
        self._apply_initial_flags()
        self.app = create_stoloto_app(self)
        context = self.pki.server_context() if tls else None
        # keep_alive: cheroot, connections reused (benchmarks); default: werkzeug, every fault available.
        self.keep_alive = keep_alive
        self._server = (KeepAliveServer(self.app, host, port, context, self.pki.server_cert_path,
                                        self.pki.server_key_path)
                        if keep_alive else BackgroundServer(self.app, host, port, context))

    def _apply_initial_flags(self) -> None:
        for name, value in self._initial_flags.items():
            if value is not None:
                self.backend.set_flag(name, value)

    @property
    def ca_path(self) -> str:
        """The CA bundle SIS must trust for this stand (also the issuer of client certificates)."""
        return str(self.pki.ca_path)

    def start(self) -> StolotoStand:
        """Serve on a background daemon thread; a restarted object keeps its port."""
        self.store.open()
        self._server.start(name=f"stoloto-stand-{self._server.port}")
        log.info("Stoloto stand at %s (CA %s)", self.url, self.ca_path)
        return self

    def stop(self) -> None:
        self._server.stop()
        self.store.close()

    def serve_forever(self) -> None:
        """Serve in the foreground until Ctrl-C (the CLI)."""
        self.store.open()
        self._server.bind()
        print(f"Stoloto stand: {self.url}", flush=True)
        print(f"CA bundle: {self.ca_path}", flush=True)
        try:
            self._server.serve_forever()
        finally:
            self.store.close()

    def reset(self) -> None:
        """Forget contracts, keys, terminals, bindings and faults; the CA and number sequences stay."""
        self.backend.reset()
        self.faults.clear()
        self.latency_ms = self._initial_latency_ms
        for name in self._initial_flags:
            self.backend.set_flag(name, bool(self._initial_flags[name]))


def configure_cli(quiet: bool = False) -> None:
    """Log to stderr and stop cleanly on SIGTERM (docker stop) as on Ctrl-C."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stoloto test stand (docs/protocols.md §1, §4).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--data-dir", default="instance/stands/stoloto")
    parser.add_argument("--auto-confirm", action="store_true", default=None,
                        help="confirm every new key on activation, as if Appendix 5 was processed")
    parser.add_argument("--auto-register", action="store_true", default=None,
                        help="register an unknown contract on its first activation")
    parser.add_argument("--keep-alive", action="store_true",
                        help="serve with cheroot: connections stay open between calls (no 'drop' fault)")
    parser.add_argument("--no-tls", dest="tls", action="store_false",
                        help="plain HTTP, the body's contract_number is trusted (tests only)")
    parser.add_argument("--quiet", action="store_true", help="no line per request (benchmarks)")
    parser.add_argument("--latency-ms", type=_latency, default=0, metavar="MS",
                        help=f"answer every §1 call after MS milliseconds (0–{MAX_LATENCY_MS}), as a remote Stoloto")
    args = parser.parse_args(argv)
    configure_cli(args.quiet)
    StolotoStand(args.data_dir, host=args.host, port=args.port, tls=args.tls, auto_confirm=args.auto_confirm,
                 auto_register=args.auto_register, keep_alive=args.keep_alive,
                 latency_ms=args.latency_ms).serve_forever()


def _latency(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_LATENCY_MS:
        raise argparse.ArgumentTypeError(f"an integer from 0 to {MAX_LATENCY_MS}")
    return value


if __name__ == "__main__":
    main()
