"""«Справка»: the guide for every signed-in user, with the configuration in use and never the API token."""
import re
from html import unescape

from stoloto import settings
from stoloto.register_lifecycle import REASON_LABELS, STATE_LABELS


def _help_page(browser) -> str:
    response = browser.get("/help/")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_viewer_reads_the_guide_with_the_configuration_in_use(app, web):
    with app.app_context():
        settings.save({settings.STOLOTO_URL: "https://stoloto.example:8443",
                       settings.SET_CENTRUM_URL: "http://set-centrum.example:8080"}, "admin1")
    page = _help_page(web("viewer"))
    assert 'data-testid="help-stoloto-url">https://stoloto.example:8443<' in page
    assert 'data-testid="help-set-url">http://set-centrum.example:8080<' in page
    assert 'data-testid="help-demo">выключен<' in page
    assert 'id="состояния-и-причины"' in page
    assert "/api/v1/cash-registers/registration" in page
    assert "«Нет свободных терминалов» (<code>NO_FREE_TERMINALS</code>)" in page


def test_the_page_says_when_the_demo_stand_is_in_use(app, web, monkeypatch):
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", "https://127.0.0.1:5443")
    assert 'data-testid="help-demo">включён' in _help_page(web("operator"))


def test_the_page_says_where_the_token_is_and_never_shows_it(app, web):
    with app.app_context():
        token = settings.cash_api_token()
    page = _help_page(web("admin"))
    assert token not in page
    assert "«Токен API регистрации касс» → «Показать» (только администратор)" in page


def test_a_list_page_links_to_its_section_of_the_help(web):
    browser = web("operator")
    link = re.search(r'href="/help/#([^"]+)"[^>]*data-testid="help-link"',
                     browser.get("/registers/").get_data(as_text=True))
    assert link and unescape(link.group(1)) == "кассы"
    assert f'<h2 id="{link.group(1)}">Кассы</h2>' in _help_page(browser)


def test_every_page_in_the_menu_links_to_a_section_that_exists(web):
    browser = web("admin")
    page = _help_page(browser)
    for url in ("/", "/contracts/", "/stores/", "/registers/", "/users/", "/journal/", "/settings/"):
        link = re.search(r'href="/help/#([^"]+)"', browser.get(url).get_data(as_text=True))
        assert link, url
        assert f'id="{link.group(1)}"' in page, url


def test_an_anonymous_visitor_is_sent_to_log_in(app):
    response = app.test_client().get("/help/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_the_guide_explains_every_register_state_and_reason(web):
    page = _help_page(web("viewer"))
    for label in [*STATE_LABELS.values(), *REASON_LABELS.values()]:
        assert f"<td>«{label}»" in page, label
