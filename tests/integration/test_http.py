"""The admin over HTTP: login on every page, CSRF on every state change, roles, downloads."""
from urllib.parse import quote

from sqlalchemy import func, select

from stoloto.extensions import db
from stoloto.models import Contract
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import admin_urls

FORM = {"number": "СТ-2026/001", "contract_date": "15.01.2026", "agent_inn": "7707083893",
        "agent_name": "ООО Ромашка", "comment": ""}


def _contract(app, **overrides):
    with app.app_context():
        return contracts.create_contract(ContractInput(**{**FORM, **overrides}), "tester").id


def test_every_admin_page_requires_login(app):
    client = app.test_client()
    for url in admin_urls(app, ["GET"]):
        response = client.get(url)
        assert response.status_code in (302, 401, 403, 405), url
        if response.status_code == 302:
            assert "/auth/login" in response.headers["Location"], url


def test_every_state_change_requires_csrf(app, web):
    browser = web("admin")
    for url in admin_urls(app, ["POST"]):
        response = browser.client.post(url, data={"id": "1"})
        assert response.status_code == 400, url
        assert "CSRF" in response.get_data(as_text=True), url


def test_wrong_password_is_refused_in_russian(app, accounts):
    client = app.test_client()
    page = client.get("/auth/login").get_data(as_text=True)
    from tests.conftest import csrf_token_from
    response = client.post("/auth/login", data={"login": "operator1", "password": "nope",
                                                "csrf_token": csrf_token_from(page)})
    assert response.status_code == 200
    assert "Неверный логин или пароль" in response.get_data(as_text=True)


def test_login_does_not_redirect_off_site(app, accounts):
    client = app.test_client()
    from tests.conftest import PASSWORD, csrf_token_from
    page = client.get("/auth/login").get_data(as_text=True)
    response = client.post("/auth/login?next=https://evil.example/", data={
        "login": "operator1", "password": PASSWORD, "csrf_token": csrf_token_from(page)})
    assert response.headers["Location"] == "/"


def test_session_cookie_is_httponly_and_lax(app, accounts):
    client = app.test_client()
    from tests.conftest import PASSWORD, csrf_token_from
    page = client.get("/auth/login").get_data(as_text=True)
    response = client.post("/auth/login", data={"login": "operator1", "password": PASSWORD,
                                                "csrf_token": csrf_token_from(page)})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_operator_adds_a_contract_and_it_is_created(app, web):
    browser = web("operator")
    response = browser.post("/contracts/new/", FORM)
    assert response.status_code == 302
    with app.app_context():
        contract = db.session.scalar(select(Contract))
        assert contract.status == "created"
    listing = browser.get("/contracts/").get_data(as_text=True)
    assert "Создан" in listing and "СТ-2026/001" in listing and "15.01.2026" in listing


def test_invalid_form_shows_russian_errors_and_saves_nothing(app, web):
    browser = web("operator")
    response = browser.post("/contracts/new/", {**FORM, "agent_inn": "7707083894"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "не сходится контрольная сумма" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_viewer_cannot_act(app, web):
    contract_id = _contract(app)
    browser = web("viewer")
    assert "Активировать договор" not in browser.get("/contracts/").get_data(as_text=True)
    assert browser.post("/contracts/activate/", {"id": contract_id}).status_code == 403
    browser.post("/contracts/new/", {**FORM, "number": "X-2"})
    browser.post("/contracts/delete/", {"id": contract_id})
    browser.post(f"/contracts/edit/?id={contract_id}", {**FORM, "number": "X-3"})
    with app.app_context():
        rows = db.session.scalars(select(Contract)).all()
        assert [(c.number, c.status) for c in rows] == [("СТ-2026/001", "created")]


def test_viewer_cannot_see_users_page(app, web):
    assert web("viewer").get("/users/").status_code == 403
    assert web("operator").get("/users/").status_code == 403
    assert web("admin").get("/users/").status_code == 200


def test_activation_flashes_a_link_to_the_appendix(app, web):
    contract_id = _contract(app)
    browser = web("operator")
    response = browser.post("/contracts/activate/", {"id": contract_id, "url": "/contracts/"},
                            follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Ожидание активации" in page
    assert f"/contracts/appendix/?id={contract_id}" in page
    assert "Приложение к договору" in page


def test_double_activation_over_http_yields_one_key(app, web):
    contract_id = _contract(app)
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": contract_id})
    with app.app_context():
        first = db.session.get(Contract, contract_id).private_key_encrypted
    second = browser.post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    # The second click is now "Активация" (no Stoloto configured here): it never makes a new key.
    assert "Не задан адрес сервиса Столото" in second.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Contract, contract_id).private_key_encrypted == first


def test_activating_a_draft_is_refused_with_a_message(app, web):
    contract_id = _contract(app, agent_inn="")
    response = web("operator").post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert "договор не заполнен" in response.get_data(as_text=True)


def test_appendix_downloads_as_docx_with_a_russian_name(app, web):
    contract_id = _contract(app)
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": contract_id})
    response = web("viewer").get(f"/contracts/appendix/?id={contract_id}")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    disposition = response.headers["Content-Disposition"]
    assert "attachment" in disposition
    assert quote("Приложение_5_к_договору_СТ-2026_001.docx") in disposition
    assert response.data[:2] == b"PK"


def test_details_page_shows_fingerprint_and_history(app, web):
    contract_id = _contract(app)
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": contract_id})
    page = browser.get(f"/contracts/details/?id={contract_id}").get_data(as_text=True)
    assert "Отпечаток открытого ключа" in page and "BEGIN CERTIFICATE REQUEST" in page
    assert "Подготовка к активации" in page and "operator1" in page


def test_journal_is_read_only(app, web):
    browser = web("admin")
    page = browser.get("/journal/").get_data(as_text=True)
    assert "Вход в систему" in page
    assert browser.get("/journal/new/").status_code == 302
    assert browser.get("/journal/edit/?id=1").status_code == 302


def test_every_post_only_page_answers_get_with_405_and_an_allow_header(app, web):
    browser = web("viewer")
    rules = [rule for rule in app.url_map.iter_rules()
             if "GET" not in rule.methods and not rule.endpoint.startswith("api.")]
    assert len(rules) > 10
    for rule in rules:
        response = browser.get(rule.build({arg: "1" for arg in rule.arguments})[1])
        assert response.status_code == 405, rule.rule
        assert "Метод не разрешён" in response.get_data(as_text=True), rule.rule
        assert set(response.headers["Allow"].split(", ")) == rule.methods, rule.rule


def test_unknown_page_is_a_russian_404(app, web):
    response = web("viewer").get("/no-such-page")
    assert response.status_code == 404 and "Страница не найдена" in response.get_data(as_text=True)


def test_overview_shows_contracts_stores_and_registers(app, web):
    _contract(app)
    _contract(app, number="Ч-1", agent_inn="")
    page = web("viewer").get("/").get_data(as_text=True)
    assert "Договоры по статусам" in page and "Кассы" in page and "без договора" in page
    import re
    counts = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"text-right\">(\d+)</td>", page))
    assert counts["Создан"] == "1" and counts["Черновик"] == "1"
