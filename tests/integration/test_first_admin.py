"""The first start's `admin`: a random password printed once, or SIS_ADMIN_PASSWORD / SIS_ADMIN_PASSWORD_FILE."""
import pytest

from app import create_app
from stoloto.errors import SisError
from tests.conftest import TEST_KEY_ENCRYPTION_KEY, TEST_SECRET, Browser

PRINTED = "создан пользователь admin, пароль: "


@pytest.fixture
def first_start(app, database_url, tmp_path, monkeypatch):
    """Starts SIS on the migrated, empty database with the first-admin bootstrap on, as a real start does."""
    monkeypatch.delenv("SIS_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("SIS_ADMIN_PASSWORD_FILE", raising=False)

    def start():
        return create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": TEST_SECRET,
                           "SIS_KEY_ENCRYPTION_KEY": TEST_KEY_ENCRYPTION_KEY, "TESTING": True,
                           "SIS_BOOTSTRAP_ADMIN": True, "SIS_INSTANCE_PATH": str(tmp_path)})
    return start


def logs_in(application, password: str) -> bool:
    return Browser(application.test_client()).login("admin", password).status_code == 302


def test_without_a_given_password_a_random_one_is_printed_once(first_start, capsys):
    application = first_start()
    printed = capsys.readouterr().err
    assert PRINTED in printed
    password = printed.split(PRINTED, 1)[1].split()[0]
    assert logs_in(application, password)
    first_start()  # a second start: admin exists, nothing printed
    assert PRINTED not in capsys.readouterr().err


def test_an_empty_sis_admin_password_counts_as_unset(first_start, monkeypatch, capsys):
    monkeypatch.setenv("SIS_ADMIN_PASSWORD", "")
    monkeypatch.setenv("SIS_ADMIN_PASSWORD_FILE", "")
    first_start()
    assert PRINTED in capsys.readouterr().err


def test_sis_admin_password_sets_the_first_admins_password_and_is_not_printed(first_start, monkeypatch, capsys):
    monkeypatch.setenv("SIS_ADMIN_PASSWORD", "given-password-42")
    application = first_start()
    assert "given-password-42" not in capsys.readouterr().err
    assert logs_in(application, "given-password-42")


def test_the_file_variant_reads_a_container_secret_without_its_newline(first_start, monkeypatch, tmp_path, capsys):
    secret = tmp_path / "admin_password"
    secret.write_text("secret-from-file-7\n")
    monkeypatch.setenv("SIS_ADMIN_PASSWORD_FILE", str(secret))
    application = first_start()
    assert PRINTED not in capsys.readouterr().err
    assert logs_in(application, "secret-from-file-7")


def test_a_too_short_given_password_stops_the_start_and_creates_nobody(first_start, monkeypatch, capsys):
    monkeypatch.setenv("SIS_ADMIN_PASSWORD", "short")
    with pytest.raises(SisError) as stopped:
        first_start()
    assert stopped.value.code == "CONFIG_INVALID"
    assert str(stopped.value) == "SIS_ADMIN_PASSWORD: Пароль не короче 8 символов."
    monkeypatch.delenv("SIS_ADMIN_PASSWORD")
    first_start()  # the refused start created no admin: this one does, with a printed password
    assert PRINTED in capsys.readouterr().err


def test_a_missing_password_file_stops_the_start_with_its_name(first_start, monkeypatch, tmp_path):
    monkeypatch.setenv("SIS_ADMIN_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(SisError) as stopped:
        first_start()
    assert stopped.value.code == "CONFIG_INVALID"
    assert "SIS_ADMIN_PASSWORD_FILE: файл" in str(stopped.value) and "absent" in str(stopped.value)
