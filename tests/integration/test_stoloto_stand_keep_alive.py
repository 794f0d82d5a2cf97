"""The Stoloto stand on its keep-alive server (cheroot): the same protocol, connections reused."""
import uuid

import pytest
import requests
import urllib3
from cryptography.hazmat.primitives import serialization

from stoloto import crypto
from stoloto.clients.stoloto import ClientCertificate, StolotoClient
from stoloto.stands.stoloto_stand import StolotoStand


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    server = StolotoStand(tmp_path_factory.mktemp("keep-alive-stand"), auto_confirm=True, auto_register=True,
                          keep_alive=True).start()
    yield server
    server.stop()


def test_mutual_tls_flow_reuses_one_connection(stand, monkeypatch):
    connects = []
    original = urllib3.connection.HTTPSConnection.connect
    monkeypatch.setattr(urllib3.connection.HTTPSConnection, "connect",
                        lambda self: connects.append(1) or original(self))
    key = crypto.generate_private_key()
    activated = StolotoClient(stand.url, stand.ca_path).activate(
        str(uuid.uuid4()), "KA-1", "2026-01-15", "7707083893", crypto.build_csr(key, "KA-1", "7707083893", None))
    assert activated.ok
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    client = StolotoClient(stand.url, stand.ca_path,
                           client_cert=ClientCertificate(activated.data["certificate"], key_pem))
    connects.clear()
    batch = client.request_batch(str(uuid.uuid4()), "KA-1", 5)
    assert batch.ok and len(batch.data["terminals"]) == 5
    for cash_number, terminal in enumerate(batch.data["terminals"], start=1):
        assert client.register_terminal(str(uuid.uuid4()), terminal, {
            "contract_number": "KA-1", "store_code": "101", "cash_number": cash_number}).ok
    assert len(connects) == 1  # six calls, one TCP connection and one TLS handshake


def test_without_a_client_certificate_batches_are_unauthorized(stand):
    outcome = StolotoClient(stand.url, stand.ca_path).request_batch(str(uuid.uuid4()), "KA-1", 5)
    assert outcome.status == 401 and outcome.code == "UNAUTHORIZED"


def test_drop_fault_needs_the_werkzeug_server(stand):
    response = requests.post(stand.url + "/control/faults", json={"kind": "drop"}, verify=stand.ca_path, timeout=10)
    assert response.status_code == 400 and "werkzeug" in response.json()["error"]["message"]


def test_many_callers_keep_their_connections(stand):
    """A busy SIS holds more connections than cheroot's default of 10 idle ones: none is closed."""
    import http.client
    import ssl

    context = ssl.create_default_context(cafile=stand.ca_path)
    host, port = stand.url.removeprefix("https://").rsplit(":", 1)
    connections = [http.client.HTTPSConnection(host, int(port), context=context, timeout=10) for _ in range(24)]
    try:
        for _ in range(2):
            for connection in connections:  # every connection stays open while the others are used
                connection.request("GET", "/control/state")
                response = connection.getresponse()
                response.read()
                assert response.status == 200 and response.getheader("Connection", "").lower() != "close"
    finally:
        for connection in connections:
            connection.close()


def test_an_expired_certificate_is_unauthorized_not_a_failed_handshake(stand):
    def control(path: str, body: dict) -> None:
        assert requests.post(stand.url + path, json=body, verify=stand.ca_path, timeout=10).ok

    key = crypto.generate_private_key()
    # Issued two days in the past, valid a minute: expired for the TLS layer as well as for the stand.
    control("/control/clock", {"offset_seconds": -2 * 86400})
    control("/control/certificate-validity", {"minutes": 1})
    try:
        activated = StolotoClient(stand.url, stand.ca_path).activate(
            str(uuid.uuid4()), "KA-2", "2026-01-15", "7707083893", crypto.build_csr(key, "KA-2", "7707083893", None))
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        client = StolotoClient(stand.url, stand.ca_path,
                               client_cert=ClientCertificate(activated.data["certificate"], key_pem))
        control("/control/clock", {"offset_seconds": 0})
        outcome = client.request_batch(str(uuid.uuid4()), "KA-2", 5)
        assert outcome.status == 401 and outcome.code == "UNAUTHORIZED"
    finally:
        control("/control/certificate-validity", {"minutes": 365 * 24 * 60})
        control("/control/clock", {"offset_seconds": 0})
