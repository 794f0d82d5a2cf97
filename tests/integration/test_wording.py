"""Russian to the last word: Flask-Admin's own strings in our wording, one product name, quiet setting keys."""
import re
from html import unescape

import pytest

from stoloto import errors
from stoloto.services import activation, contracts, stores
from stoloto.services.contracts import ContractInput
from stoloto.services.stores import StoreInput
from tests.conftest import PASSWORD


def _text(response) -> str:
    assert response.status_code == 200
    return unescape(response.get_data(as_text=True))


@pytest.mark.parametrize("url", ["/stores/", "/registers/", "/contracts/", "/journal/"])
def test_the_page_size_menu_says_how_many_rows_a_page_shows(web, url):
    page = _text(web("operator").get(url))
    menu = re.search(r'dropdown-toggle" data-toggle="dropdown" href="javascript:void\(0\)">\s*(\d+[^<]*?)\s*</a>'
                     r'\s*<div class="dropdown-menu">(.*?)</div>', page, re.S)
    assert menu and menu.group(1) == "50 на странице"
    assert re.findall(r'page_size=\d+[^"]*">([^<]*)<', menu.group(2)) == ["20 на странице", "50 на странице",
                                                                        "100 на странице"]


def test_flask_admins_confirmations_and_empty_list_are_in_our_russian(app, web):
    operator = web("operator")
    assert "Записей нет." in _text(operator.get("/stores/"))
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number="СТ-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "tester")
        stores.create_store(StoreInput(code="900", contract_id=contract.id), "tester")
    page = _text(operator.get("/stores/"))
    assert 'data-sis-confirm="Вы уверены, что хотите удалить эту запись?"' in page
    assert "Вы уверены, что хотите удалить отмеченные записи?" in page
    assert "Отметить все записи" in page
    assert _english_words(page) & FLASK_ADMINS_WORDS == set()


# Words of Flask-Admin's own English strings (our page's data, logins and SET Centrum's name are Latin too).
FLASK_ADMINS_WORDS = {"item", "items", "Record", "record", "records", "Filter", "Filters", "Select", "Delete", "Edit",
                      "View", "Search", "List", "Create", "Save", "Apply", "Reset", "selected", "Sort"}


def _english_words(page: str) -> set[str]:
    """Latin words a reader sees: the text between tags, and the titles and placeholders."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    shown = re.sub(r"<[^>]*>", " ", page) + " ".join(re.findall(r'(?:title|placeholder)="([^"]*)"', page))
    return set(re.findall(r"[A-Za-z]{3,}", shown))


def test_settings_keep_internal_keys_out_and_name_the_environment_variable_quietly(web):
    page = _text(web("admin").get("/settings/"))
    assert "<code>" not in page
    shown = re.sub(r"<[^>]*>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S))
    assert "stoloto.url" not in shown and "set.centrum.url" not in shown
    hint = re.search(r'<small class="form-text text-muted" data-testid="environment-stoloto.url">([^<]*)</small>', page)
    assert hint and hint.group(1).strip() == "Переменная окружения STOLOTO_URL задаёт первое значение."
    assert 'data-testid="environment-terminals.batch_size"' not in page


def test_saved_settings_are_named_in_a_sentence(web):
    admin = web("admin")
    response = admin.post("/settings/", data={"jobs.interval_seconds": "60", "http.read_timeout": "20"},
                          follow_redirects=True)
    assert "Настройки сохранены: «Интервал фоновых заданий, секунд», «Таймаут ответа HTTP, секунд»." \
        in _text(response)


def test_the_demo_banner_names_the_product_and_shows_on_the_login_page_too(app, web, monkeypatch):
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", "https://127.0.0.1:5443")
    banner = re.compile(r'data-testid="stand-banner">\s*Демонстрационный режим: СИ Столото работает')
    assert banner.search(_text(app.test_client().get("/auth/login")))
    assert banner.search(_text(web("viewer").get("/")))


def test_no_demo_banner_on_the_login_page_outside_demo_mode(app):
    assert 'data-testid="stand-banner"' not in _text(app.test_client().get("/auth/login"))


def test_the_favicon_is_served_at_the_address_browsers_ask_for(app):
    client = app.test_client()
    response = client.get("/favicon.ico", follow_redirects=True)
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.get_data() == client.get("/static/favicon.svg").get_data()
    assert '<link rel="icon" href="/static/favicon.svg"' in _text(client.get("/auth/login"))


def _shown(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)))


def test_the_import_page_names_the_set_address_by_its_label_not_its_key(web):
    page = _shown(_text(web("admin").get("/stores/import/")))
    assert "set.centrum.url" not in page
    assert "Не задан адрес сервера SET Centrum. Укажите его в «Настройки» → «Адрес сервера SET Centrum»." in page


def test_importing_without_the_set_address_says_where_to_set_it(web):
    response = web("operator").post("/stores/import/", follow_redirects=True)
    page = _shown(_text(response))
    assert "set.centrum.url" not in page
    assert ("Не задан адрес сервера SET Centrum. Укажите его в «Настройки» → «Адрес сервера SET Centrum» "
            "или в переменной окружения SET_CENTRUM_URL.") in page


def test_activating_without_the_stoloto_address_says_where_to_set_it(app):
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number="СТ-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "tester")
        contracts.prepare_activation(contract.id, "tester")
        with pytest.raises(errors.SisError) as caught:
            activation.activate(contract.id, "tester")
    assert str(caught.value) == ("Не задан адрес сервиса Столото. Укажите его в «Настройки» → «Адрес сервиса "
                                 "Столото» или в переменной окружения STOLOTO_URL.")


def _flashed(response) -> list[str]:
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>|&times;", "", text)).strip()
            for text in re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', response.get_data(as_text=True), re.S)]


def test_a_changed_password_is_confirmed_in_full_sentences(web):
    viewer = web("viewer")
    response = viewer.post("/password/", data={"current": PASSWORD, "new": "my-own-password",
                                                "repeated": "my-own-password"}, follow_redirects=True)
    assert "Пароль изменён. Другие ваши сеансы завершены, этот продолжается." in _flashed(response)


def test_a_bad_login_is_explained_in_a_full_sentence(web):
    response = web("admin").post("/users/new/", data={"login": "кассир", "role": "operator",
                                                      "password": "длинный-пароль"})
    assert "Логин: латинские буквы, цифры и символы _ . @ -, не длиннее 64 символов." in _text(response)
