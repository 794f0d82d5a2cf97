"""The cash-register API refuses what the database cannot hold with 4xx, never 500, and changes nothing."""
import http.client
import threading

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, RegistrationAttempt, Store
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import TOKEN, URL

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERIAL = "SN-1"


@pytest.fixture
def client(app):
    """An API client; store 101 is bound to a contract that is not active yet, register 101/1 is recorded."""
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        contract = contracts.create_contract(ContractInput(number="BAD-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        db.session.add(Store(code="101", contract_id=contract.id, source="manual"))
        db.session.commit()
    client = app.test_client()
    recorded = client.post(URL, json={"store_code": "101", "cash_number": 1, "serial_number": SERIAL}, headers=AUTH)
    assert recorded.status_code == 202, recorded.json
    return client


def rows(app) -> tuple:
    """Everything a registration may change."""
    with app.app_context():
        registers = db.session.execute(select(CashRegister.cash_number, CashRegister.serial_number,
                                              CashRegister.fiscal_number, CashRegister.cash_type)).all()
        counts = [db.session.scalar(select(func.count()).select_from(model))
                  for model in (RegistrationAttempt, AuditEvent)]
        return sorted(registers), counts


def post_raw(client, raw: bytes):
    return client.post(URL, data=raw, content_type="application/json", headers=AUTH)


@pytest.mark.parametrize("field", ["serial_number", "fiscal_number", "cash_type"])
@pytest.mark.parametrize("cash_number", [1, 2], ids=["known register", "new register"])
def test_nul_byte_in_a_text_field_is_a_validation_error_and_changes_nothing(app, client, field, cash_number):
    before = rows(app)
    response = client.post(URL, json={"store_code": "101", "cash_number": cash_number, field: "AB\u0000CD"},
                           headers=AUTH)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert response.json["error"]["fields"] == [field]
    assert "нулевой байт" in response.json["error"]["message"]
    assert rows(app) == before


@pytest.mark.parametrize("store_code", ["\u0000", "101\u0000", "\u0000101"])
def test_nul_byte_in_the_store_code_is_a_validation_error(app, client, store_code):
    before = rows(app)
    response = client.post(URL, json={"store_code": store_code, "cash_number": 1}, headers=AUTH)
    assert response.status_code == 400
    assert response.json["error"]["fields"] == ["store_code"]
    assert rows(app) == before


@pytest.mark.parametrize("field", ["serial_number", "fiscal_number", "cash_type"])
def test_lone_surrogate_is_a_validation_error_and_changes_nothing(app, client, field):
    before = rows(app)
    raw = f'{{"store_code": "101", "cash_number": 2, "{field}": "A\\ud800B"}}'.encode()
    response = post_raw(client, raw)
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert response.json["error"]["fields"] == [field]
    assert rows(app) == before


@pytest.mark.parametrize("raw", [b"[" * 1000, b"[" * 1000 + b"]" * 1000, b'{"a": ' * 1000 + b"1" + b"}" * 1000,
                                 b"[" * 30000],
                         ids=["open lists", "closed lists", "objects", "thirty thousand"])
def test_deeply_nested_json_is_a_validation_error(app, client, raw):
    before = rows(app)
    response = post_raw(client, raw)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "VALIDATION_ERROR"
    assert rows(app) == before


@pytest.mark.parametrize("path", [
    "101/2147483648", "101/9223372036854775808", "101/" + "9" * 25, "101/" + "9" * 5000, "101/0", "101/10000",
    "2147483648" + "9" * 20 + "/1", "1" * 17 + "/1", "%00/1", "101/%00", "101/-1", "101/1.0", "101/%D9%A1",
])
def test_get_with_parameters_out_of_range_is_a_validation_error(client, path):
    response = client.get(f"/api/v1/cash-registers/{path}", headers=AUTH)
    assert response.status_code == 400, (path, response.status_code, response.get_data(as_text=True)[:200])
    assert response.json["error"]["code"] == "VALIDATION_ERROR"


def test_get_of_a_sixteen_digit_store_code_is_not_found(client):
    response = client.get("/api/v1/cash-registers/" + "9" * 16 + "/9999", headers=AUTH)
    assert response.status_code == 404 and response.json["error"]["code"] == "CASH_REGISTER_UNKNOWN"


def test_get_of_the_recorded_register_still_answers(client):
    response = client.get("/api/v1/cash-registers/101/1", headers=AUTH)
    assert response.status_code == 200 and response.json["status"] == "PENDING"


# --- 405 and 413 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, allowed", [
    ("GET", URL, {"OPTIONS", "POST"}),
    ("DELETE", "/api/v1/cash-registers/101/1", {"GET", "HEAD", "OPTIONS"}),
    ("POST", "/api/v1/openapi.json", {"GET", "HEAD", "OPTIONS"}),
])
def test_api_405_carries_an_allow_header(client, method, path, allowed):
    response = client.open(path, method=method, headers=AUTH)
    assert response.status_code == 405
    assert response.json["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert set(response.headers["Allow"].split(", ")) == allowed


@pytest.fixture
def served(app, client):
    """SIS on werkzeug's threaded server (as `make run` serves it): chunked bodies arrive as they do in production."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.port
    server.shutdown()
    thread.join(10)


def post_chunked(port: int, body: bytes, chunk: int = 8192) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        pieces = (body[start:start + chunk] for start in range(0, len(body), chunk))
        connection.request("POST", URL, body=pieces, encode_chunked=True,
                           headers={**AUTH, "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def padded(size: int) -> bytes:
    """A valid registration of exactly `size` bytes: trailing blanks are still JSON."""
    body = b'{"store_code": "101", "cash_number": 1}'
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("size", [64 * 1024 + 1, 70_000, 1024 * 1024])
def test_chunked_body_over_the_limit_is_413_like_a_sized_one(app, served, client, size):
    before = rows(app)
    status, answer = post_chunked(served, padded(size))
    assert status == 413, answer[:300]
    assert b"PAYLOAD_TOO_LARGE" in answer
    sized = client.post(URL, data=padded(size), content_type="application/json", headers=AUTH)
    assert sized.status_code == 413 and sized.json["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert rows(app) == before


def test_chunked_body_of_exactly_the_limit_is_read(served):
    status, answer = post_chunked(served, padded(64 * 1024))
    assert status == 202, answer[:300]
