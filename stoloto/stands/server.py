"""HTTP plumbing both test stands share: JSON errors, injected faults, the werkzeug and cheroot servers."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

log = logging.getLogger(__name__)

GARBAGE_BODY = b"<<stand fault: this is not JSON>> {\"status\": "
HTML_502_BODY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)



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


def parse_fault(data: dict, kinds: tuple[str, ...], endpoints: tuple[str, ...],
                error_statuses: dict[str, int] | None = None) -> dict[str, Any]:
    """Validate a POST /control/faults body into a pending fault; "error" answers one of `error_statuses`."""
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
        fault.update(_error_fault_fields(data, error_statuses or {}))
    return fault


def _code_field(data: dict) -> str | None:
    code = data.get("code")
    if code is not None and (not isinstance(code, str) or not code.strip()):
        raise invalid("'code' must be a non-empty string", ["code"])
    return code


def _error_fault_fields(data: dict, error_statuses: dict[str, int]) -> dict[str, Any]:
    """The "error" kind answers an error code of the stand's protocol with its status (overridable)."""
    code = data.get("code")
    if code not in error_statuses:
        raise invalid(f"'code' must be one of: {', '.join(error_statuses)}", ["code"])
    fields: dict[str, Any] = {"code": code,
                              "status": int_field(data, "status", 200, 599, default=error_statuses[code])}
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


def configure_cli(quiet: bool = False) -> None:
    """Log to stderr and stop cleanly on SIGTERM (docker stop) as on Ctrl-C."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt

