"""Every panel page works under the Content-Security-Policy: no violation and no error in Chromium's console."""
import pytest
from sqlalchemy import select

from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, CashRegister, Contract, Store, User
from stoloto.services import contracts, terminals
from stoloto.services.contracts import ContractInput
from tests.e2e.browser import Console, log_in
from tests.factories import activated_contract

pytestmark = pytest.mark.browser
TOKEN = "browser-test-token-0123456789"
MODELS = {"contracts": Contract, "stores": Store, "registers": CashRegister, "users": User, "journal": AuditEvent}
# Not pages: downloads, exports and JSON (the API, /healthz and /readyz are whole blueprints, skipped below).
NOT_PAGES = ("ajax_lookup", "appendix_view", "export", "static", "progress_view", "upload_template_view")
NOT_FOUND = "/no-such-page/"


@pytest.fixture
def everything(app, stand):
    """One row of every kind, so that every list, form and details page has something to show."""
    app.config.update(SIS_STOLOTO_STAND_URL=stand.url, SIS_STOLOTO_STAND_CA=stand.ca_path)
    with app.app_context():
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        contract_id = activated_contract(stand, "CSP-1")
        contracts.create_contract(ContractInput(number="CSP-2", contract_date="", agent_inn=""), "t")  # a draft
        terminals.fetch_due_batches()
        db.session.add(Store(code="401", contract_id=contract_id, name="Магазин №401", source="manual"))
        db.session.commit()
    response = app.test_client().post("/api/v1/cash-registers/registration",
                                      json={"store_code": "401", "cash_number": 1},
                                      headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    yield
    app.config.update(SIS_STOLOTO_STAND_URL="", SIS_STOLOTO_STAND_CA="")


def _pages(app) -> list[str]:
    with app.app_context():
        first = {name: db.session.scalar(select(model.id).order_by(model.id)) for name, model in MODELS.items()}
        store_ids = ",".join(str(i) for i in db.session.scalars(select(Store.id)))
    urls = ["/auth/login"]
    for rule in app.url_map.iter_rules():
        view, _, kind = rule.endpoint.partition(".")
        if "GET" not in rule.methods or view in ("api", "auth", "static", "health") or kind in NOT_PAGES:
            continue
        url = rule.rule
        if kind in ("edit_view", "details_view"):
            url += f"?id={first[view]}"
        elif kind == "bind_view":
            url += f"?ids={store_ids}"
        urls.append(url)
    return [*urls, NOT_FOUND]


def _visit(page, base: str, url: str, console: Console) -> None:
    seen = len(console.problems)
    page.goto(base + url)
    page.wait_for_load_state("load")
    if url == NOT_FOUND:  # Chromium reports the 404 answer itself as a console error: that one is expected
        console.problems[seen:] = [p for p in console.problems[seen:] if "status of 404" not in p]


def test_every_page_works_under_the_csp(app, page, live_server, accounts, everything):
    console = Console(page)
    pages = _pages(app)
    assert len(pages) > 20
    _visit(page, live_server, pages[0], console)
    log_in(page, live_server, accounts["admin"])
    for url in pages:
        _visit(page, live_server, url, console)
    assert console.problems == [], '\n'.join(console.problems)


def test_the_interactive_parts_work_under_the_csp(app, page, live_server, accounts, everything):
    """What inline handlers did in Flask-Admin's templates and ours, static/sis.js does now."""
    console = Console(page)
    confirmations = []

    def answer(dialog):
        confirmations.append(dialog.message)
        dialog.dismiss()
    page.on("dialog", answer)
    log_in(page, live_server, accounts["admin"])

    page.goto(live_server + "/settings/")
    token = page.locator(f"input[name='{settings.CASH_API_TOKEN}']")
    assert token.get_attribute("type") == "password"
    page.click("button:has-text('Показать')")
    assert token.get_attribute("type") == "text"

    page.goto(live_server + "/stores/")
    page.click("a:has-text('Добавить фильтр')")
    page.click(".field-filters a.filter >> nth=0")
    assert page.locator("table.filters tr").count() == 1
    page.locator("input.action-checkbox").first.check()
    page.click("a:has-text('С отмеченными')")
    page.click(".dropdown-menu a:has-text('Удалить')")
    assert confirmations and "удалить" in confirmations[-1].lower()
    page.locator("form.icon button[title]").first.click()  # the row's delete button asks first
    assert len(confirmations) == 2
    assert page.locator("table.model-list tbody tr").count() == 1  # both answered «Отмена»: nothing deleted
    page.click("a:has-text('С отмеченными')")
    page.click(".dropdown-menu a:has-text('Привязать магазины к договору')")
    page.wait_for_url("**/stores/bind/**")  # an action without a confirmation runs at once

    page.goto(live_server + "/journal/")
    page.click("a:has-text('Добавить фильтр')")
    page.click(".field-filters a.filter:has-text('Время')")
    page.locator("table.filters input.filter-val").first.click()
    page.wait_for_selector(".daterangepicker", state="visible")  # the date picker of the journal's time filter
    page.keyboard.press("Escape")
    page.locator("table.filters .select2-choice").first.click()
    page.wait_for_selector(".select2-drop-active", state="visible")  # select2 3.5: the filter's operation list
    assert console.problems == [], "\n".join(console.problems)
