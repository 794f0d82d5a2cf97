"""Settings given by the environment are checked at start-up with the rules of «Настройки»."""
import subprocess

import pytest

from app import create_app
from stoloto import settings
from stoloto.errors import SisError
from tests.conftest import TEST_SECRET
from tests.processes import FLASK, ROOT, sis_env


def start(tmp_path):
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'sis.db'}", "SECRET_KEY": TEST_SECRET,
                       "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path)})


@pytest.mark.parametrize("variable, value, message", [
    ("CASH_API_TOKEN", "short-token", "Токен: не короче 16 символов, без пробелов."),
    ("CASH_API_TOKEN", "a token with spaces inside", "Токен: не короче 16 символов, без пробелов."),
    ("STOLOTO_URL", "ftp://stoloto.example", "Укажите адрес вида https://host:port."),
    ("SET_CENTRUM_URL", "set-centrum:8080", "Укажите адрес вида https://host:port."),
])
def test_a_bad_setting_in_the_environment_stops_start_up(monkeypatch, tmp_path, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SisError) as error:
        start(tmp_path)
    assert error.value.code == "CONFIG_INVALID"
    assert variable in str(error.value) and message in str(error.value)


def test_good_settings_in_the_environment_are_the_first_values(monkeypatch, tmp_path):
    monkeypatch.setenv("CASH_API_TOKEN", "a-long-enough-token-0123")
    monkeypatch.setenv("STOLOTO_URL", "https://stoloto.example:443")
    app = start(tmp_path)
    assert app.config["CASH_API_TOKEN"] == "a-long-enough-token-0123"


def test_cli_with_a_short_token_exits_with_the_russian_message(app, tmp_path):
    done = subprocess.run(FLASK + ["users", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=sis_env(app, tmp_path, CASH_API_TOKEN="short-token"))
    assert done.returncode != 0
    assert "CASH_API_TOKEN" in done.stderr and "не короче 16 символов" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_settings_page_shows_the_token_field_error(app, web):
    page = web("admin").post("/settings/", {settings.CASH_API_TOKEN: "short"}).get_data(as_text=True)
    assert "Токен: не короче 16 символов, без пробелов." in page
