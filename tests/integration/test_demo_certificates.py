"""The demo's short-lived certificates: SIS_DEMO_CERT_MINUTES tells the built-in Stoloto stand their validity."""
import os

import pytest
import requests

from stoloto.serve import start_stands


@pytest.fixture
def demo_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("STOLOTO_URL", raising=False)
    for name in ("STOLOTO_CA_BUNDLE", "SIS_STOLOTO_STAND_URL", "SIS_STOLOTO_STAND_CA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SET_CENTRUM_URL", "http://127.0.0.1:9")  # no SET stand needed here
    monkeypatch.setenv("SIS_INSTANCE_PATH", str(tmp_path))
    return monkeypatch


def test_the_demo_stand_issues_certificates_valid_the_minutes_asked(demo_environment):
    demo_environment.setenv("SIS_DEMO_CERT_MINUTES", "2")
    start_stands(0, 0)
    state = requests.get(os.environ["SIS_STOLOTO_STAND_URL"] + "/control/state",
                         verify=os.environ["SIS_STOLOTO_STAND_CA"], timeout=10).json()
    assert state["certificate_validity_minutes"] == 2


@pytest.mark.parametrize("value", ["0", "две", "-5", "9999999"])
def test_a_bad_demo_certificate_validity_stops_the_start_with_a_message(demo_environment, value):
    demo_environment.setenv("SIS_DEMO_CERT_MINUTES", value)
    with pytest.raises(SystemExit) as stopped:
        start_stands(0, 0)
    assert "SIS_DEMO_CERT_MINUTES" in str(stopped.value) and "целое число минут" in str(stopped.value)
