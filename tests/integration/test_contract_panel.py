"""«Договоры» in the panel: read-only requisites, the new appendix's link, waiting for terminal numbers,
«Запросить номера сейчас», required fields (and the store form's «Договор»)."""
import html
import io
import re
from datetime import timedelta

import pytest
from docx import Document
from sqlalchemy import select, text

from admin_views.formatters import local_time
from jobs.scheduler import LEASE, JobRunner
from stoloto import clock, settings
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract, SchedulerLease, Setting, Store
from stoloto.services import activation, contracts, stores
from stoloto.services.contracts import ContractInput
from tests.conftest import flashed

NUMBER = "СТ-2026/001"
FORM = {"number": NUMBER, "contract_date": "15.01.2026", "agent_inn": "7707083893", "agent_name": "ООО Ромашка",
        "comment": ""}


def created(app) -> int:
    with app.app_context():
        return contracts.create_contract(ContractInput(**FORM), "t").id


def prepared(app) -> int:
    contract_id = created(app)
    with app.app_context():
        contracts.prepare_activation(contract_id, "t")
    return contract_id


def waiting_for_terminals(app, stand) -> int:
    """A contract activated at the stand: «Ожидание терминалов», no batch yet."""
    contract_id = prepared(app)
    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        stand.register(NUMBER)
        stand.confirm(contract.public_key_fingerprint)
        activation.activate(contract_id, "t")
    return contract_id


def with_status(app, contract_id: int, status: str) -> None:
    with app.app_context():
        db.session.execute(text("UPDATE contracts SET status = :s WHERE id = :i"), {"s": status, "i": contract_id})
        db.session.commit()


def status_of(app, contract_id: int) -> str:
    with app.app_context():
        return db.session.get(Contract, contract_id).status


def input_tag(page: str, name: str) -> str:
    match = re.search(rf'<(?:input|select|textarea)[^>]*name="{name}"[^>]*>', page)
    assert match, f"no field {name}"
    return match.group(0)


def label_of(page: str, name: str) -> str:
    match = re.search(rf'<label for="{name}"[^>]*>(.*?)</label>', page, re.S)
    assert match, f"no label for {name}"
    return match.group(1)


def journal(app, contract_id: int, action: str) -> list[tuple[str, str]]:
    with app.app_context():
        return [(e.result, e.details) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == contract_id, AuditEvent.action == action)
            .order_by(AuditEvent.id))]


# --- what cannot change is not offered -----------------------------------------------------------

@pytest.mark.parametrize("status", ["awaiting_terminals", "active"])
def test_an_activated_contracts_form_shows_its_requisites_read_only(app, web, status):
    contract_id = created(app)
    with_status(app, contract_id, status)
    operator = web("operator")
    page = operator.get(f"/contracts/edit/?id={contract_id}").get_data(as_text=True)
    for name in ("number", "contract_date", "agent_inn", "agent_name"):
        assert "readonly" in input_tag(page, name), name
    assert "readonly" not in input_tag(page, "comment")
    assert "Договор активирован в Столото: это поле изменить нельзя." in page
    assert "Договор активирован в Столото: реквизиты изменить нельзя, можно изменить только комментарий." \
        in re.sub(r"\s+", " ", page)

    saved = operator.post(f"/contracts/edit/?id={contract_id}", {**FORM, "comment": "можно"})
    assert saved.status_code == 302
    with app.app_context():
        assert db.session.get(Contract, contract_id).comment == "можно"


@pytest.mark.parametrize("status", ["draft", "created", "awaiting_activation"])
def test_a_contract_not_yet_activated_offers_its_requisites_for_editing(app, web, status):
    contract_id = created(app)
    with_status(app, contract_id, status)
    page = web("operator").get(f"/contracts/edit/?id={contract_id}").get_data(as_text=True)
    for name in ("number", "contract_date", "agent_inn", "agent_name"):
        assert "readonly" not in input_tag(page, name), name


# --- a new appendix says so and links it --------------------------------------------------------

def test_editing_requisites_awaiting_activation_links_the_new_appendix(app, web):
    contract_id = prepared(app)
    operator = web("operator")
    response = operator.post(f"/contracts/edit/?id={contract_id}", {**FORM, "number": "СТ-2026/002"},
                             follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Приложение №5 обновлено — передайте в Столото новую версию: скачать «Приложение №5»." \
        in flashed(response)
    link = html.unescape(re.search(r'<a href="([^"]+)"[^>]*data-testid="new-appendix"', page).group(1))
    document = Document(io.BytesIO(operator.get(link).data))
    assert any("СТ-2026/002" in cell.text for table in document.tables for row in table.rows for cell in row.cells)


def test_editing_only_the_comment_says_nothing_about_the_appendix(app, web):
    contract_id = prepared(app)
    response = web("operator").post(f"/contracts/edit/?id={contract_id}", {**FORM, "comment": "звонили"},
                                    follow_redirects=True)
    assert "Приложение №5 обновлено" not in response.get_data(as_text=True)


# --- «Активировать договор»: the service picks the step -----------------------------------------

def test_activating_a_created_contract_prepares_it_and_links_the_appendix(app, web):
    contract_id = created(app)
    response = web("operator").post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert (f"Договор № {NUMBER} переведён в статус «Ожидание активации»: сформированы ключ СИ, запрос на "
            "сертификат и «Приложение №5». Скачайте «Приложение №5», подпишите его и передайте представителю "
            "Столото.") in flashed(response)
    assert status_of(app, contract_id) == "awaiting_activation"


@pytest.mark.parametrize("status, label", [("awaiting_terminals", "Ожидание терминалов"), ("active", "Активный")])
def test_activating_a_contract_with_nothing_left_to_activate_is_refused_and_journaled(app, web, status, label):
    contract_id = created(app)
    with_status(app, contract_id, status)
    response = web("operator").post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    message = f"Действие «Активировать договор» невозможно для договора в статусе «{label}»."
    assert message in flashed(response)
    assert journal(app, contract_id, "Активировать договор") == [("error", message)]
    assert status_of(app, contract_id) == status


def test_activating_a_contract_awaiting_activation_asks_stoloto(app, web, stand):
    contract_id = prepared(app)
    with app.app_context():
        stand.register(NUMBER)
        stand.confirm(db.session.get(Contract, contract_id).public_key_fingerprint)
    response = web("operator").post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert (f"Договор № {NUMBER} активирован в Столото и переведён в статус «Ожидание терминалов». Номера "
            "терминалов будут получены автоматически.") in flashed(response)
    assert stand.calls("activate") == 1


# --- waiting for terminal numbers -----------------------------------------------------------------

def test_a_contract_waiting_for_numbers_says_so_in_the_list_and_on_its_page(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    viewer = web("viewer")
    operator = web("operator")
    notice = ("Номера терминалов ещё не получены: фоновое задание сейчас не запущено ни в одном процессе СИ. "
              "Запросите их кнопкой «Запросить номера сейчас».")
    for url in ("/contracts/", f"/contracts/details/?id={contract_id}"):
        page = operator.get(url).get_data(as_text=True)
        assert notice in page, url
        assert "Запросить их может оператор или администратор." in viewer.get(url).get_data(as_text=True)
        assert f'data-sis-progress="/contracts/progress/?id={contract_id}"' in page
        assert "progress.js" in page


def test_a_sealed_setting_that_does_not_open_breaks_no_contract_page(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    JobRunner(app).tick()
    with app.app_context():
        db.session.merge(Setting(key=settings.CASH_API_TOKEN, value="sealed with a key since lost"))
        db.session.commit()
    settings.forget()
    with_status(app, contract_id, "awaiting_terminals")
    viewer = web("viewer")
    for url in ("/contracts/", f"/contracts/details/?id={contract_id}", f"/contracts/progress/?id={contract_id}"):
        response = viewer.get(url)
        assert response.status_code == 200, url
        assert "следующий запуск фонового задания" in response.get_data(as_text=True), url


def test_the_waiting_notice_says_when_the_job_runs_next(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    with app.app_context():
        settings.save({settings.JOB_INTERVAL: 600}, "t")
    stand.fault("batches", "html502", count=1)
    JobRunner(app).tick()  # the job runs, Stoloto fails: the contract still waits
    assert status_of(app, contract_id) == "awaiting_terminals"
    with app.app_context():
        last_run = db.session.get(SchedulerLease, LEASE).last_run_at
        expected = ("Запрос номеров терминалов в Столото выполняется: следующий запуск фонового задания — "
                    f"{local_time(last_run + timedelta(seconds=600))} ({clock.label()}).")
    page = web("viewer").get("/contracts/").get_data(as_text=True)
    assert expected in page
    progress = web("viewer").get(f"/contracts/progress/?id={contract_id}").json
    assert progress == {"status": "awaiting_terminals", "label": "Ожидание терминалов", "waiting": True,
                        "notice": expected}


def test_progress_turns_to_active_once_the_job_has_fetched_the_batch(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    viewer = web("viewer")
    assert viewer.get(f"/contracts/progress/?id={contract_id}").json["waiting"] is True
    JobRunner(app).tick()
    assert viewer.get(f"/contracts/progress/?id={contract_id}").json == {
        "status": "active", "label": "Активный", "waiting": False, "notice": None}
    page = viewer.get("/contracts/").get_data(as_text=True)
    assert "data-sis-progress" not in page and "Запрос номеров терминалов" not in page


@pytest.mark.parametrize("query", ["", "id=", "id=abc", "id=999999", "id=99999999999999999999"])
def test_progress_of_no_such_contract_is_a_russian_404(app, web, query):
    response = web("viewer").get(f"/contracts/progress/?{query}")
    assert response.status_code == 404 and response.json == {"error": "Договор не найден."}


def test_an_operator_requests_the_numbers_at_once(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    operator = web("operator")
    details = operator.get(f"/contracts/details/?id={contract_id}").get_data(as_text=True)
    assert "Запросить номера сейчас" in details
    response = operator.post("/contracts/request-terminals/", {"id": contract_id}, follow_redirects=True)
    result = f"Столото выдал 5 номеров терминалов: договор № {NUMBER} теперь в статусе «Активный»."
    assert result in flashed(response)
    assert status_of(app, contract_id) == "active"
    assert stand.calls("batches") == 1
    assert journal(app, contract_id, "Запросить номера сейчас") == [("ok", result)]


def test_requesting_the_numbers_while_stoloto_is_down_says_so_and_keeps_waiting(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    stand.fault("batches", "html502", count=1)
    response = web("operator").post("/contracts/request-terminals/", {"id": contract_id}, follow_redirects=True)
    assert response.status_code == 200
    [message] = [m for m in flashed(response) if "502" in m]
    assert "получении пакета терминалов" in message
    assert status_of(app, contract_id) == "awaiting_terminals"
    assert journal(app, contract_id, "Запросить номера сейчас")[-1][0] == "error"


def test_requesting_numbers_for_a_contract_that_does_not_wait_is_refused(app, web):
    contract_id = prepared(app)
    response = web("operator").post("/contracts/request-terminals/", {"id": contract_id}, follow_redirects=True)
    message = "Действие «Запросить номера сейчас» невозможно для договора в статусе «Ожидание активации»."
    assert message in flashed(response)
    assert journal(app, contract_id, "Запросить номера сейчас") == [("error", message)]


def test_a_viewer_can_neither_see_nor_press_request_numbers(app, web, stand):
    contract_id = waiting_for_terminals(app, stand)
    viewer = web("viewer")
    assert "Запросить номера сейчас</button>" not in viewer.get(f"/contracts/details/?id={contract_id}") \
        .get_data(as_text=True)
    assert viewer.post("/contracts/request-terminals/", {"id": contract_id}).status_code == 403
    assert stand.calls("batches") == 0


# --- required fields ------------------------------------------------------------------------------

def test_a_new_contracts_form_says_which_fields_activation_needs(app, web):
    page = web("operator").get("/contracts/new/").get_data(as_text=True)
    for name in ("number", "contract_date", "agent_inn"):
        assert " required" not in input_tag(page, name), name  # a draft is saved without them
        assert "text-danger" not in label_of(page, name)
    assert page.count("Нужно для активации договора; без этого поля договор сохранится как черновик.") == 3


def test_a_contract_awaiting_activation_marks_its_requisites_required(app, web):
    contract_id = prepared(app)
    page = web("operator").get(f"/contracts/edit/?id={contract_id}").get_data(as_text=True)
    for name in ("number", "contract_date", "agent_inn"):
        assert " required" in input_tag(page, name), name
        assert "text-danger" in label_of(page, name), name  # Flask-Admin's asterisk
    assert " required" not in input_tag(page, "agent_name")
    refused = web("operator").post(f"/contracts/edit/?id={contract_id}", {**FORM, "agent_inn": ""})
    assert "Поле «ИНН агента» обязательно в этом статусе." in refused.get_data(as_text=True)


def test_the_store_form_marks_its_contract_required(app, web):
    page = web("operator").get("/stores/new/").get_data(as_text=True)
    assert " required" in input_tag(page, "contract_id")
    assert "text-danger" in label_of(page, "contract_id")
    assert "Обязательное поле: по этому договору кассы магазина работают со Столото." in page


def test_an_imported_store_without_a_contract_may_be_saved_without_one(app, web):
    with app.app_context():
        store = Store(code="202", name="Из SET", source="set")
        db.session.add(store)
        db.session.commit()
        store_id = store.id
    operator = web("operator")
    page = operator.get(f"/stores/edit/?id={store_id}").get_data(as_text=True)
    assert " required" not in input_tag(page, "contract_id")
    assert "его можно сохранить и так" in page
    saved = operator.post(f"/stores/edit/?id={store_id}", {"code": "202", "contract_id": "", "name": "Новое имя",
                                                            "address": "", "comment": ""})
    assert saved.status_code == 302


def test_a_store_entered_by_hand_without_a_contract_is_refused(app, web):
    response = web("operator").post("/stores/new/", {"code": "303", "contract_id": "", "name": "", "address": "",
                                                      "comment": ""})
    assert "Выберите договор." in response.get_data(as_text=True)
    with app.app_context():
        assert stores.contract_choices() == [] and db.session.scalar(select(Store.id)) is None
