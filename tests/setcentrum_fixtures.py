"""Fixtures: the SET Centrum test stand over real HTTP, reset before each test, and SIS pointed at it."""
import pytest
import requests

from stoloto import settings
from stoloto.stands.setcentrum_stand import SetCentrumStand

SHOPS, FIRST = 40, 101


class SetCentrumControl:
    """The stand's control interface (docs/protocols.md §4), as a test uses it."""

    def __init__(self, server: SetCentrumStand):
        self.server = server
        self.url = server.url

    def _send(self, method: str, path: str, body: dict | None = None) -> dict:
        response = requests.request(method, self.url + path, json=body, timeout=10)
        assert response.status_code < 300, response.text
        return response.json()

    def shops(self, count: int, start: int = FIRST) -> None:
        self._send("POST", "/control/shops", {"count": count, "start": start})

    def fault(self, kind: str, count: int = 1, **extra) -> None:
        self._send("POST", "/control/faults", {"kind": kind, "count": count, **extra})

    def clear_faults(self) -> None:
        self._send("DELETE", "/control/faults")

    def state(self) -> dict:
        return self._send("GET", "/control/state")

    def listed(self) -> list[dict]:
        return requests.get(self.url + "/api/v1/shops", timeout=10).json()["shops"]


@pytest.fixture(scope="session")
def setcentrum_server():
    server = SetCentrumStand(shops=SHOPS, start_number=FIRST).start()
    yield server
    server.stop()


@pytest.fixture
def setcentrum(setcentrum_server, app):
    control = SetCentrumControl(setcentrum_server)
    control.clear_faults()
    control.shops(SHOPS, FIRST)
    with app.app_context():
        settings.save({settings.SET_CENTRUM_URL: control.url, settings.CONNECT_TIMEOUT: 2,
                       settings.READ_TIMEOUT: 2}, "test")
    return control
