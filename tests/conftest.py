"""Fixtures: one migrated database per run (SQLite file, or TEST_DATABASE_URL), emptied after each test."""
import html
import os
import re
from datetime import date, datetime

import pytest
from flask_migrate import upgrade
from sqlalchemy import MetaData, create_engine, event, insert

from app import create_app
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import (
    ROLE_ADMIN,
    ROLE_OPERATOR,
    ROLE_VIEWER,
    AuditEvent,
    CashRegister,
    Contract,
    Store,
    Terminal,
    TerminalBatch,
)
from stoloto.services import stoloto_status, users

pytest_plugins = ["tests.stand_fixtures", "tests.setcentrum_fixtures", "tests.alert_receivers"]

TEST_SECRET = "test-secret-key-with-plenty-of-entropy-0123456789abcdef"
TEST_KEY_ENCRYPTION_KEY = "L4stQBP4j2OAK_997tpP0EMjeb98o_YYERjPriIxprw"  # base64url of 32 bytes
PASSWORD = "password-123"
TOKEN = "test-cash-api-token-0123456789"
URL = "/api/v1/cash-registers/registration"
FORBIDDEN = "Текст содержит недопустимый символ (нулевой байт). Удалите его и повторите."
# Pages without a login: the login itself, the probes (test_health) and the icon the login page shows (test_wording).
PUBLIC_ENDPOINTS = {"auth.login_view", "auth.index", "static", "admin.static", "health.healthz", "health.readyz",
                    "favicon"}


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


@pytest.fixture
def api(app, stand):
    """The cash-register API with its token set: api(body) posts a registration."""
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
    client = app.test_client()

    def post(body, token=TOKEN, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.post(URL, json=body, headers=headers, **kwargs)
    post.client = client
    return post


def flashed(response) -> list[str]:
    """The flashed messages on a page, as text."""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>|&times;", "", text)).strip()
            for text in re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>',
                                   response.get_data(as_text=True), re.S)]


def titles(page: str, testid: str) -> list[str]:
    """The <title>s of the chart or table marked `testid`, unescaped."""
    start = page.index(f'data-testid="{testid}"')
    end = page.index("</figure>", start) if "chart" in testid else page.index("</table>", start)
    return [html.unescape(t) for t in re.findall(r"<title[^>]*>([^<]*)</title>", page[start:end])]


def cell(page: str, testid: str) -> list[str]:
    return [html.unescape(v).strip() for v in re.findall(rf'data-testid="{testid}">([^<]*)<', page)]


def statements_run(app, call):
    """call()'s result and the SQL statements it ran."""
    statements = []
    with app.app_context():
        engine = db.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = call()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return response, statements


def count_queries(app, call):
    response, statements = statements_run(app, call)
    return response, len(statements)


def admin_urls(app, methods) -> list[str]:
    """Every panel URL answering one of `methods`, its arguments filled with 1."""
    urls = []
    for rule in app.url_map.iter_rules():
        # The cash-register API has its own bearer token and no CSRF (tested in test_cash_register_api);
        # /metrics answers loopback or METRICS_TOKEN, never a login (tested in test_metrics).
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.endswith(".static") or \
                rule.endpoint.startswith(("api.", "metrics.")):
            continue
        if not (set(methods) & rule.methods):
            continue
        values = {arg: "1" for arg in rule.arguments}
        urls.append(rule.build(values)[1] if values else rule.rule)
    assert len(urls) > 10
    return urls


@pytest.fixture
def many_registers(app):
    """Two «Активный» contracts, 60 stores and 180 registers (120 registered, 60 waiting); the contracts' ids."""
    with app.app_context():
        contracts = []
        for number in ("К-1", "К-2"):
            contract = Contract(number=number, status="active", agent_inn="7707083893")
            db.session.add(contract)
            db.session.flush()
            contracts.append(contract.id)
        batch = TerminalBatch(contract_id=contracts[0], request_id="00000000-0000-4000-8000-000000000001",
                              requested_count=300, status="done")
        db.session.add(batch)
        db.session.flush()
        db.session.execute(insert(Store), [{"code": str(100 + i), "contract_id": contracts[i % 2],
                                            "source": "set"} for i in range(60)])
        stores = dict(db.session.execute(db.select(Store.code, Store.id)).all())
        db.session.execute(insert(Terminal), [{"number": f"0{500000 + i}", "contract_id": contracts[0],
                                               "batch_id": batch.id, "status": "registered"} for i in range(120)])
        terminal_ids = [t for t, in db.session.execute(db.select(Terminal.id).order_by(Terminal.id))]
        db.session.execute(insert(CashRegister), [
            {"store_id": stores[str(100 + i % 60)], "cash_number": 1 + i // 60,
             "state": "registered" if i < 120 else "pending",
             "reason": None if i < 120 else "NO_FREE_TERMINALS",
             "terminal_id": terminal_ids[i] if i < 120 else None,
             "contract_id": contracts[(i % 60) % 2]} for i in range(180)])
        db.session.commit()
        return contracts


# For the date filters' tests (HTTP and browser): Moscow times of 15 January 2026 (UTC+3) and the journal line
# written at each, kept as UTC.
EVENTS = {"до начала": datetime(2026, 1, 15, 6, 59, 59), "в начале": datetime(2026, 1, 15, 7, 0, 0),
          "в середине": datetime(2026, 1, 15, 8, 15, 0), "в последнюю минуту": datetime(2026, 1, 15, 9, 0, 59),
          "после": datetime(2026, 1, 15, 9, 1, 0)}


@pytest.fixture
def journal(app):
    """«Журнал» lines written at each of EVENTS."""
    with app.app_context():
        db.session.add_all(AuditEvent(created_at=moment, actor="tester", object_type="contract", action="Проверка",
                                      result="ok", details=text) for text, moment in EVENTS.items())
        db.session.commit()


@pytest.fixture
def dated_contracts(app):
    with app.app_context():
        db.session.add_all(Contract(number=f"СТ-{day.day:02d}", contract_date=day, agent_inn="7707083893")
                           for day in (date(2026, 1, 14), date(2026, 1, 15), date(2026, 1, 16)))
        db.session.commit()
