"""The job lease, "Настройки" and the command line."""
from datetime import timedelta

import pytest
from sqlalchemy import select

from jobs import lease
from stoloto import settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, Setting, utcnow


def test_lease_has_one_holder_until_it_expires(ctx):
    assert lease.acquire("jobs", timedelta(seconds=60), holder="a")
    assert not lease.acquire("jobs", timedelta(seconds=60), holder="b")
    assert lease.acquire("jobs", timedelta(seconds=60), holder="a")  # renewal
    db.session.execute(Setting.__table__.select())  # unrelated statement: the lease is committed
    from stoloto.models import SchedulerLease
    db.session.get(SchedulerLease, "jobs").expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert lease.acquire("jobs", timedelta(seconds=60), holder="b")
    assert not lease.acquire("jobs", timedelta(seconds=60), holder="a")


def test_settings_have_defaults_and_russian_labels(ctx):
    assert settings.get(settings.BATCH_SIZE) == 50
    labels = [d.label for d in settings.DEFINITIONS]
    assert "Количество запрашиваемых терминалов в одном пакете" in labels


@pytest.mark.parametrize("key, value, message", [
    (settings.BATCH_SIZE, "0", "от 1 до 1000"),
    (settings.BATCH_SIZE, "1001", "от 1 до 1000"),
    (settings.BATCH_SIZE, "пятьдесят", "целое число"),
    (settings.STOLOTO_URL, "ftp://x", "https://host:port"),
    (settings.READ_TIMEOUT, "-1", "от 0.1"),
])
def test_invalid_settings_save_nothing(ctx, key, value, message):
    with pytest.raises(SisError) as error:
        settings.save({settings.BATCH_SIZE: "70", key: value}, "admin")
    assert message in error.value.fields[key]
    assert settings.get(settings.BATCH_SIZE) == 50


def test_saved_setting_is_journaled(ctx):
    assert settings.save({settings.BATCH_SIZE: " 70 ", settings.READ_TIMEOUT: "12,5"}, "admin1") == [
        "Количество запрашиваемых терминалов в одном пакете", "Таймаут ответа HTTP, секунд"]
    assert settings.get(settings.BATCH_SIZE) == 70 and settings.get(settings.READ_TIMEOUT) == 12.5
    details = db.session.scalars(select(AuditEvent.details).where(AuditEvent.action == "Изменение настройки")).all()
    assert "Количество запрашиваемых терминалов в одном пакете: 70" in details


def test_settings_page_is_for_administrators(app, web):
    assert web("operator").get("/settings/").status_code == 403
    admin = web("admin")
    page = admin.get("/settings/").get_data(as_text=True)
    assert "Количество запрашиваемых терминалов в одном пакете" in page
    response = admin.post("/settings/", {settings.BATCH_SIZE: "5000"})
    assert "Допустимые значения: от 1 до 1000." in response.get_data(as_text=True)
    response = admin.post("/settings/", {settings.BATCH_SIZE: "25", settings.STOLOTO_URL: "",
                                         settings.STOLOTO_CA_BUNDLE: "", settings.REFILL_THRESHOLD: "10",
                                         settings.JOB_INTERVAL: "30", settings.CONNECT_TIMEOUT: "5",
                                         settings.READ_TIMEOUT: "30"}, follow_redirects=True)
    assert "Настройки сохранены" in response.get_data(as_text=True)
    with app.app_context():
        assert settings.get(settings.BATCH_SIZE) == 25


def test_cli_creates_users_from_stdin(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "kassir", "--role", "viewer", "--password-stdin"],
                           input="very-secret-1\n")
    assert result.exit_code == 0, result.output
    from stoloto.services.users import authenticate
    with app.app_context():
        assert authenticate("kassir", "very-secret-1", "127.0.0.1").role == "viewer"
    again = runner.invoke(args=["users", "create", "kassir", "--role", "viewer", "--password-stdin"],
                          input="very-secret-1\n")
    assert again.exit_code != 0 and "уже есть" in again.output
    short = runner.invoke(args=["users", "create", "x2", "--role", "admin", "--password-stdin"], input="short\n")
    assert short.exit_code != 0 and "не короче" in short.output


def test_cli_fetches_terminals_once(app, stand):
    from tests.factories import activated_contract
    with app.app_context():
        activated_contract(stand, "CLI-1")
    result = app.test_cli_runner().invoke(args=["terminals", "fetch"])
    assert result.exit_code == 0, result.output
    assert "CLI-1: получено 5" in result.output
