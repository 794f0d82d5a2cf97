"""Certificates in a real browser: the header's warning leads to the contract, «Обновить сертификат» renews it
and the warning goes away."""
import pytest
from playwright.sync_api import expect

from tests.e2e.browser import Console, log_in
from tests.factories import activated_contract

pytestmark = pytest.mark.browser
NUMBER = "СЕРТ-1"
DAY_MINUTES = 24 * 60


def test_the_header_warns_of_an_ending_certificate_and_renewing_it_clears_the_warning(app, page, live_server,
                                                                                     accounts, stand, screenshot):
    stand.post("/control/certificate-validity", {"minutes": 3 * DAY_MINUTES})
    with app.app_context():
        activated_contract(stand, NUMBER)
    stand.post("/control/certificate-validity", {"minutes": 365 * DAY_MINUTES})  # what a renewal gets
    console = Console(page)
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/stores/")
    banner = page.locator("[data-testid=certificate-banner]")
    expect(banner).to_have_count(1)
    assert "alert-danger" in banner.get_attribute("class")
    assert "осталось 2 дня" in banner.inner_text() and "обновите его" in banner.inner_text()

    banner.get_by_role("link", name=f"№ {NUMBER}").click()
    expect(page.locator("[data-testid=certificate-validity]")).to_contain_text("осталось 2 дня")
    screenshot("16-certificate-ending")
    page.get_by_role("button", name="Обновить сертификат").click()

    expect(page.locator(".alert-success")).to_contain_text(f"Сертификат договора № {NUMBER} обновлён")
    expect(page.locator("[data-testid=certificate-banner]")).to_have_count(0)
    expect(page.locator("[data-testid=certificate-until]")).to_contain_text("осталось 364 дня")
    assert console.problems == [], "\n".join(console.problems)
