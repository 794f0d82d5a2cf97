"""Fixtures: the Stoloto test stand over real HTTPS, reset before each test, and SIS pointed at it."""
import pytest
import requests

from stoloto import settings
from stoloto.stands.stoloto_stand import StolotoStand


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
