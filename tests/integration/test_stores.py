"""The manual's "Заведение списка магазинов" and "Привязка магазинов к договору", against the SET Centrum stand."""
import html
import json
import re
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import event, func, insert, select

from stoloto import settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store
from stoloto.services import contracts, stores
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.conftest import flashed

CONTRACT = dict(number="СТ-2026/001", contract_date="15.01.2026", agent_inn="7707083893")


def make_contract(number: str = CONTRACT["number"]) -> Contract:
    return contracts.create_contract(ContractInput(**{**CONTRACT, "number": number}), "tester")


def add_store(code: str, contract: Contract | None = None, **extra) -> Store:
    contract = contract or db.session.scalar(select(Contract)) or make_contract()
    return stores.create_store(StoreInput(code=code, contract_id=contract.id, **extra), "tester")


def snapshot() -> list[tuple]:
    rows = db.session.execute(select(Store.code, Store.name, Store.address, Store.source, Store.contract_id,
                                     Store.comment, Store.updated_at).order_by(Store.code))
    return [tuple(row) for row in rows]


def count_stores() -> int:
    return db.session.scalar(select(func.count()).select_from(Store))


def filter_options(page: str) -> dict[str, list]:
    """Flask-Admin's filter groups, as the page hands them to its script: name → [[value, label], ...]."""
    data = json.loads(html.unescape(re.search(r'id="filter-groups-data"[^>]*>(.*?)</div>', page, re.S).group(1)))
    return {name: group[0]["options"] for name, group in data.items()}


# --- "Импорт списка магазинов из SetCentrum10" ------------------------------------------------

def test_import_adds_every_set_store_named_after_its_code(ctx, setcentrum):
    assert stores.import_from_set("tester") == 40
    listed = {str(shop["number"]): shop for shop in setcentrum.listed()}
    saved = db.session.scalars(select(Store)).all()
    assert {store.code for store in saved} == set(listed) == {str(n) for n in range(101, 141)}
    for store in saved:
        assert store.name == f"Магазин №{store.code}"
        assert store.address == listed[store.code].get("address")
        assert store.source == "set" and store.contract_id is None
    assert any(store.address is None for store in saved) and any(store.address for store in saved)
    journal = db.session.scalars(select(AuditEvent).where(AuditEvent.object_type == "store")).all()
    assert [(e.action, e.result) for e in journal] == [("Загрузка списка магазинов", "ok")]
    assert "Загружено 40 магазинов" in journal[0].details


def test_second_import_loads_zero_stores(ctx, setcentrum):
    assert stores.import_from_set("tester") == 40
    before = snapshot()
    assert stores.import_from_set("tester") == 0
    assert stores.loaded_message(0) == "Загружено 0 магазинов"
    assert snapshot() == before


def test_import_adds_only_the_new_stores_when_set_grows(ctx, setcentrum):
    stores.import_from_set("tester")
    setcentrum.shops(45)
    assert stores.import_from_set("tester") == 5
    assert count_stores() == 45


def test_import_never_changes_existing_stores(ctx, setcentrum):
    contract = make_contract()
    add_store("101", contract, name="Мой магазин", address="мой адрес", comment="заведён вручную")
    stores.import_from_set("tester")
    renamed = db.session.scalar(select(Store).where(Store.code == "102"))
    renamed.name, renamed.address = "Переименован", "новый адрес"
    db.session.commit()
    before = snapshot()
    setcentrum.shops(42)
    assert stores.import_from_set("tester") == 2
    after = {row[0]: row for row in snapshot()}
    assert all(after[row[0]] == row for row in before)
    manual = db.session.scalar(select(Store).where(Store.code == "101"))
    assert (manual.name, manual.address, manual.source, manual.contract_id) == (
        "Мой магазин", "мой адрес", "manual", contract.id)


def test_import_racing_another_import_adds_the_rest(ctx, setcentrum):
    """Another process adds store 105 after our known-codes query: the unique code stops our insert (INSERT on
    SQLite, COPY on PostgreSQL); we retry."""
    raced = []

    def someone_else_inserts(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT stores.code") and not raced:
            raced.append(True)
            with db.engine.begin() as other:
                other.execute(insert(Store.__table__).values(code="105", name="чужой", source="manual",
                                                             created_at=datetime(2026, 1, 1),
                                                             updated_at=datetime(2026, 1, 1)))
    event.listen(db.engine, "after_cursor_execute", someone_else_inserts)
    try:
        assert stores.import_from_set("tester") == 39
    finally:
        event.remove(db.engine, "after_cursor_execute", someone_else_inserts)
    assert raced and count_stores() == 40
    assert db.session.scalar(select(Store.name).where(Store.code == "105")) == "чужой"


def test_duplicate_numbers_in_one_answer_count_once(ctx, setcentrum):
    setcentrum.fault("duplicates")
    assert stores.import_from_set("tester") == 40
    assert count_stores() == 40


def test_empty_store_list_loads_zero(ctx, setcentrum):
    setcentrum.shops(0)
    assert stores.import_from_set("tester") == 0


FAULTS = [
    ({"kind": "status", "status": 503}, "вернул ошибку HTTP 503"),
    ({"kind": "status", "status": 500}, "вернул ошибку HTTP 500"),
    ({"kind": "status", "status": 404}, "вернул ошибку HTTP 404"),
    ({"kind": "html502"}, "вернул ошибку HTTP 502"),
    ({"kind": "garbage"}, "не в формате JSON"),
    ({"kind": "truncated"}, "не в формате JSON"),
    ({"kind": "malformed"}, "не в формате JSON"),
    *[({"kind": "shape", "variant": variant}, "в ответе сервера SET Centrum нет списка магазинов (shops)")
      for variant in ("list", "null", "absent", "object")],
    ({"kind": "drop"}, "разорвал соединение"),
    ({"kind": "delay", "seconds": 2}, "не ответил за 0.5 с"),
    *[({"kind": "bad_shop", "variant": variant}, "у 41-го магазина в списке")
      for variant in ("string", "missing", "zero", "negative", "float", "bool", "null", "int8")],
    ({"kind": "bad_shop", "variant": "nul_name"}, "у 41-го магазина в списке поле name содержит нулевой байт"),
    ({"kind": "bad_shop", "variant": "nul_address"},
     "у 41-го магазина в списке поле address содержит нулевой байт"),
    ({"kind": "bad_shop", "variant": "surrogate_address"},
     "у 41-го магазина в списке поле address содержит недопустимый символ"),
]


@pytest.mark.parametrize("fault, reason", FAULTS, ids=[f"{f['kind']}-{f.get('variant', f.get('status', ''))}"
                                                        for f, _ in FAULTS])
def test_any_set_failure_adds_nothing_and_says_why(ctx, setcentrum, fault, reason):
    add_store("101", name="Был до загрузки")
    settings.save({settings.READ_TIMEOUT: 0.5}, "test")
    before = snapshot()
    setcentrum.fault(**fault)
    with pytest.raises(SisError) as caught:
        stores.import_from_set("tester")
    message = str(caught.value)
    assert message.startswith("Не удалось загрузить список магазинов из SET Centrum: ")
    assert reason in message
    assert "Магазины не добавлены" in message
    assert snapshot() == before
    failed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "Загрузка списка магазинов"))
    assert failed.result == "error" and reason in failed.details
    # The fault was one call: the next import works.
    assert stores.import_from_set("tester") == 39


def test_an_answer_cut_off_after_thousands_of_good_shops_adds_none_of_them(ctx, setcentrum):
    """The answer is read as a stream: the good shops before the cut are read before the cut is seen."""
    setcentrum.shops(30_000)
    for kind in ("truncated", "malformed"):
        setcentrum.fault(kind)
        with pytest.raises(SisError, match="ответ сервера SET Centrum не в формате JSON"):
            stores.import_from_set("tester")
        assert count_stores() == 0
    assert stores.import_from_set("tester") == 30_000


def test_escapes_in_a_streamed_answer_are_read_as_json_says(ctx, setcentrum):
    """A surrogate pair is one character; a backslash escaped before "ud800" is text, not a lone surrogate."""
    setcentrum.fault("escapes")
    assert stores.import_from_set("tester") == 41
    assert db.session.scalar(select(Store.address).where(Store.code == "141")) == "г. Тверь \U0001f600 \\ud800"


def test_bad_shop_messages_name_the_bad_number(ctx, setcentrum):
    setcentrum.fault("bad_shop", variant="bool")
    with pytest.raises(SisError, match=r"некорректный номер \(number = true\)"):
        stores.import_from_set("tester")
    setcentrum.fault("bad_shop", variant="missing")
    with pytest.raises(SisError, match=r"нет номера \(number\)"):
        stores.import_from_set("tester")
    assert count_stores() == 0


def test_unreachable_set_is_explained(ctx, setcentrum):
    settings.save({settings.SET_CENTRUM_URL: "http://127.0.0.1:1"}, "test")
    with pytest.raises(SisError, match="сервер SET Centrum недоступен"):
        stores.import_from_set("tester")
    assert count_stores() == 0


def test_import_without_the_set_address_says_where_to_set_it(ctx, setcentrum):
    settings.save({settings.SET_CENTRUM_URL: ""}, "test")
    with pytest.raises(SisError) as caught:
        stores.import_from_set("tester")
    assert "«Настройки» → «Адрес сервера SET Centrum»" in caught.value.hint


def test_import_does_not_follow_redirects(ctx, setcentrum):
    settings.save({settings.SET_CENTRUM_URL: setcentrum.url + "/api"}, "test")  # 404, not a redirect, at the stand
    with pytest.raises(SisError, match="HTTP 404"):
        stores.import_from_set("tester")


def test_import_inserts_in_bulk_with_one_query_for_known_codes(ctx, setcentrum):
    setcentrum.shops(3000)
    statements = []
    listener = lambda *args: statements.append(args[2].split()[0].upper())  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert stores.import_from_set("tester") == 3000
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    # executemany: one INSERT statement for the stores (plus the journal row), not 3000.
    assert statements.count("INSERT") <= 3
    assert statements.count("SELECT") <= 3


# --- "Ручное добавление магазинов" ------------------------------------------------------------

def test_manual_store_needs_only_code_and_contract(ctx):
    contract = make_contract()
    store = stores.create_store(StoreInput(code="  205 ", contract_id=str(contract.id)), "tester")
    assert (store.code, store.contract_id, store.source, store.name) == ("205", contract.id, "manual", None)
    journal = db.session.scalar(select(AuditEvent).where(AuditEvent.object_type == "store"))
    assert journal.action == "Добавление магазина" and "205" in journal.details


def test_manual_store_keeps_optional_requisites(ctx):
    store = add_store("206", name=" Гастроном ", address="г. Тверь", comment="у вокзала")
    assert (store.name, store.address, store.comment) == ("Гастроном", "г. Тверь", "у вокзала")


@pytest.mark.parametrize("code, message", [
    ("", "Укажите код магазина."),
    ("   ", "Укажите код магазина."),
    ("12a", "только цифры"),
    ("магазин", "только цифры"),
    ("1 2", "только цифры"),
    ("-5", "только цифры"),
    ("١٢٣", "только цифры"),
    ("0", "не может начинаться с нуля"),
    ("0101", "не может начинаться с нуля"),
    ("12345678901234567", "не длиннее 16 цифр"),
])
def test_store_code_is_digits_as_in_set(ctx, code, message):
    contract = make_contract()
    with pytest.raises(SisError) as caught:
        stores.create_store(StoreInput(code=code, contract_id=contract.id), "tester")
    assert message in caught.value.fields["code"]
    assert count_stores() == 0


def test_sixteen_digit_code_is_accepted(ctx):
    assert add_store("1234567890123456").code == "1234567890123456"


def test_duplicate_code_is_refused(ctx):
    add_store("101")
    with pytest.raises(SisError) as caught:
        add_store(" 101 ")
    assert caught.value.fields == {"code": "Магазин с кодом 101 уже есть."}
    assert count_stores() == 1


def test_duplicate_code_from_a_race_is_refused_by_the_database(ctx, monkeypatch):
    add_store("101")
    monkeypatch.setattr(stores, "_code_taken", lambda code, editing: False)  # both checked before either saved
    with pytest.raises(SisError) as caught:
        add_store("101")
    assert caught.value.fields == {"code": "Магазин с кодом 101 уже есть."}
    assert count_stores() == 1


def test_manual_store_needs_a_contract(ctx):
    with pytest.raises(SisError) as caught:
        stores.create_store(StoreInput(code="101"), "tester")
    assert caught.value.fields == {"contract_id": "Выберите договор."}
    with pytest.raises(SisError) as caught:
        stores.create_store(StoreInput(code="101", contract_id="999999"), "tester")
    assert "Такого договора нет" in caught.value.fields["contract_id"]
    assert count_stores() == 0


def test_all_field_errors_are_reported_at_once(ctx):
    with pytest.raises(SisError) as caught:
        stores.create_store(StoreInput(code="abc", name="н" * 256, address="а" * 501), "tester")
    assert set(caught.value.fields) == {"code", "contract_id", "name", "address"}


def test_imported_store_without_contract_can_be_edited_but_a_bound_one_cannot_lose_it(ctx, setcentrum):
    stores.import_from_set("tester")
    store = db.session.scalar(select(Store).where(Store.code == "101"))
    stores.update_store(store, StoreInput(code="101", comment="у рынка", name=store.name), "tester")
    assert store.comment == "у рынка" and store.source == "set"
    contract = make_contract()
    stores.update_store(store, StoreInput(code="101", contract_id=contract.id), "tester")
    with pytest.raises(SisError) as caught:
        stores.update_store(store, StoreInput(code="101"), "tester")
    assert caught.value.fields == {"contract_id": "Выберите договор."}


def test_editing_to_a_taken_code_is_refused(ctx):
    add_store("101")
    other = add_store("102")
    with pytest.raises(SisError) as caught:
        stores.update_store(other, StoreInput(code="101", contract_id=other.contract_id), "tester")
    assert caught.value.fields == {"code": "Магазин с кодом 101 уже есть."}
    db.session.refresh(other)
    assert other.code == "102"


def test_store_whose_registers_called_keeps_its_code_and_is_not_deleted(ctx):
    store = add_store("101")
    db.session.add(CashRegister(store_id=store.id, cash_number=1))
    db.session.commit()
    with pytest.raises(SisError) as caught:
        stores.update_store(store, StoreInput(code="777", contract_id=store.contract_id), "tester")
    assert "Код магазина нельзя изменить" in caught.value.fields["code"]
    with pytest.raises(SisError, match="удалить нельзя"):
        stores.delete_store(store, "tester")
    assert db.session.get(Store, store.id).code == "101"


# --- "Привязка магазинов к договору" ----------------------------------------------------------

def test_bind_stores_is_one_update_and_journaled(ctx, setcentrum):
    stores.import_from_set("tester")
    contract = make_contract()
    ids = db.session.scalars(select(Store.id).where(Store.code.in_(["101", "102", "103"]))).all()
    assert stores.bind_stores(ids, contract.id, "tester") == 3
    bound = db.session.scalars(select(Store.code).where(Store.contract_id == contract.id)).all()
    assert sorted(bound) == ["101", "102", "103"]
    assert db.session.scalar(select(func.count()).select_from(Store).where(Store.contract_id.is_(None))) == 37
    journal = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "Привязать магазины к договору"))
    assert journal.details == "Привязано к договору № СТ-2026/001: 3 магазина; коды: 101, 102, 103"


def test_bind_stores_moves_stores_to_another_contract(ctx):
    first, second = make_contract("A-1"), make_contract("A-2")
    store = add_store("101", first)
    assert stores.bind_stores([store.id], second.id, "tester") == 1
    db.session.refresh(store)
    assert store.contract_id == second.id


def test_bind_stores_needs_stores_and_a_contract(ctx):
    store = add_store("101")
    with pytest.raises(SisError, match="Не отмечено ни одного магазина"):
        stores.bind_stores([], store.contract_id, "tester")
    with pytest.raises(SisError) as caught:
        stores.bind_stores([store.id], None, "tester")
    assert caught.value.fields == {"contract_id": "Выберите договор из списка."}
    with pytest.raises(SisError):
        stores.bind_stores(["1; DROP TABLE stores"], store.contract_id, "tester")
    with pytest.raises(SisError):  # beyond INTEGER: refused before PostgreSQL would overflow
        stores.bind_stores(["99999999999999999999"], store.contract_id, "tester")
    with pytest.raises(SisError) as caught:
        stores.bind_stores([store.id], "99999999999999999999", "tester")
    assert caught.value.fields == {"contract_id": "Выберите договор из списка."}


def test_a_draft_contract_is_offered_by_its_draft_name(ctx):
    draft = contracts.create_contract(ContractInput(number="", agent_name="ООО Ромашка"), "tester")
    store = add_store("101", make_contract())
    assert (draft.id, f"Черновик #{draft.id} — Черновик") in stores.contract_choices()
    assert stores.bind_stores([store.id], draft.id, "tester") == 1
    assert stores.bound_message(1, draft) == f"Привязано к договору Черновик #{draft.id}: 1 магазин"


# --- over HTTP --------------------------------------------------------------------------------

def test_operator_loads_the_store_list_after_confirming(app, web, setcentrum):
    browser = web("operator")
    listing = browser.get("/stores/").get_data(as_text=True)
    assert "Загрузка списка магазинов" in listing
    confirm = browser.get("/stores/import/").get_data(as_text=True)
    assert "только новые магазины" in confirm and setcentrum.url in confirm
    with app.app_context():
        assert count_stores() == 0  # asking for confirmation changes nothing
    response = browser.post("/stores/import/", follow_redirects=True)
    assert "Загружено 40 магазинов." in flashed(response)
    assert "Магазин №101" in response.get_data(as_text=True)
    again = browser.post("/stores/import/", follow_redirects=True)
    assert "Загружено 0 магазинов." in flashed(again)


def test_failed_import_is_shown_as_an_error(app, web, setcentrum):
    setcentrum.fault("garbage")
    response = web("admin").post("/stores/import/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "alert-danger" in page
    assert any("не в формате JSON" in text for text in flashed(response))
    with app.app_context():
        assert count_stores() == 0


def test_import_requires_csrf(app, web, setcentrum):
    browser = web("operator")
    response = browser.client.post("/stores/import/")
    assert response.status_code == 400
    with app.app_context():
        assert count_stores() == 0


def test_viewer_sees_stores_but_cannot_act(app, web, setcentrum):
    with app.app_context():
        stores.import_from_set("tester")
        contract_id = make_contract().id
        store_id = db.session.scalar(select(Store.id).where(Store.code == "101"))
    viewer = web("viewer")
    listing = viewer.get("/stores/").get_data(as_text=True)
    assert "Магазин №101" in listing
    for hidden in ("Загрузка списка магазинов", "Привязать магазины к договору", "/stores/new/", "action-checkbox"):
        assert hidden not in listing
    assert viewer.get("/stores/import/").status_code == 403
    assert viewer.post("/stores/import/").status_code == 403
    assert viewer.get(f"/stores/bind/?ids={store_id}").status_code == 403
    assert viewer.post("/stores/bind/", {"ids": str(store_id), "contract_id": contract_id}).status_code == 403
    assert viewer.post("/stores/action/", {"action": "bind", "rowid": [str(store_id)]}).status_code == 403
    viewer.post("/stores/new/", {"code": "999", "contract_id": contract_id})
    viewer.post("/stores/delete/", {"id": store_id})
    with app.app_context():
        assert count_stores() == 40
        assert db.session.get(Store, store_id).contract_id is None


def test_operator_adds_a_store_with_the_form(app, web):
    with app.app_context():
        contract_id = make_contract().id
    browser = web("operator")
    form = browser.get("/stores/new/").get_data(as_text=True)
    for label in ("Код магазина", "Договор", "Наименование", "Адрес", "Комментарий", "№ СТ-2026/001"):
        assert label in form
    response = browser.post("/stores/new/", {"code": "205", "contract_id": str(contract_id), "name": "Гастроном",
                                             "address": "г. Тверь", "comment": ""})
    assert response.status_code == 302
    listing = browser.get("/stores/").get_data(as_text=True)
    assert "205" in listing and "Гастроном" in listing and "СТ-2026/001" in listing and "вручную" in listing


@pytest.mark.parametrize("form, message", [
    ({"code": "", "contract_id": "{contract}"}, "Укажите код магазина."),
    ({"code": "12б", "contract_id": "{contract}"}, "Код магазина — только цифры, как номер магазина в SET."),
    ({"code": "101", "contract_id": "{contract}"}, "Магазин с кодом 101 уже есть."),
    ({"code": "300", "contract_id": ""}, "Выберите договор."),
])
def test_form_errors_are_russian_and_save_nothing(app, web, form, message):
    with app.app_context():
        store = add_store("101")
        contract_id = store.contract_id
    payload = {name: value.replace("{contract}", str(contract_id)) for name, value in form.items()}
    response = web("operator").post("/stores/new/", payload)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert count_stores() == 1


def _ticked(app, codes) -> list[str]:
    with app.app_context():
        return [str(i) for i in db.session.scalars(select(Store.id).where(Store.code.in_(codes)))]


def test_operator_binds_ticked_stores_to_a_contract(app, web, setcentrum):
    with app.app_context():
        stores.import_from_set("tester")
        make_contract("Д-1")
        contract_id = make_contract().id
    ticked = _ticked(app, ["101", "105", "110"])
    browser = web("operator")
    action = browser.post("/stores/action/", {"action": "bind", "rowid": ticked, "url": "/stores/?page=0"})
    assert action.status_code == 302
    form_url = action.headers["Location"]
    assert form_url.startswith("/stores/bind/")
    form = browser.get(form_url).get_data(as_text=True)
    assert "Привязать магазины к договору" in form and "Выполнить" in form
    assert "101, 105, 110" in form and "№ СТ-2026/001" in form and "№ Д-1" in form
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Store).where(Store.contract_id.is_not(None))) == 0
    ids = re.search(r'name="ids" value="([^"]+)"', form).group(1)
    response = browser.post("/stores/bind/", {"ids": ids, "contract_id": str(contract_id), "url": "/stores/?page=0"})
    assert response.status_code == 302 and response.headers["Location"] == "/stores/?page=0"
    listing = browser.get(response.headers["Location"])
    assert "Привязано к договору № СТ-2026/001: 3 магазина." in flashed(listing)
    with app.app_context():
        bound = db.session.scalars(select(Store.code).where(Store.contract_id == contract_id)).all()
        assert sorted(bound) == ["101", "105", "110"]
    filtered = browser.get(f"/stores/?flt0_0={contract_id}").get_data(as_text=True)
    assert filtered.count('class="action-checkbox"') == 3


def test_bind_form_without_a_contract_asks_again_and_binds_nothing(app, web, setcentrum):
    with app.app_context():
        stores.import_from_set("tester")
        make_contract()
    ticked = _ticked(app, ["101", "102"])
    response = web("operator").post("/stores/bind/", {"ids": ",".join(ticked), "contract_id": ""})
    assert response.status_code == 200
    assert "Выберите договор из списка." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Store).where(Store.contract_id.is_not(None))) == 0


def test_bind_requires_csrf(app, web, setcentrum):
    with app.app_context():
        stores.import_from_set("tester")
        contract_id = make_contract().id
    ticked = _ticked(app, ["101"])
    browser = web("operator")
    assert browser.client.post("/stores/bind/", data={"ids": ticked[0], "contract_id": contract_id}).status_code == 400
    assert browser.client.post("/stores/action/", data={"action": "bind", "rowid": ticked}).status_code == 400
    with app.app_context():
        assert db.session.get(Store, int(ticked[0])).contract_id is None


def test_bind_with_nothing_ticked_goes_back_with_a_message(app, web):
    browser = web("operator")
    response = browser.get("/stores/bind/?ids=", follow_redirects=True)
    assert "Не отмечено ни одного магазина." in " ".join(flashed(response))


# --- the list -----------------------------------------------------------------------------------

def test_list_filters_search_and_numeric_code_order(app, web, setcentrum):
    with app.app_context():
        contract = make_contract()
        for code in ("9", "10", "1000"):
            add_store(code, contract, address="г. Самара, ул. Особая")
        stores.import_from_set("tester")
    browser = web("viewer")

    def codes(url):
        page = browser.get(url).get_data(as_text=True)
        return re.findall(r'<td class="col-code">\s*(\d+)\s*</td>', page)

    assert codes("/stores/?page_size=100")[:5] == ["9", "10", "101", "102", "103"]
    assert codes("/stores/?page_size=100")[-1] == "1000"
    assert codes("/stores/?sort=0&desc=1")[0] == "1000"
    assert codes("/stores/?flt0_0=none&page_size=100") == [str(n) for n in range(101, 141)]
    assert codes(f"/stores/?flt0_0={contract.id}") == ["9", "10", "1000"]
    assert codes("/stores/?flt0_1=manual") == ["9", "10", "1000"]
    assert len(codes("/stores/?flt0_1=set&page_size=100")) == 40
    assert codes("/stores/?search=Особая") == ["9", "10", "1000"]
    assert codes("/stores/?search=125") == ["125"]
    assert len(codes("/stores/?flt0_0=99999999999999999999")) == 43  # an impossible id is ignored, not a 500
    listing = browser.get("/stores/").get_data(as_text=True)
    for label in ("Код магазина", "Наименование", "Адрес", "Договор", "Источник", "Изменён"):
        assert label in listing
    options = filter_options(listing)
    assert options["Договор"] == [["none", "без договора"], [str(contract.id), "№ СТ-2026/001 — Создан"]]
    assert options["Источник"] == [["set", "SET"], ["manual", "вручную"], ["file", "из файла"]]


@contextmanager
def counted_queries():
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def test_list_of_thirty_thousand_stores_is_fast_and_has_no_n_plus_one(app, web):
    with app.app_context():
        contracts_ids = [make_contract(f"N-{i}").id for i in range(3)]
        now = datetime(2026, 1, 1)
        db.session.execute(insert(Store.__table__), [
            {"code": str(100 + i), "name": f"Магазин №{100 + i}", "address": f"г. Омск, д. {i}",
             "contract_id": contracts_ids[i % 4] if i % 4 < 3 else None, "source": "set",
             "created_at": now, "updated_at": now} for i in range(30_000)])
        db.session.commit()
    browser = web("operator")
    urls = ["/stores/", "/stores/?page=300", "/stores/?sort=3", "/stores/?sort=0&desc=1&page_size=100",
            f"/stores/?flt0_0={contracts_ids[1]}", "/stores/?flt0_0=none", "/stores/?search=Омск"]
    for url in urls:
        with app.app_context(), counted_queries() as statements:
            response = browser.get(url)
        assert response.status_code == 200, url
        # user, a setting, the header's ending certificates, the last SET import, contracts for the filter, count,
        # the page with its contracts joined: never one per row.
        assert len(statements) <= 7, (url, statements)
        assert "N-" in response.get_data(as_text=True) or "none" in url


# --- CLI ------------------------------------------------------------------------------------------

def test_cli_imports_stores(app, setcentrum):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["stores", "import"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Загружено 40 магазинов"
    again = runner.invoke(args=["stores", "import"])
    assert again.output.strip() == "Загружено 0 магазинов"


def test_cli_import_of_a_nul_byte_in_an_address_is_refused_and_journaled(app, setcentrum):
    setcentrum.fault("bad_shop", variant="nul_address")
    result = app.test_cli_runner().invoke(args=["stores", "import"])
    assert result.exit_code == 1
    assert "у 41-го магазина в списке поле address содержит нулевой байт" in result.output
    assert "Магазины не добавлены" in result.output
    with app.app_context():
        assert count_stores() == 0
        failed = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "Загрузка списка магазинов"))
        assert failed.actor == "командная строка" and failed.result == "error" and "нулевой байт" in failed.details


def test_cli_import_failure_exits_with_the_message(app, setcentrum):
    setcentrum.fault("status", status=503)
    result = app.test_cli_runner().invoke(args=["stores", "import"])
    assert result.exit_code == 1
    assert "Не удалось загрузить список магазинов из SET Centrum" in result.output
    assert "HTTP 503" in result.output
    with app.app_context():
        assert count_stores() == 0
