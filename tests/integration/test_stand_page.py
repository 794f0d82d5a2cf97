"""«Тестовый стенд» over HTTP against the real Stoloto stand: the stand's side of each contract and the next step."""
import uuid
from html.parser import HTMLParser

import pytest
import requests
from sqlalchemy import select

from stoloto import crypto
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract
from stoloto.services import contracts, terminals
from stoloto.services.contracts import ContractInput

NUMBER = "СТ-2026/001"
REGISTER, UPDATE, CONFIRM = "register", "update", "confirm"


@pytest.fixture
def demo(app, stand, monkeypatch):
    """SIS in demo mode, its «Тестовый стенд» talking to the stand's control interface."""
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", stand.url)
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_CA", stand.ca_path)
    return stand


class StandTable(HTMLParser):
    """The rows of the page's table: contract number → {cell test id: text, "actions": [button values]}."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.text = {}, None, None, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-contract" in attrs:
            self.row = self.rows.setdefault(attrs["data-contract"], {"actions": []})
        elif self.row is not None and tag == "td" and "data-testid" in attrs:
            self.cell, self.text = attrs["data-testid"], []
        elif self.row is not None and tag == "button" and attrs.get("name") == "what":
            self.row["actions"].append(attrs["value"])

    def handle_data(self, data):
        if self.cell:
            self.text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self.cell:
            self.row[self.cell] = " ".join("".join(self.text).split())
            self.cell = None
        elif tag == "tr":
            self.row = None


def table(browser) -> dict[str, dict]:
    response = browser.get("/stand/")
    assert response.status_code == 200
    parser = StandTable()
    parser.feed(response.get_data(as_text=True))
    return parser.rows


def flashed(response) -> str:
    return " ".join(response.get_data(as_text=True).split())


def act(browser, contract_id: int, what: str):
    return browser.post("/stand/act/", {"id": str(contract_id), "what": what}, follow_redirects=True)


def new_contract(app, number: str = NUMBER, **overrides) -> int:
    values = dict(number=number, contract_date="15.01.2026", agent_inn="7707083893", agent_name="ООО Ромашка")
    with app.app_context():
        return contracts.create_contract(ContractInput(**{**values, **overrides}), "tester").id


def fingerprint_of(app, contract_id: int) -> str:
    with app.app_context():
        return db.session.get(Contract, contract_id).public_key_fingerprint


def test_the_page_follows_a_contract_from_created_to_active_offering_only_the_next_step(app, web, demo):
    contract_id = new_contract(app)
    browser = web("operator")

    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"], row["issued"]) == ("нет", "—", "нет", "—")
    assert row["fingerprint"] == "—" and row["actions"] == [REGISTER]
    assert "Зарегистрируйте договор на стенде" in row["next"]

    assert f"Договор № {NUMBER} зарегистрирован на тестовом стенде." in flashed(act(browser, contract_id, REGISTER))
    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"], row["issued"]) == ("да", "—", "нет", "0")
    assert row["actions"] == []  # no key yet: SIS makes it with «Активировать договор»
    assert "«Активировать договор»" in row["next"] and "«Приложение №5»" in row["next"]

    browser.post("/contracts/activate/", {"id": str(contract_id)})  # «Создан» → «Ожидание активации»: the key
    row = table(browser)[NUMBER]
    assert row["fingerprint"] == crypto.format_fingerprint(fingerprint_of(app, contract_id))
    assert (row["registered"], row["key"], row["activated"]) == ("да", "нет", "нет")
    assert row["actions"] == [CONFIRM]

    assert "Ключ договора № СТ-2026/001 подтверждён на тестовом стенде." in flashed(act(browser, contract_id, CONFIRM))
    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"]) == ("да", "да", "нет")
    assert row["actions"] == [] and "«Активировать договор»" in row["next"]

    browser.post("/contracts/activate/", {"id": str(contract_id)})  # Stoloto activates: «Ожидание терминалов»
    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"], row["issued"]) == ("да", "да", "да", "0")
    assert row["actions"] == [] and "номера терминалов" in row["next"]

    with app.app_context():
        terminals.fetch_due_batches()  # the job: 5 numbers (the stand fixture's batch size)
    row = table(browser)[NUMBER]
    assert (row["status"], row["issued"], row["actions"]) == ("Активный", "5", [])

    with app.app_context():
        journal = db.session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == contract_id)
                                     .order_by(AuditEvent.id)).all()
    assert [a for a in journal if a.startswith("Тестовый стенд")] == [
        "Тестовый стенд: договор зарегистрирован", "Тестовый стенд: ключ подтверждён"]


def test_the_fingerprint_reads_as_on_the_contract_page(app, web, demo):
    contract_id = new_contract(app)
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": str(contract_id)})
    shown = table(browser)[NUMBER]["fingerprint"]
    assert len(shown.split()) == 16  # 64 hex digits in groups of four
    assert shown in browser.get(f"/contracts/details/?id={contract_id}").get_data(as_text=True)


def test_drafts_are_not_listed_and_the_page_says_why(app, web, demo):
    with app.app_context():
        contracts.create_contract(ContractInput(number="Ч-1"), "tester")
    new_contract(app)
    browser = web("operator")
    assert list(table(browser)) == [NUMBER]
    assert "Черновики здесь не показаны" in flashed(browser.get("/stand/"))


def test_requisites_that_differ_at_the_stand_are_named_and_can_be_updated_there(app, web, demo):
    contract_id = new_contract(app)
    demo.register(NUMBER, contract_date="2026-01-10")
    browser = web("operator")
    row = table(browser)[NUMBER]
    assert row["registered"] == "да, но отличается дата заключения договора"
    assert row["actions"] == [UPDATE]

    response = act(browser, contract_id, UPDATE)
    assert f"Реквизиты договора № {NUMBER} на тестовом стенде обновлены." in flashed(response)
    assert [c["contract_date"] for c in demo.state()["contracts"]] == ["2026-01-15"]
    row = table(browser)[NUMBER]
    assert (row["registered"], row["actions"]) == ("да", [])


def test_an_action_that_is_not_the_next_step_is_refused_with_the_reason(app, web, demo):
    contract_id = new_contract(app)
    browser = web("operator")
    refusals = []
    for what in (CONFIRM, REGISTER, REGISTER, CONFIRM, UPDATE):
        refusals.append(flashed(act(browser, contract_id, what)))
    assert "Действие «Подтвердить ключ» для договора № СТ-2026/001 сейчас невозможно: договор ещё не " \
        "зарегистрирован на тестовом стенде." in refusals[0]
    assert "Договор № СТ-2026/001 зарегистрирован на тестовом стенде." in refusals[1]
    assert "Действие «Зарегистрировать договор на стенде» для договора № СТ-2026/001 сейчас невозможно: " \
        "договор уже зарегистрирован на тестовом стенде." in refusals[2]
    assert "Действие «Подтвердить ключ» для договора № СТ-2026/001 сейчас невозможно: у договора ещё нет " \
        "ключа. Сначала нажмите «Активировать договор» в «Договорах»." in refusals[3]
    assert "Действие «Обновить реквизиты на стенде» для договора № СТ-2026/001 сейчас невозможно: " \
        "реквизиты на стенде совпадают с реквизитами в СИ." in refusals[4]
    response = act(browser, contract_id, "launch")
    assert "Неизвестное действие на тестовом стенде. Обновите страницу и выберите действие снова." in \
        flashed(response)
    assert demo.state()["confirmed_fingerprints"] == []


def test_a_viewer_sees_the_stand_side_without_buttons_and_cannot_act(app, web, demo):
    contract_id = new_contract(app)
    browser = web("viewer")
    row = table(browser)[NUMBER]
    assert (row["registered"], row["actions"]) == ("нет", [])
    assert act(browser, contract_id, REGISTER).status_code == 403
    assert demo.state()["contracts"] == []


def test_a_stand_that_is_down_gives_a_message_and_no_buttons_never_an_error_page(app, web, stand, monkeypatch):
    contract_id = new_contract(app)
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", "https://127.0.0.1:9")  # nothing listens there
    browser = web("operator")
    page = browser.get("/stand/")
    assert page.status_code == 200
    assert "Тестовый стенд Столото недоступен. Перезапустите СИ Столото командой make run." in flashed(page)
    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"], row["issued"], row["actions"]) == \
        ("?", "?", "?", "?", [])
    response = act(browser, contract_id, REGISTER)
    assert response.status_code == 200
    assert "Тестовый стенд Столото недоступен." in flashed(response)


def test_a_stand_answering_garbage_gives_a_message_not_an_error_page(app, web, demo, monkeypatch):
    new_contract(app)
    # A wrong base path: the stand answers every control call with its JSON 404.
    monkeypatch.setitem(app.config, "SIS_STOLOTO_STAND_URL", demo.url + "/nothing")
    page = web("operator").get("/stand/")
    assert page.status_code == 200
    assert "Тестовый стенд ответил ошибкой 404" in flashed(page)


def test_a_contract_the_stand_activated_with_another_key_offers_nothing_and_says_why(app, web, demo):
    # The stand outlived SIS's database: it activated this number with a key SIS no longer has.
    demo.register(NUMBER)
    key = crypto.generate_private_key()
    demo.confirm(crypto.public_key_fingerprint(key.public_key()))
    answer = requests.post(demo.url + "/api/v1/contracts/activate", verify=demo.ca_path, timeout=10,
                           headers={"X-Request-Id": str(uuid.uuid4())},
                           json={"contract_number": NUMBER, "contract_date": "2026-01-15", "agent_inn": "7707083893",
                                 "csr": crypto.build_csr(key, NUMBER, "7707083893", None)})
    assert answer.status_code == 200, answer.text
    contract_id = new_contract(app)
    browser = web("operator")
    browser.post("/contracts/activate/", {"id": str(contract_id)})  # SIS makes a key of its own
    row = table(browser)[NUMBER]
    assert (row["registered"], row["key"], row["activated"], row["actions"]) == ("да", "нет", "да, с другим ключом", [])
    assert "стенд не меняет ключ активированного договора" in row["next"]
    response = act(browser, contract_id, CONFIRM)
    assert "Действие «Подтвердить ключ» для договора № СТ-2026/001 сейчас невозможно: договор уже активирован " \
        "на стенде с другим ключом." in flashed(response)


def test_after_a_rekeying_the_stand_confirms_the_new_key_and_activation_then_succeeds(app, web, demo):
    from tests.factories import activated_contract
    with app.app_context():
        contract_id = activated_contract(demo, NUMBER)
    demo.post("/control/clock", {"offset_seconds": 400 * 24 * 3600})  # the certificate has expired at Stoloto
    browser = web("operator")
    browser.post("/contracts/renew-certificate/", {"id": str(contract_id)})
    browser.post("/contracts/rekey/", {"id": str(contract_id)})
    with app.app_context():
        new_key = crypto.load_csr(db.session.get(Contract, contract_id).pending_csr_pem).public_key()
    row = table(browser)[NUMBER]
    assert row["fingerprint"] == crypto.format_fingerprint(crypto.public_key_fingerprint(new_key))
    assert row["actions"] == [CONFIRM] and "Подтвердите ключ" in row["next"]

    act(browser, contract_id, CONFIRM)
    assert "Новый ключ подтверждён" in table(browser)[NUMBER]["next"]
    done = flashed(browser.post("/contracts/activate/", {"id": str(contract_id)}, follow_redirects=True))
    assert f"Столото выдал сертификат на новый ключ договора № {NUMBER}" in done
