"""Bad input in the panel (issue 10 §2): NUL bytes, ids out of range, forged rows — a Russian message, never a 500."""

import pytest
from sqlalchemy import func, select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store
from stoloto.services import contracts, stores
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.conftest import FORBIDDEN, csrf_token_from, flashed

NO_RECORD = "Запись не найдена."
NO_CONTRACT = "Договор не найден."
# Past PostgreSQL's integer (int4) and past its bigint (int8).
BIG = "99999999999"
HUGE = "9" * 25
NUL = "в\x00н"


@pytest.fixture
def rows(app):
    """One contract of each kind, a store, a cash register and their journal: ids by name."""
    with app.app_context():
        draft = contracts.create_contract(ContractInput(number="Ч-1"), "tester")
        created = contracts.create_contract(
            ContractInput(number="СТ-1", contract_date="15.01.2026", agent_inn="7707083893"), "tester")
        store = stores.create_store(StoreInput(code="101", contract_id=created.id, name="Угловой"), "tester")
        register = CashRegister(store_id=store.id, cash_number=1, serial_number="SN-0001", contract_id=created.id)
        db.session.add(register)
        db.session.commit()
        return {"draft": draft.id, "contract": created.id, "store": store.id, "register": register.id,
                "event": db.session.scalar(select(func.max(AuditEvent.id)))}


def everything(app) -> dict:
    """Every row of every table, to show that a refused request changed nothing."""
    with app.app_context():
        return {table.name: sorted(map(tuple, db.session.execute(table.select()).all()), key=repr)
                for table in db.metadata.sorted_tables}


def refused(response) -> bool:
    return response.status_code == 400 and FORBIDDEN in response.get_data(as_text=True)


# --- NUL bytes ---------------------------------------------------------------------------------

def test_nul_byte_in_the_login_form_is_refused_before_login(app, accounts):
    client = app.test_client()
    token = csrf_token_from(client.get("/auth/login").get_data(as_text=True))
    before = everything(app)
    for field in ("login", "password"):
        form = {"login": "admin1", "password": "password-123", "csrf_token": token, field: "admin1\x00"}
        assert refused(client.post("/auth/login", data=form)), field
    assert client.get("/contracts/").status_code == 302  # still signed out
    assert everything(app) == before


CONTRACT_FORM = {"number": "СТ-9", "contract_date": "15.01.2026", "agent_inn": "7707083893",
                 "agent_name": "ООО Ромашка", "comment": "новый"}
STORE_FORM = {"code": "202", "name": "Центральный", "address": "ул. Ленина, 1", "comment": "новый"}
USER_FORM = {"login": "operator2", "role": "operator", "password": "password-123456"}


def _form_posts(rows) -> list[tuple[str, dict]]:
    posts = []
    for field in CONTRACT_FORM:
        posts.append(("/contracts/new/", {**CONTRACT_FORM, field: NUL}))
        posts.append((f"/contracts/edit/?id={rows['contract']}", {**CONTRACT_FORM, field: NUL}))
    store_form = {**STORE_FORM, "contract_id": str(rows["contract"])}
    for field in store_form:
        posts.append(("/stores/new/", {**store_form, field: NUL}))
        posts.append((f"/stores/edit/?id={rows['store']}", {**store_form, field: NUL}))
    for field in USER_FORM:
        posts.append(("/users/new/", {**USER_FORM, field: NUL}))
    return posts


def test_nul_byte_in_any_contract_store_or_user_form_field_saves_nothing(app, web, rows):
    browser = web("admin")
    before = everything(app)
    for url, form in _form_posts(rows):
        assert refused(browser.post(url, form)), (url, form)
    assert everything(app) == before


def test_nul_byte_in_any_setting_saves_nothing(app, web):
    browser = web("admin")
    browser.get("/settings/")  # the first visit stores the cash API token
    before = everything(app)
    with app.app_context():
        keys = [definition.key for definition in settings.DEFINITIONS]
    for key in keys:
        assert refused(browser.post("/settings/", {key: "https://stoloto.example\x00"})), key
    assert everything(app) == before


def test_nul_byte_in_a_search_box_filter_or_address_is_refused(app, web, rows):
    browser = web("viewer")
    for url in ("/contracts/?search=%00", "/stores/?search=1%00", "/registers/?search=SN%00",
                "/journal/?search=%00", "/contracts/?flt0_0=created%00", "/stores/?flt0_1=set%00",
                "/registers/?flt0_2=101%00", "/journal/?flt0_0=tester%00", "/contracts/details/?id=1%00",
                "/stores/edit/?id=%00"):
        assert refused(browser.get(url)), url


# --- ids and numbers out of range ------------------------------------------------------------

def test_a_record_id_out_of_range_says_the_record_does_not_exist(app, web, rows):
    browser = web("admin")
    for url in ("/contracts/details/", "/contracts/edit/", "/stores/details/", "/stores/edit/",
                "/registers/details/", "/journal/details/"):
        for number in (BIG, HUGE):
            response = browser.get(f"{url}?id={number}")
            assert response.status_code == 302, url
            assert NO_RECORD in flashed(browser.get(response.headers["Location"])), url


def test_deleting_an_id_out_of_range_says_the_record_does_not_exist(app, web, rows):
    browser = web("operator")
    before = everything(app)
    for view in ("contracts", "stores"):
        for number in (BIG, HUGE):
            assert NO_RECORD in flashed(browser.post(f"/{view}/delete/", {"id": number}, follow_redirects=True))
    assert everything(app) == before


def test_contract_actions_on_an_id_out_of_range_say_the_contract_is_not_found(app, web, rows):
    browser = web("operator")
    before = everything(app)
    for number in (BIG, HUGE):
        assert NO_CONTRACT in flashed(browser.get(f"/contracts/appendix/?id={number}", follow_redirects=True))
        assert NO_CONTRACT in flashed(browser.post("/contracts/activate/", {"id": number}, follow_redirects=True))
    assert everything(app) == before


@pytest.fixture
def stand_page(app, monkeypatch):
    # The page shows only in demo mode; nothing here reaches the stand itself.
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", "https://127.0.0.1:9")


def test_stand_actions_on_an_id_out_of_range_say_the_contract_is_not_found(app, web, rows, stand_page):
    browser = web("operator")
    for what in ("register", "confirm"):
        for number in (BIG, HUGE):
            response = browser.post("/stand/act/", {"id": number, "what": what}, follow_redirects=True)
            assert NO_CONTRACT in flashed(response), (what, number)


def test_a_page_number_out_of_range_shows_the_first_page(app, web, rows):
    browser = web("admin")
    for view, first_row in (("contracts", "СТ-1"), ("stores", "Угловой"), ("registers", "SN-0001"),
                            ("users", "viewer1"), ("journal", "tester")):
        for page in ("-5", HUGE):
            response = browser.get(f"/{view}/?page={page}")
            assert response.status_code == 200 and first_row in response.get_data(as_text=True), (view, page)


def test_the_registers_contract_filter_ignores_a_number_out_of_range(app, web, rows):
    # Flask-Admin drops a filter value that does not validate, as it does for "abc".
    browser = web("viewer")
    for number in (BIG, HUGE, "-" + HUGE):
        response = browser.get(f"/registers/?flt0_3={number}")
        assert response.status_code == 200 and "SN-0001" in response.get_data(as_text=True), number


# --- «С отмеченными» → «Удалить» -------------------------------------------------------------------

def test_deleting_ticked_contracts_deletes_them(app, web, rows):
    with app.app_context():
        second = contracts.create_contract(ContractInput(number="Ч-2"), "tester").id
    response = web("operator").post("/contracts/action/", {"action": "delete", "rowid": [str(rows["draft"]),
                                                                                          str(second)]},
                                    follow_redirects=True)
    assert "Удалены 2 записи." in flashed(response)
    with app.app_context():
        assert db.session.scalars(select(Contract.number)).all() == ["СТ-1"]


def test_deleting_ticked_stores_deletes_them(app, web, rows):
    with app.app_context():
        db.session.execute(CashRegister.__table__.delete())
        db.session.commit()
        second = stores.create_store(StoreInput(code="102", contract_id=rows["contract"]), "tester").id
    response = web("operator").post("/stores/action/", {"action": "delete", "rowid": [str(rows["store"]),
                                                                                       str(second)]},
                                    follow_redirects=True)
    assert "Удалены 2 записи." in flashed(response)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Store)) == 0


def test_deleting_ticked_rows_that_cannot_exist_deletes_nothing(app, web, rows):
    browser = web("operator")
    before = everything(app)
    for view, real in (("contracts", rows["draft"]), ("stores", rows["store"])):
        for rowid in (BIG, HUGE, "1;DROP", "-1"):
            response = browser.post(f"/{view}/action/", {"action": "delete", "rowid": [str(real), rowid]},
                                    follow_redirects=True)
            assert "Неверный список отмеченных записей. Обновите страницу и отметьте записи снова." in \
                flashed(response), (view, rowid)
    assert everything(app) == before


# --- «Тестовый стенд» ----------------------------------------------------------------------------

def test_the_stand_page_does_not_offer_drafts(app, web, rows, stand_page):
    page = web("operator").get("/stand/").get_data(as_text=True)
    assert "СТ-1" in page and "Ч-1" not in page


def test_registering_a_draft_on_the_stand_is_refused(app, web, rows, stand_page):
    browser = web("operator")
    before = everything(app)
    response = browser.post("/stand/act/", {"id": str(rows["draft"]), "what": "register"}, follow_redirects=True)
    assert ("Действие «Зарегистрировать договор на стенде» невозможно: договор не заполнен (статус «Черновик»). "
            "Заполните номер, дату заключения и ИНН агента и сохраните договор.") in flashed(response)
    assert everything(app) == before


# --- every route -----------------------------------------------------------------------------

BAD_QUERIES = ["id=" + BIG, "id=" + HUGE, "id=-1", "id=%00", "page=-5", "page=" + HUGE, "page_size=" + HUGE,
               "sort=" + HUGE, "search=%00", "next=%00", "url=%00"] + \
              [f"flt0_{index}={value}" for index in range(8) for value in (BIG, HUGE, "-" + HUGE)]
BAD_FORMS = [{"id": BIG}, {"id": HUGE}, {"id": "1\x00"}, {"rowid": BIG, "action": "delete"},
             {"rowid": HUGE, "action": "bind"}, {"rowid": BIG, "action": "finish"}, {"ids": BIG},
             {"contract_id": HUGE}, {"what": "register", "id": HUGE}, {"list_form_pk": BIG, "name": "x"}]


def test_no_panel_route_answers_a_server_error_to_bad_input(app, web, rows, stand_page, monkeypatch):
    """Every route of app.url_map outside the API, with each bad query string and form."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)  # a 500 page, not an exception
    browser = web("admin")
    errors = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.arguments - {"export_type"} or "logout" in rule.rule:
            continue
        if rule.endpoint == "health.readyz":  # its 503 means "no job runner here", whatever the query
            continue
        url = rule.rule.replace("<export_type>", "csv")
        for query in BAD_QUERIES:
            if "GET" in rule.methods and browser.get(f"{url}?{query}").status_code >= 500:
                errors.append(f"GET {url}?{query}")
        for form in BAD_FORMS:
            if "POST" in rule.methods and browser.post(url, form).status_code >= 500:
                errors.append(f"POST {url} {form}")
    assert errors == []


# --- a contract number longer than its certificate's name can hold ---------------------------------

def test_a_contract_number_too_long_for_the_certificate_is_refused_and_saves_nothing(app, web, rows):
    # «SIS <номер>» is the CN of the contract's certificate request: 64 bytes of UTF-8 at most, so a
    # number of 40 Cyrillic letters (80 bytes) fits the column but not the certificate.
    operator = web("operator")
    before = everything(app)
    response = operator.post("/contracts/new/", {**CONTRACT_FORM, "number": "Д" * 40})
    assert response.status_code == 200
    assert "Номер договора слишком длинный для сертификата" in response.get_data(as_text=True)
    assert everything(app) == before


def test_the_longest_number_accepted_still_makes_its_key_and_certificate_request(app, web, rows):
    operator = web("operator")
    number = "Д" * 30  # 60 bytes: «SIS » and the number fill the 64 bytes exactly
    assert operator.post("/contracts/new/", {**CONTRACT_FORM, "number": number}).status_code == 302
    with app.app_context():
        contract_id = db.session.scalar(select(Contract.id).where(Contract.number == number))
    prepared = operator.post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert "Ожидание активации" in " ".join(flashed(prepared))
