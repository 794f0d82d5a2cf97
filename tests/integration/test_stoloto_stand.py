"""Integration tests of the Stoloto test stand over real HTTPS with mutual TLS (docs/protocols.md §1, §4)."""

from __future__ import annotations

import base64
import datetime as dt
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from stoloto.stands.stoloto_stand import StolotoStand, spki_fingerprint
from tests.stand_fixtures import (
    CONTRACT,
    OTHER_CONTRACT,
    AgentKey,
    activate,
    activated_agent,
    batch,
    bind,
    control,
    error_code,
    new_id,
    post,
    register,
    state,
)


@pytest.fixture
def stand(stand_process):
    """The stand itself (here it is what the tests drive), not SIS's control of it."""
    return stand_process


# -- PKI and transport ---------------------------------------------------------


def test_pki_is_created_private_and_trusted(stand, tmp_path):
    data_dir = tmp_path / "stand"
    for name in ("ca.key", "server.key"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    server = x509.load_pem_x509_certificate((data_dir / "server.pem").read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert stand.url.startswith("https://127.0.0.1:")
    assert stand.ca_path == str(data_dir / "ca.pem")
    # The same CA works for the host name too.
    localhost_url = f"https://localhost:{stand.port}/control/state"
    assert requests.get(localhost_url, verify=stand.ca_path, timeout=5).status_code == 200


def test_unknown_path_answers_json_error(stand):
    response = requests.get(stand.url + "/api/v1/nothing", verify=stand.ca_path, timeout=5)
    assert response.status_code == 404
    assert error_code(response) == "NOT_FOUND"


# -- §1.1 activation -----------------------------------------------------------


def test_activate_happy_path(stand, tmp_path):
    register(stand)
    agent = AgentKey(tmp_path, CONTRACT)
    control(stand, "keys/confirm", {"fingerprint": agent.fingerprint})
    response = activate(stand, agent)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "ACTIVATED"
    assert body["agent_id"].startswith("A-") and body["agent_id"][2:].isdigit()
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    assert spki_fingerprint(cert.public_key()) == agent.fingerprint
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "СТ-2026/001"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > dt.timedelta(days=360)
    assert body["ca_certificate"] == Path(stand.ca_path).read_text()
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(body["ca_certificate"].encode()))
    contract = state(stand)["contracts"][0]
    assert contract["activated"] and contract["key_fingerprint"] == agent.fingerprint


def test_reactivation_same_key_same_certificate_other_key_mismatch(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    again = activate(stand, agent)
    assert again.status_code == 200
    assert again.json()["certificate"] == agent.cert_path.read_text()
    # Another key Stoloto has not registered (re-keying with a confirmed one: test_stoloto_stand_renewal.py).
    other = AgentKey(tmp_path, CONTRACT, "other")
    refused = activate(stand, other)
    assert refused.status_code == 409
    assert error_code(refused) == "KEY_MISMATCH"


def test_activate_unknown_contract(stand, tmp_path):
    response = activate(stand, AgentKey(tmp_path, CONTRACT))
    assert response.status_code == 404
    assert error_code(response) == "CONTRACT_NOT_FOUND"
    assert set(response.json()["error"]) >= {"code", "message"}


@pytest.mark.parametrize("changes, fields", [
    ({"contract_date": "2026-01-16"}, ["contract_date"]),
    ({"agent_inn": "7736207543"}, ["agent_inn"]),
    ({"contract_date": "2025-12-31", "agent_inn": "7736207543"}, ["contract_date", "agent_inn"]),
    ({"contract_number": "ст-2026/001"}, ["contract_number"]),
])
def test_activate_requisites_mismatch(stand, tmp_path, changes, fields):
    register(stand)
    agent = AgentKey(tmp_path, CONTRACT)
    control(stand, "keys/confirm", {"fingerprint": agent.fingerprint})
    response = activate(stand, agent, **changes)
    assert response.status_code == 422
    assert error_code(response) == "CONTRACT_DATA_MISMATCH"
    assert response.json()["error"]["fields"] == fields


def test_key_not_registered_until_operator_confirms(stand, tmp_path):
    register(stand)
    agent = AgentKey(tmp_path, CONTRACT)
    request_id = new_id()
    refused = activate(stand, agent, request_id=request_id)
    assert refused.status_code == 409
    assert error_code(refused) == "KEY_NOT_REGISTERED"
    # The operator types the fingerprint from Appendix 5: upper case, colon-separated.
    typed = ":".join(agent.fingerprint[i:i + 2] for i in range(0, 64, 2)).upper()
    confirmed = control(stand, "keys/confirm", {"fingerprint": typed})
    assert confirmed.json() == {"fingerprint": agent.fingerprint, "confirmed": True}
    # A refusal is not stored: retrying with the same request id now succeeds.
    assert activate(stand, agent, request_id=request_id).status_code == 200
    assert state(stand)["confirmed_fingerprints"] == [agent.fingerprint]


def test_auto_confirm_mode(stand, tmp_path):
    register(stand)
    assert control(stand, "auto-confirm", {"enabled": True}).json() == {"auto_confirm": True}
    agent = AgentKey(tmp_path, CONTRACT)
    assert activate(stand, agent).status_code == 200
    assert agent.fingerprint in state(stand)["confirmed_fingerprints"]


def test_auto_register_mode(stand, tmp_path):
    control(stand, "auto-confirm", {"enabled": True})
    control(stand, "auto-register", {"enabled": True})
    assert activate(stand, AgentKey(tmp_path, CONTRACT)).status_code == 200
    assert state(stand)["contracts"][0]["contract_number"] == CONTRACT["contract_number"]


def tampered_csr(agent: AgentKey) -> str:
    """The agent's CSR with one signature byte changed: still parses, signature invalid."""
    der = bytearray(x509.load_pem_x509_csr(agent.csr_pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    lines = base64.encodebytes(bytes(der)).decode().replace("\n", "")
    body = "\n".join(lines[i:i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"


BAD_ACTIVATIONS = [
    {"contract_number": ""},
    {"contract_number": None},
    {"contract_date": "15.01.2026"},
    {"contract_date": "2026-02-30"},
    {"agent_inn": "12345"},
    {"agent_inn": 7707083893},
    {"csr": ""},
    {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgY3Ny\n-----END CERTIFICATE REQUEST-----\n"},
]


def test_activate_validation_errors(stand, tmp_path):
    register(stand)
    agent = AgentKey(tmp_path, CONTRACT)
    control(stand, "keys/confirm", {"fingerprint": agent.fingerprint})
    for changes in BAD_ACTIVATIONS + [{"csr": tampered_csr(agent)}]:
        response = activate(stand, agent, **changes)
        assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR"), changes
    assert not state(stand)["contracts"][0]["activated"]


@pytest.mark.parametrize("headers", [{}, {"X-Request-Id": "not-a-uuid"}, {"X-Request-Id": ""}])
def test_request_id_is_required(stand, tmp_path, headers):
    register(stand)
    agent = AgentKey(tmp_path, CONTRACT)
    response = post(stand, "/api/v1/contracts/activate", {**CONTRACT, "csr": agent.csr_pem}, headers=headers)
    assert response.status_code == 400
    assert error_code(response) == "VALIDATION_ERROR"


def test_non_json_body_is_a_validation_error(stand):
    response = requests.post(stand.url + "/api/v1/contracts/activate", data=b"{oops",
                             headers={"X-Request-Id": new_id(), "Content-Type": "application/json"},
                             verify=stand.ca_path, timeout=5)
    assert response.status_code == 400
    assert error_code(response) == "VALIDATION_ERROR"


def test_activation_replayed_by_request_id(stand, tmp_path):
    register(stand)
    control(stand, "auto-confirm", {"enabled": True})
    agent = AgentKey(tmp_path, CONTRACT)
    request_id = new_id()
    first = activate(stand, agent, request_id=request_id)
    second = activate(stand, agent, request_id=request_id)
    assert (first.status_code, first.content) == (second.status_code, second.content)
    current = state(stand)
    assert current["calls"]["activate"] == 2
    assert current["executed"]["activate"] == 1 and current["replayed"]["activate"] == 1


# -- §1.2 batches ----------------------------------------------------------------


def test_batch_issued_and_replayed_by_request_id(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    request_id = new_id()
    first = batch(stand, agent, 50, request_id=request_id)
    assert first.status_code == 201
    body = first.json()
    assert body["batch_id"].startswith("B-")
    assert len(body["terminals"]) == 50
    assert all(number.isdigit() and len(number) == 7 for number in body["terminals"])
    second = batch(stand, agent, 50, request_id=request_id)
    assert (second.status_code, second.json()) == (201, body)
    current = state(stand)
    assert current["terminals"][CONTRACT["contract_number"]] == body["terminals"]
    assert [b["batch_id"] for b in current["batches"]] == [body["batch_id"]]
    assert current["calls"]["batches"] == 2 and current["executed"]["batches"] == 1


def test_concurrent_retries_get_one_batch(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    request_id = new_id()
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: batch(stand, agent, 10, request_id=request_id).json(), range(6)))
    assert all(answer == answers[0] for answer in answers)
    assert len(state(stand)["batches"]) == 1


def test_batches_never_repeat_numbers(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    other = activated_agent(stand, tmp_path, OTHER_CONTRACT, "other")
    numbers = []
    for owner, contract in ((agent, CONTRACT), (other, OTHER_CONTRACT), (agent, CONTRACT)):
        response = batch(stand, owner, 20, contract)
        assert response.status_code == 201
        numbers += response.json()["terminals"]
    assert len(numbers) == len(set(numbers)) == 60
    assert numbers == sorted(numbers)
    assert numbers[0] == "0100001"


def test_batch_count_validation(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    for count in (0, 1001, -1, "5", 2.5, True, None):
        response = batch(stand, agent, count)
        assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR"), count
    assert batch(stand, agent, 1000).status_code == 201


def test_batch_limit(stand, tmp_path):
    agent = activated_agent(stand, tmp_path, terminal_limit=5)
    assert len(batch(stand, agent, 3).json()["terminals"]) == 3
    assert len(batch(stand, agent, 3).json()["terminals"]) == 2
    exhausted = batch(stand, agent, 1)
    assert exhausted.status_code == 409
    assert error_code(exhausted) == "TERMINAL_LIMIT_EXCEEDED"
    # Stoloto raises the limit; the contract gets numbers again.
    register(stand, terminal_limit=6)
    assert batch(stand, agent, 10).json()["terminals"] and state(stand)["contracts"][0]["terminals_issued"] == 6


# -- mutual TLS ------------------------------------------------------------------


def test_no_client_certificate_is_unauthorized(stand, tmp_path):
    activated_agent(stand, tmp_path)
    for response in (batch(stand, None), bind(stand, None, "0100001")):
        assert response.status_code == 401
        assert error_code(response) == "UNAUTHORIZED"


def test_certificate_of_another_contract_is_unauthorized(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    activated_agent(stand, tmp_path, OTHER_CONTRACT, "other")
    response = batch(stand, agent, 5, OTHER_CONTRACT)
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_reset_forgets_certificates_but_keeps_the_ca(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    ca_before = Path(stand.ca_path).read_bytes()
    assert control(stand, "reset").status_code == 200
    assert Path(stand.ca_path).read_bytes() == ca_before
    assert state(stand)["contracts"] == []
    response = batch(stand, agent)
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHORIZED"


def test_certificate_from_a_foreign_ca_is_refused(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intruder")])
    foreign = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(agent.key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now)
               .not_valid_after(now + dt.timedelta(days=1)).sign(agent.key, hashes.SHA256()))
    agent.store_certificate(foreign.public_bytes(serialization.Encoding.PEM).decode())
    # The TLS layer itself rejects a certificate the stand CA did not issue.
    try:
        response = batch(stand, agent)
    except requests.exceptions.ConnectionError:
        return
    assert response.status_code == 401


def test_plain_http_trusts_the_body(plain_stand, tmp_path):
    assert plain_stand.url.startswith("http://")
    unknown = batch(plain_stand, None)
    assert (unknown.status_code, error_code(unknown)) == (401, "UNAUTHORIZED")
    register(plain_stand)
    not_active = batch(plain_stand, None)
    assert (not_active.status_code, error_code(not_active)) == (409, "CONTRACT_NOT_ACTIVATED")
    control(plain_stand, "auto-confirm", {"enabled": True})
    assert activate(plain_stand, AgentKey(tmp_path, CONTRACT)).status_code == 200
    assert batch(plain_stand, None, 2).status_code == 201


# -- §1.3 registration -----------------------------------------------------------


def test_registration_binding_rules(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    first, second = batch(stand, agent, 2).json()["terminals"]
    unknown = bind(stand, agent, "9999999")
    assert (unknown.status_code, error_code(unknown)) == (404, "TERMINAL_UNKNOWN")
    bound = bind(stand, agent, first, "101", 3)
    assert (bound.status_code, bound.json()) == (200, {"terminal_number": first, "status": "REGISTERED"})
    again = bind(stand, agent, first, "101", 3, serial_number=None, address=None)
    assert (again.status_code, again.json()) == (200, bound.json())
    elsewhere = bind(stand, agent, first, "101", 4)
    assert (elsewhere.status_code, error_code(elsewhere)) == (409, "TERMINAL_ALREADY_BOUND")
    other_store = bind(stand, agent, first, "102", 3)
    assert other_store.status_code == 409
    assert bind(stand, agent, second, "102", 1).status_code == 200
    bindings = state(stand)["bindings"]
    assert [(b["terminal_number"], b["store_code"], b["cash_number"]) for b in bindings] == [
        (first, "101", 3), (second, "102", 1)]


def test_registration_of_a_terminal_of_another_contract(plain_stand, tmp_path):
    control(plain_stand, "auto-confirm", {"enabled": True})
    for contract, name in ((CONTRACT, "agent"), (OTHER_CONTRACT, "other")):
        register(plain_stand, contract)
        activate(plain_stand, AgentKey(tmp_path, contract, name), contract)
    foreign_terminal = batch(plain_stand, None, 1, OTHER_CONTRACT).json()["terminals"][0]
    response = bind(plain_stand, None, foreign_terminal)
    assert (response.status_code, error_code(response)) == (404, "TERMINAL_UNKNOWN")


def test_registration_validation(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    terminal = batch(stand, agent, 1).json()["terminals"][0]
    for changes in ({"store_code": "abc"}, {"store_code": 101}, {"store_code": ""}, {"cash_number": 0},
                    {"cash_number": 10000}, {"cash_number": "3"}, {"cash_number": True}, {"serial_number": 5},
                    {"contract_number": None}):
        response = bind(stand, agent, terminal, **changes)
        assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR"), changes
    assert state(stand)["bindings"] == []


# -- faults ----------------------------------------------------------------------


def add_fault(stand: StolotoStand, **fault) -> None:
    response = control(stand, "faults", fault)
    assert response.status_code == 201, response.text


def test_fault_status_and_count(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    add_fault(stand, endpoint="batches", kind="status", status=503, count=2)
    for _ in range(2):
        response = batch(stand, agent)
        assert (response.status_code, error_code(response)) == (503, "SERVICE_UNAVAILABLE")
    assert batch(stand, agent).status_code == 201
    assert state(stand)["faults"] == []


@pytest.mark.parametrize("code, status", [
    ("KEY_NOT_REGISTERED", 409), ("CONTRACT_NOT_FOUND", 404), ("CONTRACT_DATA_MISMATCH", 422),
    ("KEY_MISMATCH", 409), ("VALIDATION_ERROR", 400),
])
def test_fault_error_codes(stand, tmp_path, code, status):
    register(stand)
    add_fault(stand, endpoint="activate", kind="error", code=code)
    response = activate(stand, AgentKey(tmp_path, CONTRACT))
    assert (response.status_code, error_code(response)) == (status, code)
    if code == "CONTRACT_DATA_MISMATCH":
        assert response.json()["error"]["fields"] == ["contract_date"]


def test_fault_garbage_body(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    add_fault(stand, endpoint="batches", kind="garbage")
    response = batch(stand, agent)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_html502(stand, tmp_path):
    register(stand)
    add_fault(stand, endpoint="any", kind="html502")
    response = activate(stand, AgentKey(tmp_path, CONTRACT))
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text


def test_fault_drop(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    terminal = batch(stand, agent, 1).json()["terminals"][0]
    add_fault(stand, endpoint="registration", kind="drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        bind(stand, agent, terminal)
    assert bind(stand, agent, terminal).status_code == 200


def test_fault_delay_makes_the_client_time_out(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    add_fault(stand, endpoint="batches", kind="delay", seconds=2)
    with pytest.raises(requests.exceptions.Timeout):
        batch(stand, agent, timeout=(5, 0.5))


def test_fault_delay_then_normal_answer(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    add_fault(stand, endpoint="batches", kind="delay", seconds=0.3)
    started = time.monotonic()
    response = batch(stand, agent)
    assert response.status_code == 201
    assert time.monotonic() - started >= 0.3


def test_faults_match_their_endpoint_and_are_cleared(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    add_fault(stand, endpoint="registration", kind="status", status=500, count=3)
    assert batch(stand, agent).status_code == 201
    assert len(state(stand)["faults"]) == 1
    assert control(stand, "faults", method="DELETE").json() == {"faults": []}
    assert state(stand)["faults"] == []


def test_faults_come_before_idempotency_and_are_not_stored(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    request_id = new_id()
    add_fault(stand, endpoint="batches", kind="status", status=500)
    assert batch(stand, agent, request_id=request_id).status_code == 500
    first = batch(stand, agent, request_id=request_id)
    assert first.status_code == 201
    add_fault(stand, endpoint="batches", kind="html502")
    assert batch(stand, agent, request_id=request_id).status_code == 502
    assert batch(stand, agent, request_id=request_id).json() == first.json()
    assert len(state(stand)["batches"]) == 1


@pytest.mark.parametrize("fault", [
    {"kind": "explode"}, {"kind": "status", "endpoint": "shops"}, {"kind": "status", "count": 0},
    {"kind": "delay", "seconds": -1}, {"kind": "error", "code": "NO_SUCH_CODE"},
])
def test_fault_control_validation(stand, fault):
    response = control(stand, "faults", fault)
    assert (response.status_code, error_code(response)) == (400, "VALIDATION_ERROR")


def test_control_validation(stand):
    assert control(stand, "keys/confirm", {"fingerprint": "abc"}).status_code == 400
    assert control(stand, "contracts", {**CONTRACT, "agent_inn": "1"}).status_code == 400
    assert control(stand, "auto-confirm", {"enabled": "yes"}).status_code == 400


# -- persistence ------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    data_dir = tmp_path / "stand"
    first = StolotoStand(data_dir).start()
    try:
        agent = activated_agent(first, tmp_path)
        request_id = new_id()
        issued = batch(first, agent, 3, request_id=request_id).json()
        assert bind(first, agent, issued["terminals"][0]).status_code == 200
        server_pem = (data_dir / "server.pem").read_bytes()
    finally:
        first.stop()
    second = StolotoStand(data_dir).start()
    try:
        assert (data_dir / "server.pem").read_bytes() == server_pem
        assert batch(second, agent, 3, request_id=request_id).json() == issued
        more = batch(second, agent, 2).json()["terminals"]
        assert not set(more) & set(issued["terminals"])
        assert bind(second, agent, issued["terminals"][0], cash_number=4).status_code == 409
        current = state(second)
        assert current["contracts"][0]["activated"]
        assert current["confirmed_fingerprints"] == [agent.fingerprint]
        assert len(current["terminals"][CONTRACT["contract_number"]]) == 5
    finally:
        second.stop()


def test_restarted_object_keeps_its_port(tmp_path):
    stand = StolotoStand(tmp_path / "stand", tls=False).start()
    url = stand.url
    stand.stop()
    stand.start()
    try:
        assert stand.url == url
        assert requests.get(url + "/control/state", timeout=5).status_code == 200
    finally:
        stand.stop()


def test_fault_certificate_answers_activation_only_with_a_known_variant(stand, tmp_path):
    assert control(stand, "faults", {"endpoint": "batches", "kind": "certificate"}).status_code == 400
    assert control(stand, "faults", {"endpoint": "activate", "kind": "certificate", "variant": "x"}).status_code == 400
    assert control(stand, "faults", {"endpoint": "activate", "kind": "certificate",
                                     "variant": "malformed"}).status_code == 201


# -- reading contracts and keys (what SIS's «Тестовый стенд» shows) ------------------


def test_contracts_list_follows_a_contract_from_registration_to_bound_terminals(stand, tmp_path):
    assert control(stand, "contracts", method="GET").json() == {"contracts": []}
    register(stand, terminal_limit=20)
    register(stand, OTHER_CONTRACT)
    listed = control(stand, "contracts", method="GET").json()["contracts"]
    assert listed[0] == {**CONTRACT, "terminal_limit": 20, "agent_id": None, "activated": False,
                         "key_fingerprint": None, "activated_at": None, "certificate_not_after": None,
                         "terminals_issued": 0, "terminals_bound": 0}
    assert [c["contract_number"] for c in listed] == ["СТ-2026/001", "СТ-2026/002"]

    agent = activated_agent(stand, tmp_path, terminal_limit=20)
    terminals = batch(stand, agent, 7).json()["terminals"]
    assert bind(stand, agent, terminals[0]).status_code == 200
    first = control(stand, "contracts", method="GET").json()["contracts"][0]
    assert first["activated"] and first["key_fingerprint"] == agent.fingerprint
    assert first["agent_id"].startswith("A-") and first["activated_at"]
    assert (first["terminals_issued"], first["terminals_bound"]) == (7, 1)
    assert "certificate" not in first  # the list stays small: certificates and numbers are in /control/state


def test_keys_list_shows_each_confirmed_fingerprint_once(stand):
    assert control(stand, "keys", method="GET").json() == {"keys": []}
    for typed in ("AB" * 32, "ab:" * 31 + "ab", "cd" * 32):
        assert control(stand, "keys/confirm", {"fingerprint": typed}).status_code == 200
    keys = control(stand, "keys", method="GET").json()["keys"]
    assert [key["fingerprint"] for key in keys] == ["ab" * 32, "cd" * 32]
    assert all(dt.datetime.fromisoformat(key["confirmed_at"]) for key in keys)
    control(stand, "reset")
    assert control(stand, "keys", method="GET").json() == {"keys": []}
