"""Without a Stoloto URL every panel page says so, and where to set it."""
import pytest

from stoloto import settings

BANNER = 'data-testid="stoloto-not-configured"'
PAGES = ["/", "/contracts/", "/stores/", "/registers/", "/journal/"]


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_every_page_says_stoloto_is_not_configured_and_where_to_set_it(web, role):
    browser = web(role)
    for page in PAGES:
        html = browser.get(page).get_data(as_text=True)
        assert BANNER in html, page
        assert "Столото не настроен" in html
        assert "«Адрес сервиса Столото»" in html and "STOLOTO_URL" in html


def test_the_administrator_gets_a_link_to_the_settings(web):
    html = web("admin").get("/contracts/").get_data(as_text=True)
    assert '<a href="/settings/">«Настройки»</a>' in html


def test_the_warning_is_gone_once_the_url_is_set(app, web):
    admin = web("admin")
    response = admin.post("/settings/", {settings.STOLOTO_URL: "https://stoloto.example:443"},
                          follow_redirects=True)
    assert response.status_code == 200
    with app.app_context():
        assert settings.get(settings.STOLOTO_URL) == "https://stoloto.example:443"
    for page in PAGES:
        assert BANNER not in admin.get(page).get_data(as_text=True), page
