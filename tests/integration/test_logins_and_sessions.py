"""Logins and sessions: failed logins throttled across processes and journaled, sessions that end on the server."""
import os
import re
import stat
from datetime import timedelta

import pytest
import time_machine
import werkzeug.security
from flask_migrate import upgrade
from sqlalchemy import select

from app import create_app
from stoloto.extensions import db
from stoloto.models import AuditEvent, User
from tests.conftest import PASSWORD, TEST_SECRET, Browser, admin_urls, csrf_token_from

THROTTLED = re.compile(r"Слишком много неудачных попыток входа. Повторите через (\d+) минут")


def _attempt(client, login: str, password: str, address: str = "192.0.2.1", **headers):
    page = client.get("/auth/login", environ_base={"REMOTE_ADDR": address})
    return client.post("/auth/login", data={"login": login, "password": password,
                                            "csrf_token": csrf_token_from(page.get_data(as_text=True))},
                       environ_base={"REMOTE_ADDR": address}, headers=headers)


def _fail(client, times: int, login: str = "operator1", address: str = "192.0.2.1") -> None:
    for _ in range(times):
        assert _attempt(client, login, "wrong-password", address).status_code == 200


def _journal(app) -> list[AuditEvent]:
    with app.app_context():
        return db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()


def test_ten_failures_for_one_login_refuse_the_next_attempt_with_429(app, accounts):
    client = app.test_client()
    for number in range(10):  # from ten addresses: the login's own count stops the eleventh
        _fail(client, 1, address=f"192.0.2.{number + 1}")
    response = _attempt(client, "operator1", PASSWORD, address="198.51.100.9")
    assert response.status_code == 429
    minutes = THROTTLED.search(response.get_data(as_text=True))
    assert minutes and 1 <= int(minutes.group(1)) <= 15
    assert _attempt(client, "admin1", PASSWORD, address="198.51.100.9").status_code == 302


def test_ten_failures_from_one_address_refuse_any_login_from_it(app, accounts):
    client = app.test_client()
    for number in range(10):
        _fail(client, 1, login=f"nobody{number}", address="192.0.2.50")
    assert _attempt(client, "operator1", PASSWORD, address="192.0.2.50").status_code == 429
    assert _attempt(client, "operator1", PASSWORD, address="192.0.2.51").status_code == 302


def test_nine_failures_still_let_the_right_password_in(app, accounts):
    client = app.test_client()
    _fail(client, 9)
    assert _attempt(client, "operator1", PASSWORD).status_code == 302


def test_the_limit_holds_across_processes(app, accounts, database_url):
    # A second application on the same database stands for another gunicorn worker.
    other = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": TEST_SECRET, "TESTING": True,
                        "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": app.config["SIS_INSTANCE_PATH"],
                        # the same key as the first, or the second would write one into their shared instance/
                        "SIS_KEY_ENCRYPTION_KEY": app.config["SIS_KEY_ENCRYPTION_KEY"]})
    _fail(app.test_client(), 5)
    _fail(other.test_client(), 5)
    assert _attempt(app.test_client(), "operator1", PASSWORD).status_code == 429
    assert _attempt(other.test_client(), "operator1", PASSWORD).status_code == 429
    with other.app_context():
        db.engine.dispose()


def test_every_failed_login_is_journaled_without_the_password(app, accounts):
    client = app.test_client()
    _attempt(client, "operator1", "secret-guess-1", address="203.0.113.5")
    _attempt(client, "no-such-user", "secret-guess-2", address="203.0.113.6")
    rows = [row for row in _journal(app) if row.action == "Неудачный вход"]
    assert [(row.result, row.actor) for row in rows] == [("error", "аноним"), ("error", "аноним")]
    assert "«operator1»" in rows[0].details and "203.0.113.5" in rows[0].details
    assert "«no-such-user»" in rows[1].details and "203.0.113.6" in rows[1].details
    everything = " ".join(f"{row.actor} {row.action} {row.details}" for row in _journal(app))
    assert "secret-guess" not in everything


def test_an_unknown_login_checks_a_password_hash_as_a_known_one_does(app, accounts, monkeypatch):
    checks = []
    real = werkzeug.security.check_password_hash

    def counting(pwhash, password):
        checks.append(pwhash)
        return real(pwhash, password)
    monkeypatch.setattr(werkzeug.security, "check_password_hash", counting)
    client = app.test_client()
    _attempt(client, "operator1", "wrong-password")
    known = len(checks)
    _attempt(client, "no-such-user", "wrong-password")
    assert known == 1 and len(checks) == 2
    method = re.compile(r"^[^$]+")  # the same algorithm and cost, so the same time
    assert method.match(checks[0]).group() == method.match(checks[1]).group()


def _session_cookie(client) -> str:
    return client.get_cookie("session").value


def _with_cookie(app, value: str):
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def test_logout_ends_the_session_for_a_copy_of_its_cookie(app, web):
    browser = web("operator")
    copy = _session_cookie(browser.client)
    assert _with_cookie(app, copy).get("/contracts/").status_code == 200
    assert browser.post("/auth/logout").status_code == 302
    response = _with_cookie(app, copy).get("/contracts/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_logout_in_one_browser_leaves_the_users_other_sessions_alone(app, web):
    office, home = web("operator"), web("operator")
    assert home.post("/auth/logout").status_code == 302
    assert home.get("/contracts/").status_code == 302
    assert office.get("/contracts/").status_code == 200


def test_a_login_lasts_seven_days_at_most(app, accounts):
    with time_machine.travel("2026-11-01 09:00 +0000", tick=False) as clock:
        browser = Browser(app.test_client())
        assert browser.login("operator1").status_code == 302
        clock.shift(timedelta(days=6, hours=23))
        assert browser.get("/contracts/").status_code == 200
        clock.shift(timedelta(hours=2))
        assert browser.get("/contracts/").status_code == 302


def test_a_password_change_ends_every_session_of_the_user_but_not_of_others(app, web):
    first, second, admin = web("operator"), web("operator"), web("admin")
    assert _edit_user(admin, "operator1", password="brand-new-password").status_code == 302
    assert first.get("/contracts/").status_code == 302 and second.get("/contracts/").status_code == 302
    assert admin.get("/contracts/").status_code == 200


def _edit_user(admin: Browser, login: str, **fields):
    with admin.client.application.app_context():
        user = db.session.scalar(select(User).where(User.login == login))
    form = {"role": user.role, "password": "", **fields}
    if form.pop("active", True):
        form["active"] = "y"
    return admin.post(f"/users/edit/?id={user.id}", data=form)


def test_deactivating_a_user_ends_their_sessions(app, web):
    operator, admin = web("operator"), web("admin")
    response = _edit_user(admin, "operator1", active=False)
    assert response.status_code == 302
    assert operator.get("/contracts/").status_code == 302
    assert Browser(app.test_client()).login("operator1").status_code == 200  # and it cannot log in again


def test_changing_a_password_in_the_panel_ends_the_sessions(app, web):
    operator, admin = web("operator"), web("admin")
    assert _edit_user(admin, "operator1", password="brand-new-password").status_code == 302
    assert operator.get("/contracts/").status_code == 302
    assert Browser(app.test_client()).login("operator1", "brand-new-password").status_code == 302


def test_a_short_new_password_is_refused_and_changes_nothing(app, web):
    operator, admin = web("operator"), web("admin")
    response = _edit_user(admin, "operator1", password="short")
    assert "Пароль не короче 8 символов." in response.get_data(as_text=True)
    assert operator.get("/contracts/").status_code == 200


def test_cli_password_change_and_deactivation_end_the_sessions(app, web):
    operator = web("operator")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "set-password", "operator1", "--password-stdin"],
                           input="another-password\n")
    assert result.exit_code == 0, result.output
    assert "operator1" in result.output
    assert operator.get("/contracts/").status_code == 302
    operator = Browser(app.test_client())
    assert operator.login("operator1", "another-password").status_code == 302
    result = runner.invoke(args=["users", "disable", "operator1"])
    assert result.exit_code == 0, result.output
    assert operator.get("/contracts/").status_code == 302
    assert runner.invoke(args=["users", "disable", "nobody"]).exit_code != 0


PANEL_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "same-origin"}


def test_every_panel_page_carries_the_security_headers(app, web):
    admin = web("admin")
    for url in [*admin_urls(app, ["GET"]), "/auth/login", "/no-such-page"]:
        response = admin.get(url)
        for name, value in PANEL_HEADERS.items():
            assert response.headers.get(name) == value, (url, name)
        policy = response.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy and "script-src 'self' 'nonce-" in policy, url
        assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0], url


def test_a_page_gets_a_fresh_nonce_on_its_scripts(app, web):
    admin = web("admin")
    nonces = []
    for _ in range(2):
        response = admin.get("/contracts/")
        nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
        assert f'nonce="{nonce}"' in response.get_data(as_text=True)
        nonces.append(nonce)
    assert nonces[0] != nonces[1]


def _app_on(tmp_path, **overrides):
    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'sis.db'}", "SECRET_KEY": TEST_SECRET,
                       "TESTING": True, "SIS_BOOTSTRAP_ADMIN": False, "SIS_INSTANCE_PATH": str(tmp_path),
                       **overrides})


@pytest.mark.parametrize("behind_proxy", ["1", "0"])
def test_behind_a_proxy_the_forwarded_address_counts_and_the_cookie_is_secure(tmp_path, monkeypatch,
                                                                             behind_proxy):
    monkeypatch.setenv("SIS_BEHIND_PROXY", behind_proxy)
    application = _app_on(tmp_path)
    with application.app_context():
        upgrade()
        from stoloto.services import users
        users.create_user("operator1", "operator", PASSWORD)
    assert application.config["SESSION_COOKIE_SECURE"] is (behind_proxy == "1")
    client = application.test_client()
    # Browsers send a same-origin Referer (Referrer-Policy: same-origin); CSRF checks it over HTTPS.
    forwarded = {"X-Forwarded-For": "203.0.113.77", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "sis.example",
                 "Referer": "https://sis.example/auth/login"}
    _attempt(client, "operator1", "wrong-password", address="10.0.0.2", **forwarded)
    failed = [row for row in _journal(application) if row.action == "Неудачный вход"]
    assert ("203.0.113.77" in failed[0].details) is (behind_proxy == "1")
    assert ("10.0.0.2" in failed[0].details) is (behind_proxy == "0")
    response = _attempt(client, "operator1", PASSWORD, address="10.0.0.2", **forwarded)
    assert ("Secure" in response.headers["Set-Cookie"]) is (behind_proxy == "1")
    with application.app_context():
        db.engine.dispose()


def test_the_sqlite_database_and_its_wal_files_are_private(tmp_path):
    application = _app_on(tmp_path)
    with application.app_context():
        upgrade()
        db.session.execute(select(User)).all()
        files = [tmp_path / name for name in ("sis.db", "sis.db-wal", "sis.db-shm")]
        assert all(path.exists() for path in files)
        modes = {path.name: oct(stat.S_IMODE(os.stat(path).st_mode)) for path in files}
        db.engine.dispose()
    assert modes == {"sis.db": "0o600", "sis.db-wal": "0o600", "sis.db-shm": "0o600"}
