"""Integration tests of the SET Centrum test stand over real HTTP (docs/protocols.md §2, §4)."""

from __future__ import annotations

import json
import re

import pytest
import requests

from stoloto.stands.setcentrum_stand import SetCentrumStand


@pytest.fixture
def stand():
    running = SetCentrumStand().start()
    yield running
    running.stop()


def shops(stand: SetCentrumStand, timeout: float = 5) -> requests.Response:
    return requests.get(stand.url + "/api/v1/shops", timeout=timeout, allow_redirects=False)


def control(stand: SetCentrumStand, path: str, body: dict | None = None, method: str = "POST") -> requests.Response:
    return requests.request(method, stand.url + "/control/" + path, json=body, timeout=5)


def add_fault(stand: SetCentrumStand, **fault) -> None:
    response = control(stand, "faults", fault)
    assert response.status_code == 201, response.text


def test_default_shops(stand):
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", stand.url)
    response = shops(stand)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    listed = response.json()["shops"]
    assert [shop["number"] for shop in listed] == list(range(101, 141))
    names = [shop.get("name") for shop in listed]
    addresses = [shop.get("address") for shop in listed]
    assert None in names and None in addresses
    assert any("name" not in shop for shop in listed) and any("address" not in shop for shop in listed)
    assert any(address and "ул. Ленина" in address for address in addresses)
    # Deterministic: the same answer every time.
    assert shops(stand).content == response.content


def test_configure_shops(stand):
    assert control(stand, "shops", {"count": 3, "start": 500}).json() == {"count": 3, "start": 500}
    assert [shop["number"] for shop in shops(stand).json()["shops"]] == [500, 501, 502]
    control(stand, "shops", {"count": 0})
    assert shops(stand).json() == {"shops": []}


@pytest.mark.parametrize("body", [{"count": -1}, {"count": "5"}, {"count": 5, "start": 0}, {}])
def test_configure_shops_validation(stand, body):
    response = control(stand, "shops", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_fifty_thousand_shops_in_one_answer(stand):
    control(stand, "shops", {"count": 50_000, "start": 101})
    listed = shops(stand).json()["shops"]
    assert len(listed) == 50_000
    assert len({shop["number"] for shop in listed}) == 50_000


def test_constructor_and_state(stand):
    other = SetCentrumStand(shops=5).start()
    try:
        assert len(shops(other).json()["shops"]) == 5
        shops(other)
        assert control(other, "state", method="GET").json() == {
            "shops": 5, "start": 101, "calls": {"shops": 2}, "faults": []}
    finally:
        other.stop()


def test_fault_status_applies_count_times(stand):
    add_fault(stand, kind="status", status=503, count=2)
    for _ in range(2):
        response = shops(stand)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert shops(stand).status_code == 200
    assert control(stand, "state", method="GET").json()["calls"] == {"shops": 3}


def test_fault_garbage(stand):
    add_fault(stand, kind="garbage")
    response = shops(stand)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_fault_html502(stand):
    add_fault(stand, kind="html502")
    response = shops(stand)
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")


def test_fault_drop(stand):
    add_fault(stand, kind="drop")
    with pytest.raises(requests.exceptions.ConnectionError):
        shops(stand)
    assert shops(stand).status_code == 200


def test_fault_delay(stand):
    add_fault(stand, kind="delay", seconds=2)
    with pytest.raises(requests.exceptions.Timeout):
        shops(stand, timeout=(5, 0.3))
    add_fault(stand, kind="delay", seconds=0.2)
    assert shops(stand).status_code == 200


@pytest.mark.parametrize("variant, check", [
    ("string", lambda shop: shop["number"] == "abc"),
    ("missing", lambda shop: "number" not in shop),
    ("zero", lambda shop: shop["number"] == 0),
    ("negative", lambda shop: shop["number"] < 0),
    ("null", lambda shop: shop["number"] is None),
])
def test_fault_bad_shop(stand, variant, check):
    add_fault(stand, kind="bad_shop", variant=variant)
    listed = shops(stand).json()["shops"]
    assert len(listed) == 41
    assert check(listed[-1])
    assert len(shops(stand).json()["shops"]) == 40


def test_fault_duplicates(stand):
    add_fault(stand, kind="duplicates")
    numbers = [shop["number"] for shop in shops(stand).json()["shops"]]
    assert len(numbers) == 41 and len(set(numbers)) == 40
    control(stand, "shops", {"count": 0})
    add_fault(stand, kind="duplicates")
    assert [shop["number"] for shop in shops(stand).json()["shops"]] == [101, 101]


def test_fault_truncated_cuts_the_answer_in_the_middle_of_the_list(stand):
    add_fault(stand, kind="truncated")
    response = shops(stand)
    assert response.status_code == 200
    assert response.content.startswith(b'{"shops": [{"number": 101')
    assert int(response.headers["Content-Length"]) == len(response.content) < len(shops(stand).content)
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_fault_malformed_breaks_the_list_after_the_good_shops(stand):
    add_fault(stand, kind="malformed")
    body = shops(stand).text
    with pytest.raises(ValueError) as caught:
        json.loads(body)
    assert caught.value.pos > len(shops(stand).text) - 10  # after all 40 good shops


def test_faults_cleared(stand):
    add_fault(stand, kind="status", count=5)
    assert len(control(stand, "state", method="GET").json()["faults"]) == 1
    assert control(stand, "faults", method="DELETE").json() == {"faults": []}
    assert shops(stand).status_code == 200


@pytest.mark.parametrize("fault", [{"kind": "explode"}, {"kind": "bad_shop", "variant": "weird"},
                                   {"kind": "shape", "variant": "weird"},
                                   {"kind": "status", "status": 99}])
def test_fault_validation(stand, fault):
    assert control(stand, "faults", fault).status_code == 400


def test_unknown_path_is_json_404(stand):
    response = requests.get(stand.url + "/api/v1/nothing", timeout=5)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
