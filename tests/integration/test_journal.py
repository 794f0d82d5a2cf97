"""«Журнал» and «Обзор» name each object as users know it, with a link to its page; roles and fields in Russian."""
import re
from html import unescape

import pytest
from sqlalchemy import select

from stoloto import errors
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Store
from stoloto.services import contracts, stores, users
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.integration.register_runs import registered_now

NUMBER = "СТ-2026/001"


def _page(browser, url: str) -> str:
    response = browser.get(url)
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


def _journal_row(page: str, action: str) -> str:
    rows = [row for row in re.findall(r"<tr>(.*?)</tr>", page, re.S) if re.search(rf">\s*{re.escape(action)}\s*<", row)]
    assert rows, f"no journal row «{action}»"
    return rows[0]


def _links(html: str) -> list[tuple[str, str]]:
    return [(href, text.strip()) for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html)
            if "/journal/" not in href]


@pytest.fixture
def contract_id(app):
    with app.app_context():
        return contracts.create_contract(ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                       agent_inn="7707083893"), "tester").id


def test_a_store_shows_as_its_code_linked_to_its_page_not_as_a_database_id(app, web, contract_id):
    with app.app_context():
        db.session.add(Store(code="1", source="manual"))  # moves the ids: store 900 will not be id 900
        db.session.commit()
        store_id = stores.create_store(StoreInput(code="900", contract_id=contract_id), "tester").id
    row = _journal_row(_page(web("viewer"), "/journal/"), "Добавление магазина")
    assert _links(row) == [(f"/stores/details/?id={store_id}", "магазин 900")]


def test_a_contract_change_names_the_contract_and_its_fields_by_their_labels(app, web, contract_id):
    with app.app_context():
        contract = contracts.get_contract(contract_id)
        contracts.update_contract(contract, ContractInput(number=NUMBER, contract_date="15.01.2026",
                                                          agent_inn="7707083893", agent_name="ООО «Ромашка»"),
                                  "tester")
    row = _journal_row(_page(web("viewer"), "/journal/"), "Изменение договора")
    assert _links(row) == [(f"/contracts/details/?id={contract_id}", f"договор № {NUMBER}")]
    assert "Изменены поля: «Наименование агента»" in row
    assert "agent_name" not in row


def test_a_user_shows_as_a_login_and_a_role_by_its_russian_name(app, web):
    with app.app_context():
        user_id = users.create_user("cashier", "operator", "длинный-пароль", "admin1").id
        users.update_user(user_id, "viewer", True, None, "admin1")
    page = _page(web("admin"), "/journal/")
    created = _journal_row(page, "Создание пользователя")
    assert _links(created) == [(f"/users/edit/?id={user_id}", "пользователь cashier")]
    assert "cashier, роль «Оператор»" in created
    assert "роль «Наблюдатель»" in _journal_row(page, "Изменение пользователя")
    assert "operator" not in created.replace('"/users/', "")


def test_a_bulk_action_lists_each_of_its_objects(app, web, contract_id):
    with app.app_context():
        store_ids = [stores.create_store(StoreInput(code=code, contract_id=contract_id), "tester").id
                     for code in ("101", "102", "103")]
        other = contracts.create_contract(ContractInput(number="СТ-2", contract_date="15.01.2026",
                                                        agent_inn="7707083893"), "tester")
        stores.bind_stores([str(i) for i in store_ids], other.id, "tester")
    row = _journal_row(_page(web("viewer"), "/journal/"), stores.ACTION_BIND)
    assert _links(row) == [(f"/stores/details/?id={i}", f"магазин {code}")
                           for i, code in zip(store_ids, ("101", "102", "103"), strict=True)]


def test_manual_registration_lists_the_registers_as_store_and_cash_number(app, web, contract_id):
    with app.app_context():
        store = stores.create_store(StoreInput(code="900", contract_id=contract_id), "tester")
        register = CashRegister(store_id=store.id, cash_number=3, state="pending", reason="CONTRACT_NOT_ACTIVE")
        db.session.add(register)
        db.session.commit()
        register_id = register.id
    operator = web("operator")
    assert registered_now(operator, [register_id]) == \
        "Регистрация касс: зарегистрировано 0, ожидают 0, не тронуто 1 (договор магазина не «Активный»)."
    row = _journal_row(_page(operator, "/journal/"), "Регистрация касс вручную")
    assert _links(row) == [(f"/registers/details/?id={register_id}", "касса 900/3")]


def test_a_deleted_object_is_named_without_a_link(app, web, contract_id):
    with app.app_context():
        store = stores.create_store(StoreInput(code="900", contract_id=contract_id), "tester")
        stores.delete_store(store, "tester")
    row = _journal_row(_page(web("viewer"), "/journal/"), "Удаление магазина")
    assert _links(row) == []
    assert "магазин (удалён)" in row


def test_a_refused_activation_of_a_draft_is_a_warning_not_an_error(app, web):
    with app.app_context():
        draft = contracts.create_contract(ContractInput(number="СТ-3"), "tester")
        with pytest.raises(errors.SisError):
            contracts.prepare_activation(draft.id, "tester")
        result = db.session.scalar(select(AuditEvent.result).where(AuditEvent.action == contracts.ACTION_PREPARE))
    assert result == "warning"
    viewer = web("viewer")
    assert "предупреждение" in _journal_row(_page(viewer, "/journal/"), contracts.ACTION_PREPARE)
    assert "Ошибок нет." in _page(viewer, "/")


def test_the_overview_links_each_recent_error_to_its_contract(app, web, contract_id):
    with app.app_context():
        contracts.prepare_activation(contract_id, "tester")
        with pytest.raises(errors.SisError):
            contracts.prepare_activation(contract_id, "tester")  # a second time: no longer «Создан»
    errors_table = _page(web("viewer"), "/").split("Последние ошибки", 1)[1]
    assert _links(errors_table) == [(f"/contracts/details/?id={contract_id}", f"договор № {NUMBER}")]


def test_a_contracts_history_shows_a_refusal_on_a_draft_as_a_warning(app, web):
    with app.app_context():
        draft = contracts.create_contract(ContractInput(number="СТ-3"), "tester")
        with pytest.raises(errors.SisError):
            contracts.prepare_activation(draft.id, "tester")
    history = _page(web("viewer"), f"/contracts/details/?id={draft.id}").split("История", 1)[1]
    assert "предупреждение" in _journal_row(history, contracts.ACTION_PREPARE)
    assert "ошибка" not in history
