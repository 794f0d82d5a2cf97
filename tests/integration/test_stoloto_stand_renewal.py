"""The Stoloto stand's certificate lifetime over real HTTPS: validity, its clock, §1.4 renewal, §1.1 re-keying."""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from stoloto.stands.stoloto_stand import StolotoStand, spki_fingerprint
from tests.processes import wait_for
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

ROOT = Path(__file__).resolve().parents[2]
RENEW = "/api/v1/certificates/renew"
GRACE = dt.timedelta(days=7)


@pytest.fixture
def stand(stand_process):
    """The stand itself (here it is what the tests drive), not SIS's control of it."""
    return stand_process


def renew(stand: StolotoStand, current: AgentKey | None, new: AgentKey, contract: dict = CONTRACT,
          request_id: str | None = None, csr: str | None = None) -> requests.Response:
    body = {"contract_number": contract["contract_number"], "csr": csr or new.csr_pem}
    return post(stand, RENEW, body, request_id, cert=current.cert if current else None)


def set_validity(stand: StolotoStand, minutes) -> requests.Response:
    return control(stand, "certificate-validity", {"minutes": minutes})


def move_clock(stand: StolotoStand, offset: dt.timedelta) -> dict:
    response = control(stand, "clock", {"offset_seconds": int(offset.total_seconds())})
    assert response.status_code == 200, response.text
    return response.json()


def certificate(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def lifetime(pem: str) -> dt.timedelta:
    cert = certificate(pem)
    return cert.not_valid_after_utc - cert.not_valid_before_utc


def refused(response: requests.Response) -> tuple[int, str]:
    return response.status_code, error_code(response)


# -- validity of issued certificates and the stand's clock -------------------------


def test_validity_defaults_to_a_year_and_is_set_in_minutes(stand, tmp_path):
    assert state(stand)["certificate_validity_minutes"] == 365 * 24 * 60
    first = activated_agent(stand, tmp_path)
    # Valid from five minutes before issue (clocks differ), for the validity after it.
    assert lifetime(first.cert_path.read_text()) == dt.timedelta(days=365, minutes=5)
    assert set_validity(stand, 3).json() == {"certificate_validity_minutes": 3}
    assert state(stand)["certificate_validity_minutes"] == 3
    other = activated_agent(stand, tmp_path, OTHER_CONTRACT, "other")
    assert lifetime(other.cert_path.read_text()) == dt.timedelta(minutes=8)
    renewed = renew(stand, other, AgentKey(tmp_path, OTHER_CONTRACT, "other2"), OTHER_CONTRACT)
    assert lifetime(renewed.json()["certificate"]) == dt.timedelta(minutes=8)
    control(stand, "reset")
    assert state(stand)["certificate_validity_minutes"] == 365 * 24 * 60


@pytest.mark.parametrize("minutes", [0, -1, 3650 * 24 * 60 + 1, "5", 2.5, True, None])
def test_validity_control_refuses_bad_values(stand, minutes):
    response = set_validity(stand, minutes)
    assert refused(response) == (400, "VALIDATION_ERROR")
    assert response.json()["error"]["fields"] == ["minutes"]
    assert state(stand)["certificate_validity_minutes"] == 365 * 24 * 60


def test_clock_is_reported_moved_and_reset(stand):
    before = state(stand)["clock"]
    assert before["offset_seconds"] == 0
    moved = move_clock(stand, dt.timedelta(days=2))
    assert moved["offset_seconds"] == 2 * 86400
    assert dt.datetime.fromisoformat(moved["now"]) - dt.datetime.fromisoformat(before["now"]) >= dt.timedelta(days=2)
    assert moved["now"].endswith("Z")
    for bad in (-(10 ** 12), "60", None, 10 ** 12, 1.5):
        assert refused(control(stand, "clock", {"offset_seconds": bad})) == (400, "VALIDATION_ERROR")
    control(stand, "reset")
    assert state(stand)["clock"]["offset_seconds"] == 0


def test_cli_sets_the_validity_and_refuses_a_bad_one(tmp_path):
    bad = subprocess.run([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--cert-validity-minutes", "0"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--cert-validity-minutes: an integer from 1 to 5256000" in bad.stderr
    helped = subprocess.run([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--help"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--cert-validity-minutes" in helped.stdout
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "stoloto.stands.stoloto_stand", "--no-tls", "--quiet",
                                "--port", str(port), "--data-dir", str(tmp_path), "--cert-validity-minutes", "2"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/control"
    try:
        def answers() -> bool:
            try:
                return requests.get(url + "/state", timeout=2).ok
            except requests.RequestException:
                return False
        wait_for(answers, 30, "the stand to start")
        assert requests.get(url + "/state", timeout=2).json()["certificate_validity_minutes"] == 2
        requests.post(url + "/certificate-validity", json={"minutes": 60}, timeout=2)
        requests.post(url + "/reset", timeout=2)
        assert requests.get(url + "/state", timeout=2).json()["certificate_validity_minutes"] == 2
    finally:
        process.terminate()
        process.wait(10)


# -- expired certificates: 401 on every mutual-TLS endpoint --------------------------


def test_expired_certificate_is_unauthorized_everywhere(stand, tmp_path):
    set_validity(stand, 1)
    agent = activated_agent(stand, tmp_path)
    terminal = batch(stand, agent, 1).json()["terminals"][0]
    move_clock(stand, dt.timedelta(minutes=2))
    for response in (batch(stand, agent), bind(stand, agent, terminal),
                     renew(stand, agent, AgentKey(tmp_path, CONTRACT, "next"))):
        assert refused(response) == (401, "UNAUTHORIZED")
        assert "истёк" in response.json()["error"]["message"]
    assert state(stand)["bindings"] == []


def test_certificate_expired_by_the_real_clock_too_gets_401_not_a_failed_handshake(stand, tmp_path):
    # Issued two days in the past, valid a minute: expired for the TLS layer as well as for the stand.
    move_clock(stand, -dt.timedelta(days=2))
    set_validity(stand, 1)
    agent = activated_agent(stand, tmp_path)
    assert certificate(agent.cert_path.read_text()).not_valid_after_utc < dt.datetime.now(dt.UTC)
    move_clock(stand, dt.timedelta(0))
    for response in (batch(stand, agent), renew(stand, agent, AgentKey(tmp_path, CONTRACT, "next"))):
        assert refused(response) == (401, "UNAUTHORIZED")


def test_listed_contract_shows_its_certificate_expiry(stand, tmp_path):
    set_validity(stand, 30)
    agent = activated_agent(stand, tmp_path)
    listed = control(stand, "contracts", method="GET").json()["contracts"][0]
    assert listed["certificate_not_after"] == certificate(agent.cert_path.read_text()).not_valid_after_utc.strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# -- §1.4 renewal -------------------------------------------------------------------


def test_renewal_issues_a_certificate_for_the_new_key_that_works(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    first, second = batch(stand, agent, 2).json()["terminals"]
    assert bind(stand, agent, first).status_code == 200
    new = AgentKey(tmp_path, CONTRACT, "new")
    response = renew(stand, agent, new)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "certificate", "ca_certificate", "not_after"}
    assert body["status"] == "RENEWED"
    assert body["ca_certificate"] == Path(stand.ca_path).read_text()
    cert = certificate(body["certificate"])
    assert spki_fingerprint(cert.public_key()) == new.fingerprint
    assert cert.subject == certificate(agent.cert_path.read_text()).subject
    cert.verify_directly_issued_by(certificate(body["ca_certificate"]))
    assert body["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    new.store_certificate(body["certificate"])
    # The contract's numbers and bindings are its own still: bound again the same, bound anew, more issued.
    assert bind(stand, new, first).status_code == 200
    assert bind(stand, new, second, cash_number=4).status_code == 200
    assert batch(stand, new, 3).status_code == 201
    contract = state(stand)["contracts"][0]
    assert contract["key_fingerprint"] == new.fingerprint and contract["terminals_issued"] == 5
    assert contract["certificate"] == body["certificate"]
    assert state(stand)["calls"]["renew"] == 1


def test_renewal_replayed_by_request_id_and_racing_itself(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    new = AgentKey(tmp_path, CONTRACT, "new")
    request_id = new_id()
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: renew(stand, agent, new, request_id=request_id), range(4)))
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["certificate"] for answer in answers}) == 1
    current = state(stand)
    assert current["executed"]["renew"] == 1 and current["replayed"]["renew"] == 3
    assert current["contracts"][0]["certificate"] == answers[0].json()["certificate"]


def test_renewal_done_while_the_client_gave_up_is_given_again_by_request_id(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    new = AgentKey(tmp_path, CONTRACT, "new")
    request_id = new_id()
    assert control(stand, "faults", {"endpoint": "renew", "kind": "delay_after", "seconds": 2}).status_code == 201
    body = {"contract_number": CONTRACT["contract_number"], "csr": new.csr_pem}
    with pytest.raises(requests.exceptions.Timeout):
        post(stand, RENEW, body, request_id, cert=agent.cert, timeout=(5, 0.5))
    issued = state(stand)["contracts"][0]
    assert issued["key_fingerprint"] == new.fingerprint
    again = renew(stand, agent, new, request_id=request_id)
    assert again.status_code == 200 and again.json()["certificate"] == issued["certificate"]


def test_old_certificate_works_for_seven_days_after_renewal(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    new = AgentKey(tmp_path, CONTRACT, "new")
    request_id = new_id()
    renewed = renew(stand, agent, new, request_id=request_id)
    new.store_certificate(renewed.json()["certificate"])
    assert batch(stand, agent, 1).status_code == 201
    move_clock(stand, GRACE - dt.timedelta(minutes=1))
    assert batch(stand, agent, 1).status_code == 201
    # A retry after a crash within the grace gets the same certificate.
    assert renew(stand, agent, new, request_id=request_id).json() == renewed.json()
    move_clock(stand, GRACE + dt.timedelta(minutes=1))
    old = batch(stand, agent, 1)
    assert refused(old) == (401, "UNAUTHORIZED")
    assert "заменён" in old.json()["error"]["message"]
    assert refused(renew(stand, agent, new, request_id=request_id)) == (401, "UNAUTHORIZED")
    assert batch(stand, new, 1).status_code == 201


def test_old_certificate_ends_at_its_own_expiry_when_that_is_sooner(stand, tmp_path):
    set_validity(stand, 10)
    agent = activated_agent(stand, tmp_path)
    set_validity(stand, 365 * 24 * 60)
    new = AgentKey(tmp_path, CONTRACT, "new")
    new.store_certificate(renew(stand, agent, new).json()["certificate"])
    move_clock(stand, dt.timedelta(minutes=9))
    assert batch(stand, agent, 1).status_code == 201
    move_clock(stand, dt.timedelta(minutes=11))
    assert refused(batch(stand, agent, 1)) == (401, "UNAUTHORIZED")
    assert batch(stand, new, 1).status_code == 201


def test_renewal_refusals(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    other = activated_agent(stand, tmp_path, OTHER_CONTRACT, "other")
    new = AgentKey(tmp_path, CONTRACT, "new")
    assert refused(renew(stand, None, new)) == (401, "UNAUTHORIZED")
    # The other contract's certificate does not renew this one.
    assert refused(renew(stand, other, new)) == (401, "UNAUTHORIZED")
    stranger = AgentKey(tmp_path, OTHER_CONTRACT, "stranger")
    mismatch = renew(stand, agent, stranger)
    assert refused(mismatch) == (400, "VALIDATION_ERROR")
    assert mismatch.json()["error"]["fields"] == ["csr"]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CONTRACT["contract_number"])])
    no_inn = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(new.key, hashes.SHA256())
    no_inn_pem = no_inn.public_bytes(serialization.Encoding.PEM).decode()
    assert refused(renew(stand, agent, new, csr=no_inn_pem)) == (400, "VALIDATION_ERROR")
    for body in ({"contract_number": CONTRACT["contract_number"]},
                 {"contract_number": CONTRACT["contract_number"], "csr": "not a csr"},
                 {"csr": new.csr_pem}):
        response = post(stand, RENEW, body, cert=agent.cert)
        assert refused(response) == (400, "VALIDATION_ERROR"), body
    missing_id = post(stand, RENEW, {"contract_number": CONTRACT["contract_number"], "csr": new.csr_pem},
                      cert=agent.cert, headers={})
    assert refused(missing_id) == (400, "VALIDATION_ERROR")
    # Nothing changed: the current certificate still works, no other was issued.
    assert state(stand)["contracts"][0]["key_fingerprint"] == agent.fingerprint
    assert batch(stand, agent, 1).status_code == 201


def test_renewal_of_a_contract_not_activated(plain_stand, tmp_path):
    register(plain_stand)
    response = renew(plain_stand, None, AgentKey(tmp_path, CONTRACT))
    assert refused(response) == (409, "CONTRACT_NOT_ACTIVATED")


def test_renewal_faults(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    assert control(stand, "faults", {"endpoint": "renew", "kind": "status", "status": 503}).status_code == 201
    assert refused(renew(stand, agent, AgentKey(tmp_path, CONTRACT, "new"))) == (503, "SERVICE_UNAVAILABLE")
    assert renew(stand, agent, AgentKey(tmp_path, CONTRACT, "new")).status_code == 200


# -- §1.1 re-keying after an expiry ----------------------------------------------------


def test_rekeying_needs_the_new_key_confirmed_and_keeps_the_contract(stand, tmp_path):
    set_validity(stand, 1)
    agent = activated_agent(stand, tmp_path)
    agent_id = state(stand)["contracts"][0]["agent_id"]
    first = batch(stand, agent, 2).json()["terminals"]
    assert bind(stand, agent, first[0]).status_code == 200
    move_clock(stand, dt.timedelta(minutes=2))
    assert refused(batch(stand, agent, 1)) == (401, "UNAUTHORIZED")

    set_validity(stand, 60)
    rekeyed = AgentKey(tmp_path, CONTRACT, "rekeyed")
    request_id = new_id()
    assert refused(activate(stand, rekeyed, request_id=request_id)) == (409, "KEY_MISMATCH")
    control(stand, "keys/confirm", {"fingerprint": rekeyed.fingerprint})
    response = activate(stand, rekeyed, request_id=request_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ACTIVATED" and body["agent_id"] == agent_id
    assert spki_fingerprint(certificate(body["certificate"]).public_key()) == rekeyed.fingerprint
    assert lifetime(body["certificate"]) == dt.timedelta(minutes=65)
    rekeyed.store_certificate(body["certificate"])
    # The same key again: the same certificate; the contract's numbers stay its own.
    assert activate(stand, rekeyed).json()["certificate"] == body["certificate"]
    assert bind(stand, rekeyed, first[0]).status_code == 200
    assert bind(stand, rekeyed, first[1], cash_number=5).status_code == 200
    assert batch(stand, rekeyed, 1).status_code == 201
    contract = state(stand)["contracts"][0]
    assert contract["key_fingerprint"] == rekeyed.fingerprint and contract["terminals_issued"] == 3


def test_rekeying_a_valid_certificate_leaves_the_old_one_the_grace(stand, tmp_path):
    agent = activated_agent(stand, tmp_path)
    rekeyed = AgentKey(tmp_path, CONTRACT, "rekeyed")
    control(stand, "keys/confirm", {"fingerprint": rekeyed.fingerprint})
    rekeyed.store_certificate(activate(stand, rekeyed).json()["certificate"])
    assert batch(stand, agent, 1).status_code == 201
    move_clock(stand, GRACE + dt.timedelta(minutes=1))
    assert refused(batch(stand, agent, 1)) == (401, "UNAUTHORIZED")
    assert batch(stand, rekeyed, 1).status_code == 201


@pytest.mark.parametrize("variant", ["other_key", "malformed"])
def test_fault_certificate_answers_renewal_with_one_to_refuse_and_renews_nothing(stand, tmp_path, variant):
    agent = activated_agent(stand, tmp_path)
    fault = {"endpoint": "renew", "kind": "certificate", "variant": variant}
    assert control(stand, "faults", fault).status_code == 201
    new = AgentKey(tmp_path, CONTRACT, "new")
    body = renew(stand, agent, new).json()
    assert set(body) == {"status", "certificate", "ca_certificate", "not_after"} and body["status"] == "RENEWED"
    if variant == "other_key":
        assert spki_fingerprint(certificate(body["certificate"]).public_key()) != new.fingerprint
    else:
        with pytest.raises(ValueError):
            certificate(body["certificate"])
    assert state(stand)["contracts"][0]["key_fingerprint"] == agent.fingerprint
    assert batch(stand, agent, 1).status_code == 201
    assert control(stand, "faults", {"endpoint": "any", "kind": "certificate"}).status_code == 400
