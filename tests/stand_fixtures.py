"""Fixtures: the Stoloto test stand over real HTTPS, reset before each test, and SIS pointed at it; and the calls
of the stand's own tests, which speak its protocol directly as SIS would (mutual TLS with an agent's key)."""
import uuid
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from stoloto import settings
from stoloto.stands.stoloto_stand import StolotoStand, spki_fingerprint


class StandControl:
    """The stand's control interface (docs/protocols.md §4), as a test uses it."""

    def __init__(self, server: StolotoStand):
        self.server = server
        self.url = server.url
        self.ca_path = server.ca_path

    def post(self, path: str, body: dict | None = None) -> dict:
        response = requests.post(self.url + path, json=body or {}, verify=self.ca_path, timeout=10)
        assert response.status_code < 300, response.text
        return response.json() if response.content else {}

    def state(self) -> dict:
        return requests.get(self.url + "/control/state", verify=self.ca_path, timeout=10).json()

    def register(self, number: str, contract_date: str = "2026-01-15", inn: str = "7707083893", **extra) -> None:
        self.post("/control/contracts", {"contract_number": number, "contract_date": contract_date,
                                         "agent_inn": inn, **extra})

    def confirm(self, fingerprint: str) -> None:
        self.post("/control/keys/confirm", {"fingerprint": fingerprint})

    def fault(self, endpoint: str, kind: str, count: int = 1, **extra) -> None:
        self.post("/control/faults", {"endpoint": endpoint, "kind": kind, "count": count, **extra})

    def issued(self, number: str) -> list[str]:
        return sorted(self.state()["terminals"].get(number, []))

    def calls(self, endpoint: str) -> int:
        return self.state()["calls"].get(endpoint, 0)


@pytest.fixture(scope="session")
def stand_server(tmp_path_factory):
    server = StolotoStand(tmp_path_factory.mktemp("stoloto-stand")).start()
    yield server
    server.stop()


@pytest.fixture
def stand(stand_server, app):
    control = StandControl(stand_server)
    control.post("/control/reset")
    requests.delete(control.url + "/control/faults", verify=control.ca_path, timeout=10)
    with app.app_context():
        settings.save({settings.STOLOTO_URL: control.url, settings.STOLOTO_CA_BUNDLE: control.ca_path,
                       settings.CONNECT_TIMEOUT: 2, settings.READ_TIMEOUT: 2, settings.BATCH_SIZE: 5,
                       settings.REFILL_THRESHOLD: 2}, "test")
    return control


# -- a stand of its own per test, driven by its protocol ----------------------------------------

@pytest.fixture
def stand_process(tmp_path):
    running = StolotoStand(tmp_path / "stand").start()
    yield running
    running.stop()


@pytest.fixture
def plain_stand(tmp_path):
    running = StolotoStand(tmp_path / "plain", tls=False).start()
    yield running
    running.stop()


CONTRACT = {"contract_number": "СТ-2026/001", "contract_date": "2026-01-15", "agent_inn": "7707083893"}
OTHER_CONTRACT = {"contract_number": "СТ-2026/002", "contract_date": "2026-02-01", "agent_inn": "500100732259"}
INN_OIDS = {10: "1.2.643.100.4", 12: "1.2.643.3.131.1.1"}


class AgentKey:
    """The agent's private key, CSR and (after activation) certificate, as SIS makes them."""

    def __init__(self, directory: Path, contract: dict, name: str = "agent") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        inn = contract["agent_inn"]
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, contract["contract_number"]),
            x509.NameAttribute(x509.ObjectIdentifier(INN_OIDS[len(inn)]), inn),
        ])
        csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(self.key, hashes.SHA256())
        self.csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        self.fingerprint = spki_fingerprint(self.key.public_key())
        self.key_path = directory / f"{name}.key"
        self.cert_path = directory / f"{name}.pem"
        self.key_path.write_bytes(self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def store_certificate(self, pem: str) -> None:
        self.cert_path.write_text(pem)

    @property
    def cert(self) -> tuple[str, str]:
        return str(self.cert_path), str(self.key_path)


def new_id() -> str:
    return str(uuid.uuid4())


def post(stand: StolotoStand, path: str, body: dict, request_id: str | None = None,
         cert: tuple[str, str] | None = None, timeout: float = 5, headers: dict | None = None) -> requests.Response:
    headers = {"X-Request-Id": request_id or new_id()} if headers is None else headers
    return requests.post(stand.url + path, json=body, headers=headers, cert=cert,
                         verify=stand.ca_path, timeout=timeout, allow_redirects=False)


def control(stand: StolotoStand, path: str, body: dict | None = None, method: str = "POST") -> requests.Response:
    return requests.request(method, stand.url + "/control/" + path, json=body, verify=stand.ca_path, timeout=5)


def register(stand: StolotoStand, contract: dict = CONTRACT, **extra) -> None:
    assert control(stand, "contracts", {**contract, **extra}).status_code in (200, 201)


def activate(stand: StolotoStand, agent: AgentKey, contract: dict = CONTRACT, request_id: str | None = None,
             **changes) -> requests.Response:
    return post(stand, "/api/v1/contracts/activate", {**contract, "csr": agent.csr_pem, **changes}, request_id)


def activated_agent(stand: StolotoStand, tmp_path: Path, contract: dict = CONTRACT, name: str = "agent",
                    **extra) -> AgentKey:
    """Register the contract, confirm the key, activate, keep the certificate."""
    register(stand, contract, **extra)
    agent = AgentKey(tmp_path, contract, name)
    assert control(stand, "keys/confirm", {"fingerprint": agent.fingerprint}).status_code == 200
    response = activate(stand, agent, contract)
    assert response.status_code == 200, response.text
    agent.store_certificate(response.json()["certificate"])
    return agent


def batch(stand: StolotoStand, agent: AgentKey | None, count: int = 5, contract: dict = CONTRACT,
          request_id: str | None = None, **kwargs) -> requests.Response:
    return post(stand, "/api/v1/terminals/batches", {"contract_number": contract["contract_number"], "count": count},
                request_id, cert=agent.cert if agent else None, **kwargs)


def bind(stand: StolotoStand, agent: AgentKey | None, terminal: str, store_code: str = "101", cash_number=3,
         contract: dict = CONTRACT, **extra) -> requests.Response:
    body = {"contract_number": contract["contract_number"], "store_code": store_code, "cash_number": cash_number,
            "serial_number": "SN-1", "address": "г. Москва, ул. Ленина, д. 1", **extra}
    return post(stand, f"/api/v1/terminals/{terminal}/registration", body, cert=agent.cert if agent else None)


def error_code(response: requests.Response) -> str:
    return response.json()["error"]["code"]


def state(stand: StolotoStand) -> dict:
    return control(stand, "state", method="GET").json()
