"""Fixtures: one migrated database per run (SQLite file, or TEST_DATABASE_URL), emptied after each test."""
import os
import re

import pytest
from flask_migrate import upgrade
from sqlalchemy import MetaData, create_engine

from app import create_app
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import ROLE_ADMIN, ROLE_OPERATOR, ROLE_VIEWER
from stoloto.services import stoloto_status, users

pytest_plugins = ["tests.stand_fixtures", "tests.setcentrum_fixtures", "tests.alert_receivers"]

TEST_SECRET = "test-secret-key-with-plenty-of-entropy-0123456789abcdef"
TEST_KEY_ENCRYPTION_KEY = "L4stQBP4j2OAK_997tpP0EMjeb98o_YYERjPriIxprw"  # base64url of 32 bytes
PASSWORD = "password-123"


def _wipe(url: str) -> None:
    engine = create_engine(url)
    meta = MetaData()
    meta.reflect(engine)
    meta.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        _wipe(url)
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'sis-test.db'}"


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    application = create_app({
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": TEST_SECRET,
        "SIS_KEY_ENCRYPTION_KEY": TEST_KEY_ENCRYPTION_KEY,
        "TESTING": True,
        "SIS_BOOTSTRAP_ADMIN": False,
        "SIS_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
    })
    with application.app_context():
        upgrade()  # the committed migrations, not create_all: they are what production runs
    return application


@pytest.fixture(autouse=True)
def _empty_tables(request):
    yield
    if "app" not in request.fixturenames:
        return
    application = request.getfixturevalue("app")
    with application.app_context():
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()
    settings.forget()
    stoloto_status.forget()  # what this process remembers having written to the emptied table


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield
        db.session.rollback()


@pytest.fixture
def accounts(app):
    with app.app_context():
        for login, role in (("admin1", ROLE_ADMIN), ("operator1", ROLE_OPERATOR), ("viewer1", ROLE_VIEWER)):
            users.create_user(login, role, PASSWORD)
    return {"admin": "admin1", "operator": "operator1", "viewer": "viewer1"}


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or \
        re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Browser:
    """A logged-in Flask test client that knows its CSRF token."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def login(self, login: str, password: str = PASSWORD):
        page = self.client.get("/auth/login")
        response = self.client.post("/auth/login", data={
            "login": login, "password": password, "csrf_token": csrf_token_from(page.get_data(as_text=True))})
        self.token = csrf_token_from(self.client.get("/contracts/", follow_redirects=True).get_data(as_text=True)) \
            if response.status_code == 302 else None
        return response

    def post(self, url: str, data: dict | None = None, **kwargs):
        payload = dict(data or {})
        payload.setdefault("csrf_token", self.token)
        return self.client.post(url, data=payload, **kwargs)

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)


@pytest.fixture
def web(app, accounts):
    """Factory: web('operator') gives a client logged in with that role."""
    def make(role: str) -> Browser:
        browser = Browser(app.test_client())
        response = browser.login(accounts[role])
        assert response.status_code == 302, "login failed"
        return browser
    return make
