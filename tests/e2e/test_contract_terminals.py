"""«Договоры» in a real browser: a contract waiting for terminal numbers updates itself until «Активный»,
«Запросить номера сейчас», read-only requisites, the new appendix's link and the required fields."""
import pytest
from playwright.sync_api import expect

from jobs.scheduler import JobRunner
from stoloto.extensions import db
from stoloto.models import Contract
from stoloto.services import contracts
from stoloto.services.contracts import ContractInput
from tests.e2e.browser import UPDATE_TIMEOUT_MS, Console, log_in, mark_document, still_the_page
from tests.factories import activated_contract

pytestmark = pytest.mark.browser
NUMBER = "ЖДЁТ-1"
def waiting(app, stand) -> int:
    with app.app_context():
        return activated_contract(stand, NUMBER)


def test_the_list_flips_to_active_by_itself_when_the_job_fetches_the_batch(app, page, live_server, accounts, stand):
    contract_id = waiting(app, stand)
    console = Console(page)
    log_in(page, live_server, accounts["viewer"])
    page.goto(live_server + "/contracts/")
    status = page.locator(f"#contract-status-{contract_id}")
    assert "Ожидание терминалов" in status.inner_text()
    assert "Запросить их может оператор или администратор." in status.inner_text()  # no job runs here
    mark_document(page)

    JobRunner(app).tick()  # the background job: takes the lease, fetches the first batch

    expect(page.locator(f"#contract-status-{contract_id}")).to_have_text("Активный", timeout=UPDATE_TIMEOUT_MS)
    assert still_the_page(page)
    assert page.locator("[data-testid=terminals-request]").count() == 0
    assert console.problems == [], "\n".join(console.problems)


def test_an_operator_requests_the_numbers_and_another_page_updates_itself(app, page, live_server, accounts, stand,
                                                                         chromium, screenshot):
    contract_id = waiting(app, stand)
    log_in(page, live_server, accounts["operator"])
    details = f"{live_server}/contracts/details/?id={contract_id}"

    watcher = chromium.new_context(locale="ru-RU").new_page()  # a colleague keeps the contract's page open
    console = Console(watcher)
    log_in(watcher, live_server, accounts["viewer"])
    watcher.goto(details)
    assert watcher.locator("button:has-text('Запросить номера сейчас')").count() == 0  # not for a viewer
    assert "Пакетов ещё не было" in watcher.locator("#contract-terminals").inner_text()
    mark_document(watcher)

    page.goto(details)
    screenshot("14-waiting-for-numbers")
    page.click("button:has-text('Запросить номера сейчас')")
    assert "Столото выдал 5 номеров терминалов" in page.locator(".alert-success").inner_text()

    expect(watcher.locator(f"#contract-status-{contract_id}")).to_have_text("Активный",
                                                                           timeout=UPDATE_TIMEOUT_MS)
    assert still_the_page(watcher)
    assert "Свободно: 5" in watcher.locator("[data-testid=pool]").inner_text()
    assert "Запросить номера сейчас" in watcher.locator("[data-testid=contract-history]").inner_text()
    assert console.problems == [], "\n".join(console.problems)
    watcher.context.close()


def test_requesting_numbers_while_stoloto_is_down_says_so(app, page, live_server, accounts, stand):
    contract_id = waiting(app, stand)
    stand.fault("batches", "html502", count=1)
    log_in(page, live_server, accounts["operator"])
    page.goto(f"{live_server}/contracts/details/?id={contract_id}")
    page.click("button:has-text('Запросить номера сейчас')")
    assert "при получении пакета терминалов" in page.locator(".alert-danger").inner_text()
    assert "Ожидание терминалов" in page.locator("tr", has_text=NUMBER).inner_text()


def test_an_active_contracts_requisites_are_read_only(app, page, live_server, accounts, stand):
    contract_id = waiting(app, stand)
    JobRunner(app).tick()
    log_in(page, live_server, accounts["operator"])
    page.goto(f"{live_server}/contracts/edit/?id={contract_id}")
    for name in ("number", "contract_date", "agent_inn", "agent_name"):
        assert not page.locator(f"[name={name}]").is_editable(), name
    page.fill("textarea[name=comment]", "Номера получены")
    page.click("input[type=submit][value='Сохранить']")
    assert page.locator(".alert-danger").count() == 0
    with app.app_context():
        assert db.session.get(Contract, contract_id).comment == "Номера получены"


def test_new_requisites_awaiting_activation_link_the_new_appendix(app, page, live_server, accounts):
    with app.app_context():
        contract = contracts.create_contract(ContractInput(number="ПРИЛ-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        contracts.prepare_activation(contract.id, "t")
        contract_id = contract.id
    log_in(page, live_server, accounts["operator"])
    page.goto(f"{live_server}/contracts/edit/?id={contract_id}")
    page.fill("input[name=agent_name]", "ООО «Новое имя»")
    page.click("input[type=submit][value='Сохранить']")
    message = page.locator(".alert", has_text="Приложение №5 обновлено")
    assert "передайте в Столото новую версию" in message.inner_text()
    with page.expect_download() as download:
        message.locator("a:has-text('скачать «Приложение №5»')").click()
    assert download.value.suggested_filename.endswith(".docx")


def test_required_fields_carry_the_asterisk(app, page, live_server, accounts):
    log_in(page, live_server, accounts["operator"])
    page.goto(live_server + "/stores/new/")
    assert page.locator("label[for=contract_id] strong.text-danger").count() == 1
    assert page.locator("label[for=code] strong.text-danger").count() == 1  # a store is its code
    assert page.locator("input[name=code]").evaluate("input => input.required")
    assert page.locator("select[name=contract_id]").evaluate("select => select.required")
    page.fill("input[name=code]", "501")
    page.click("input[type=submit][value='Сохранить']")  # the browser asks for the contract first
    assert page.url.endswith("/stores/new/")

    page.goto(live_server + "/contracts/new/")
    assert page.locator("label strong.text-danger").count() == 0  # a draft is saved without them
    assert page.locator("text=Нужно для активации договора").count() == 3
