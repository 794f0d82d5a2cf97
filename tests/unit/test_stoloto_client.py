"""The Stoloto client maps every answer to one typed outcome (HTTP mocked with `responses`)."""
import json

import pytest
import requests
import responses

from stoloto.clients import stoloto as stoloto_client
from stoloto.clients.stoloto import ClientCertificate, Kind, StolotoClient

BASE = "https://stoloto.test"
ACTIVATE = BASE + "/api/v1/contracts/activate"
BATCHES = BASE + "/api/v1/terminals/batches"


def client():
    return StolotoClient(BASE, connect_timeout=1, read_timeout=1)


def activate():
    return client().activate("11111111-1111-4111-8111-111111111111", "СТ-1", "2026-01-15", "7707083893", "csr")


def error(status, code, **extra):
    return {"status": status, "json": {"error": {"code": code, "message": f"текст {code}", **extra}}}


@responses.activate
def test_success_carries_the_certificate_and_the_request_id():
    responses.post(ACTIVATE, json={"status": "ACTIVATED", "agent_id": "A-1", "certificate": "C",
                                   "ca_certificate": "CA"})
    outcome = activate()
    assert outcome.kind is Kind.SUCCESS and outcome.data["certificate"] == "C"
    sent = responses.calls[0].request
    assert sent.headers["X-Request-Id"] == "11111111-1111-4111-8111-111111111111"
    assert sent.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("answer, kind, code, answered", [
    (error(404, "CONTRACT_NOT_FOUND"), Kind.REQUISITES, "CONTRACT_NOT_FOUND", True),
    (error(422, "CONTRACT_DATA_MISMATCH", fields=["contract_date"]), Kind.REQUISITES, "CONTRACT_DATA_MISMATCH", True),
    (error(409, "KEY_NOT_REGISTERED"), Kind.REFUSED, "KEY_NOT_REGISTERED", True),
    (error(409, "KEY_MISMATCH"), Kind.FAILURE, "KEY_MISMATCH", True),
    (error(400, "VALIDATION_ERROR"), Kind.FAILURE, "VALIDATION_ERROR", True),
    (error(401, "UNAUTHORIZED"), Kind.FAILURE, "UNAUTHORIZED", True),
    (error(500, "INTERNAL"), Kind.FAILURE, "INTERNAL", False),
    ({"status": 502, "body": "<html><body>Bad Gateway</body></html>", "content_type": "text/html"},
     Kind.FAILURE, "HTTP_502", False),
    ({"status": 503, "body": ""}, Kind.FAILURE, "HTTP_503", False),
    ({"status": 200, "body": "{not json"}, Kind.FAILURE, "BAD_RESPONSE", False),
    ({"status": 200, "json": ["a list"]}, Kind.FAILURE, "BAD_RESPONSE", False),
    ({"status": 200, "json": {"status": "ACTIVATED"}}, Kind.FAILURE, "BAD_RESPONSE", False),
    ({"status": 418, "json": {"unexpected": True}}, Kind.FAILURE, "BAD_RESPONSE", False),
    ({"status": 302, "headers": {"Location": "https://elsewhere.test/"}}, Kind.FAILURE, "BAD_RESPONSE", False),
])
@responses.activate
def test_every_status_and_code_maps_to_one_kind(answer, kind, code, answered):
    responses.post(ACTIVATE, **answer)
    outcome = activate()
    assert (outcome.kind, outcome.code, outcome.answered) == (kind, code, answered)
    assert len(responses.calls) == 1  # never follows a redirect, never repeats an answered call


@responses.activate
def test_requisites_error_lists_the_fields():
    responses.post(ACTIVATE, **error(422, "CONTRACT_DATA_MISMATCH", fields=["contract_date", "agent_inn"]))
    outcome = activate()
    assert outcome.fields == ["contract_date", "agent_inn"] and outcome.message == "текст CONTRACT_DATA_MISMATCH"


@pytest.mark.parametrize("exception, code", [
    (requests.exceptions.ReadTimeout(), "TIMEOUT"),
    (requests.exceptions.ConnectionError("reset"), "CONNECTION"),
    (requests.exceptions.SSLError("bad cert"), "TLS"),
])
@responses.activate
def test_no_answer_is_a_failure_whose_outcome_is_unknown(exception, code):
    responses.post(ACTIVATE, body=exception)
    outcome = activate()
    assert (outcome.kind, outcome.code, outcome.answered) == (Kind.FAILURE, code, False)


@pytest.mark.parametrize("base", ["https://[bad", "stoloto.test", "https://"])
def test_an_address_requests_cannot_use_is_a_failure_not_an_exception(base):
    outcome = StolotoClient(base).activate("11111111-1111-4111-8111-111111111111", "СТ-1", "2026-01-15",
                                           "7707083893", "csr")
    assert (outcome.kind, outcome.code, outcome.answered) == (Kind.FAILURE, "CONNECTION", False)


@responses.activate
def test_the_body_is_the_json_of_the_payload_and_its_length_is_sent():
    responses.post(BATCHES, status=201, json={"batch_id": "B-1", "terminals": ["0100001"]})
    client().request_batch("22222222-2222-4222-8222-222222222222", "СТ-«1»", 1)
    sent = responses.calls[0].request
    assert sent.url == BATCHES and sent.method == "POST"
    assert json.loads(sent.body) == {"contract_number": "СТ-«1»", "count": 1}
    assert sent.headers["Content-Length"] == str(len(sent.body))


@pytest.mark.parametrize("body, ok", [
    ({"batch_id": "B-1", "terminals": ["0100001", "0100002"]}, True),
    ({"batch_id": "B-1", "terminals": []}, False),
    ({"batch_id": "B-1", "terminals": ["01A"]}, False),
    ({"batch_id": "B-1", "terminals": [100001]}, False),
    ({"batch_id": "B-1", "terminals": ["1", "1"]}, False),
    ({"batch_id": "B-1", "terminals": ["1", "2", "3"]}, False),  # more than asked for
    ({"batch_id": "B-1"}, False),
])
@responses.activate
def test_batch_answer_is_checked(body, ok):
    responses.post(BATCHES, status=201, json=body)
    outcome = client().request_batch("22222222-2222-4222-8222-222222222222", "СТ-1", 2)
    assert outcome.ok is ok
    assert responses.calls[0].request.headers["X-Request-Id"] == "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize("status, code, kind", [
    (409, "TERMINAL_LIMIT_EXCEEDED", Kind.REFUSED),
    (409, "CONTRACT_NOT_ACTIVATED", Kind.FAILURE),
    (401, "UNAUTHORIZED", Kind.FAILURE),
    (400, "VALIDATION_ERROR", Kind.FAILURE),
])
@responses.activate
def test_batch_errors(status, code, kind):
    responses.post(BATCHES, **error(status, code))
    outcome = client().request_batch("22222222-2222-4222-8222-222222222222", "СТ-1", 2)
    assert (outcome.kind, outcome.code, outcome.answered) == (kind, code, True)


@responses.activate
def test_registration_requires_registered_status():
    url = BASE + "/api/v1/terminals/0100001/registration"
    responses.post(url, json={"terminal_number": "0100001", "status": "REGISTERED"})
    assert client().register_terminal("33333333-3333-4333-8333-333333333333", "0100001",
                                      {"contract_number": "1", "store_code": "101", "cash_number": 1}).ok
    responses.replace(responses.POST, url, json={"terminal_number": "0100001", "status": "WHATEVER"})
    assert not client().register_terminal("33333333-3333-4333-8333-333333333333", "0100001",
                                          {"contract_number": "1", "store_code": "101", "cash_number": 1}).ok


def test_client_key_file_exists_only_while_the_tls_context_loads_it():
    import os

    from stoloto.clients import stoloto as module
    cert = ClientCertificate("certificate", b"private key")
    with module._certificate_files(cert) as (cert_path, key_path):
        assert os.stat(key_path).st_mode & 0o777 == 0o600
        assert open(key_path, "rb").read() == b"private key"
    assert not os.path.exists(key_path) and not os.path.exists(os.path.dirname(key_path))


@responses.activate
def test_after_an_unanswered_call_callers_hold_off_then_one_tries_again(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(stoloto_client, "_clock", lambda: now[0])
    api = client()
    assert not api.should_hold_off()
    responses.post(BATCHES, status=503, body="")
    assert api.request_batch("11111111-1111-4111-8111-111111111111", "СТ-1", 5).code == "HTTP_503"
    assert api.should_hold_off() and api.should_hold_off()
    now[0] += stoloto_client.HOLD_OFF_SECONDS
    assert not api.should_hold_off()  # time is up: this caller tries…
    assert api.should_hold_off()      # …and the others keep holding off until its answer comes
    responses.replace(responses.POST, BATCHES, **error(409, "TERMINAL_LIMIT_EXCEEDED"))
    assert api.request_batch("22222222-2222-4222-8222-222222222222", "СТ-1", 5).answered
    assert not api.should_hold_off()  # any answer, even a refusal, ends the hold-off
