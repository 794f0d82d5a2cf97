"""The Stoloto stand's Flask app: the §1 API and the §4.1 control interface over a StolotoStand."""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request

from ..server import (
    add_fault_routes,
    apply_fault,
    install_error_handlers,
    int_field,
    invalid,
    json_response,
    parse_fault,
    read_json_object,
)
from .pki import normalize_fingerprint
from .protocol import (
    API_ENDPOINTS,
    CERTIFICATE_VARIANTS,
    ERROR_STATUSES,
    FAULT_KINDS,
    MAX_BATCH,
    MAX_CERT_VALIDITY_MINUTES,
    binding_fields,
    request_id_header,
    string_field,
)

if TYPE_CHECKING:
    from .stand import StolotoStand

log = logging.getLogger(__name__)

MAX_LATENCY_MS = 60_000  # the stand's --latency-ms and POST /control/latency
# POST /control/clock: ten years either way; back, to issue certificates already expired by the real clock.
MAX_CLOCK_OFFSET_SECONDS = 3650 * 86400


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
            return json_response(200, stand.backend.wrong_certificate(endpoint, fault["variant"]))
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

    @app.post("/api/v1/certificates/renew")
    def renew() -> Response:
        request_id = request_id_header()
        cert_contract = authenticated_contract()

        def work() -> tuple[int, dict]:
            data = read_json_object()
            number = string_field(data, "contract_number")
            csr_pem = string_field(data, "csr", what="a PEM certificate request")
            return backend.renew_certificate(backend.caller_contract(number, cert_contract), csr_pem)

        return backend.idempotent("renew", f"renew|{cert_contract or ''}|{request_id}", work)


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
        fault = parse_fault(data, FAULT_KINDS, API_ENDPOINTS, ERROR_STATUSES)
        if fault["kind"] == "drop" and stand.keep_alive:
            raise invalid("the 'drop' fault needs the werkzeug server (start the stand without --keep-alive)",
                          ["kind"])
        if fault["kind"] == "certificate":
            if fault["endpoint"] not in ("activate", "renew"):
                raise invalid("the 'certificate' fault answers 'activate' or 'renew' only", ["endpoint"])
            fault["variant"] = data.get("variant", "other_key")
            if fault["variant"] not in CERTIFICATE_VARIANTS:
                raise invalid(f"'variant' must be one of: {', '.join(CERTIFICATE_VARIANTS)}", ["variant"])
        return fault

    add_fault_routes(app, stand.faults, parse_stand_fault)

    @app.post("/control/latency")
    def control_latency() -> Response:
        stand.latency_ms = int_field(read_json_object(), "ms", 0, MAX_LATENCY_MS)
        return json_response(200, {"latency_ms": stand.latency_ms})

    @app.post("/control/certificate-validity")
    def control_certificate_validity() -> Response:
        backend.cert_validity_minutes = int_field(read_json_object(), "minutes", 1, MAX_CERT_VALIDITY_MINUTES)
        return json_response(200, {"certificate_validity_minutes": backend.cert_validity_minutes})

    @app.post("/control/clock")
    def control_clock() -> Response:
        seconds = int_field(read_json_object(), "offset_seconds", -MAX_CLOCK_OFFSET_SECONDS, MAX_CLOCK_OFFSET_SECONDS)
        backend.clock.offset = dt.timedelta(seconds=seconds)
        return json_response(200, backend.clock_state())

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
