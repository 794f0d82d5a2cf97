"""Certificates that never lapse: validity shown everywhere, renewal by §1.4 (by hand, racing itself, after a
crash, by the job) and the re-keying after an expiry, end to end against the Stoloto stand."""
import io
import signal
import subprocess
import threading

import pytest
from docx import Document
from sqlalchemy import func, select

from jobs.certificates import renew_certificates
from stoloto import audit, crypto, settings
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import AuditEvent, Contract, Terminal
from stoloto.services import certificates, terminals
from tests.conftest import TOKEN
from tests.factories import activated_contract, store
from tests.processes import FLASK, ROOT, sis_env, wait_for

DAY_MINUTES = 24 * 60


def stand_contract(stand, number: str) -> dict:
    return next(c for c in stand.state()["contracts"] if c["contract_number"] == number)


def contract(contract_id: int) -> Contract:
    db.session.expire_all()
    return db.session.get(Contract, contract_id)


def page(browser, url: str) -> str:
    response = browser.get(url)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_list_the_contract_page_and_overview_show_the_certificate_end_and_days_left(app, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "СРОК-1")
    operator = web("operator")
    listing = page(operator, "/contracts/")
    assert "Сертификат до" in listing and "осталось 364 дня" in listing
    assert "осталось 364 дня" in page(operator, f"/contracts/details/?id={contract_id}")
    overview = page(operator, "/")
    assert "Сертификаты договоров" in overview and "осталось 364 дня" in overview
    assert 'data-testid="certificate-banner"' not in overview  # a year left: nothing to warn of


def test_a_certificate_ending_within_30_days_warns_on_every_page_and_within_7_is_an_error(app, stand, web):
    stand.post("/control/certificate-validity", {"minutes": 20 * DAY_MINUTES})
    with app.app_context():
        activated_contract(stand, "СРОК-20")
    stand.post("/control/certificate-validity", {"minutes": 3 * DAY_MINUTES})
    with app.app_context():
        activated_contract(stand, "СРОК-3")
    viewer = web("viewer")
    for url in ("/", "/stores/", "/journal/", "/registers/"):
        html = page(viewer, url)
        assert html.count('data-testid="certificate-banner"') == 2, url
    html = page(viewer, "/stores/")
    soonest, later = html.index("№ СРОК-3"), html.index("№ СРОК-20")
    assert soonest < later  # the soonest to end first
    assert 'alert-danger py-1 small" data-testid="certificate-banner"' in html[:soonest][-400:]
    assert 'alert-warning py-1 small" data-testid="certificate-banner"' in html[:later][-400:]
    assert "осталось 2 дня" in html and "осталось 19 дней" in html


def test_renewal_gives_a_new_key_and_certificate_that_batches_and_registrations_use(app, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "ОБН-1")
        terminals.fetch_due_batches()
        store("101", contract_id)
        settings.save({settings.CASH_API_TOKEN: TOKEN}, "t")
        before = contract(contract_id)
        old_fingerprint, old_certificate = before.public_key_fingerprint, before.certificate_pem
    operator = web("operator")
    details = page(operator, f"/contracts/details/?id={contract_id}")
    assert 'data-action="renew-certificate"' in details
    response = operator.post("/contracts/renew-certificate/", {"id": contract_id}, follow_redirects=True)
    assert "Сертификат договора № ОБН-1 обновлён" in response.get_data(as_text=True)
    with app.app_context():
        renewed = contract(contract_id)
        assert renewed.certificate_state == "valid" and renewed.renewal_request_id is None
        assert renewed.public_key_fingerprint != old_fingerprint
        assert renewed.certificate_pem == stand_contract(stand, "ОБН-1")["certificate"] != old_certificate
        assert stand_contract(stand, "ОБН-1")["key_fingerprint"] == renewed.public_key_fingerprint
        assert renewed.pending_private_key_encrypted is None
        assert renewed.previous_certificate_pem == old_certificate  # kept until the new one has worked once

    registration = app.test_client().post("/api/v1/cash-registers/registration",
                                          json={"store_code": "101", "cash_number": 1},
                                          headers={"Authorization": f"Bearer {TOKEN}"})
    assert registration.status_code == 200, registration.json
    with app.app_context():
        retired = contract(contract_id)
        assert retired.previous_certificate_pem is None and retired.previous_private_key_encrypted is None
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "Прежний ключ удалён")) == 1
        stand.post("/control/clock", {"offset_seconds": 8 * 24 * 3600})  # the old certificate's grace is over
        terminals.fetch_batch(contract_id, "t", force=True)
    assert len(stand.issued("ОБН-1")) == 10  # the second batch came with the new certificate


def test_two_renewals_at_once_give_one_certificate_and_one_key(app, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "ГОНКА-1")
    stand.post("/control/latency", {"ms": 300})
    barrier, outcomes = threading.Barrier(2), []

    def press():
        with app.app_context():
            barrier.wait()
            try:
                outcomes.append(certificates.renew(contract_id, "t").renewed)
            except SisError as error:
                outcomes.append(error.code)

    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [False, True]  # one stored it, the other found it stored
    state = stand.state()
    assert state["executed"]["renew"] == 1  # one certificate issued; the other call was its replay
    with app.app_context():
        renewed = contract(contract_id)
        assert renewed.certificate_pem == stand_contract(stand, "ГОНКА-1")["certificate"]
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.action == "Обновление сертификата начато")) == 1


def test_a_crash_between_stoloto_issuing_and_sis_storing_loses_nothing(app, stand, tmp_path):
    with app.app_context():
        contract_id = activated_contract(stand, "СБОЙ-1")
        settings.save({settings.READ_TIMEOUT: 60}, "t")
    stand.fault("renew", "delay_after", seconds=30)  # the stand issues the certificate, then holds the answer
    job = subprocess.Popen(FLASK + ["certificates", "renew", "--contract", "СБОЙ-1"], cwd=ROOT,
                           env=sis_env(app, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: stand.state()["executed"]["renew"] == 1, 30, "the stand to issue the certificate")
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait(10)
    issued = stand_contract(stand, "СБОЙ-1")["certificate"]
    with app.app_context():
        died = contract(contract_id)
        assert died.certificate_state == "renewing" and died.renewal_request_id
        assert died.pending_private_key_encrypted is not None and died.certificate_pem != issued

    again = subprocess.run(FLASK + ["certificates", "renew", "--contract", "СБОЙ-1"], cwd=ROOT,
                           env=sis_env(app, tmp_path), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    with app.app_context():
        assert contract(contract_id).certificate_pem == issued  # the same certificate, not a second one
    state = stand.state()
    assert state["executed"]["renew"] == 1 and state["replayed"]["renew"] == 1


def test_the_job_renews_a_certificate_past_half_its_life_within_the_setting(app, stand):
    with app.app_context():
        lasting = activated_contract(stand, "ДОЛГО-1")  # a year left: not due with 30 days
    stand.post("/control/certificate-validity", {"minutes": 1})
    with app.app_context():
        short = activated_contract(stand, "КОРОТКО-1")
        before = contract(short).certificate_pem
        renew_certificates()
        assert contract(short).certificate_pem == stand_contract(stand, "КОРОТКО-1")["certificate"] != before
        assert contract(lasting).certificate_state == "valid"
        renewed_by = db.session.scalar(select(AuditEvent.actor).where(
            AuditEvent.action == "Обновление сертификата завершено", AuditEvent.object_id == short))
        assert renewed_by == audit.SYSTEM_ACTOR
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "Обновление сертификата начато", AuditEvent.object_id == lasting)) == 0


def test_an_expired_certificate_is_rekeyed_with_a_new_appendix_and_activated_once_stoloto_registers_it(
        app, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "ИСТЁК-1")
        terminals.fetch_due_batches()
        numbers = sorted(db.session.scalars(select(Terminal.number).where(Terminal.contract_id == contract_id)))
    assert len(numbers) == 5
    stand.post("/control/clock", {"offset_seconds": 400 * 24 * 3600})  # Stoloto's year has passed
    operator = web("operator")

    refused = operator.post("/contracts/renew-certificate/", {"id": contract_id}, follow_redirects=True)
    text = refused.get_data(as_text=True)
    assert "Сертификат договора № ИСТЁК-1 истёк" in text and "«Перевыпустить ключ»" in text
    details = page(operator, f"/contracts/details/?id={contract_id}")
    assert 'data-action="rekey"' in details and 'data-action="renew-certificate"' not in details

    operator.post("/contracts/rekey/", {"id": contract_id}, follow_redirects=True)
    with app.app_context():
        rekeyed = contract(contract_id)
        assert rekeyed.certificate_state == "rekeying" and rekeyed.status == "active"
        new_fingerprint = certificates.pending_fingerprint(rekeyed).replace(" ", "").lower()
        text_of_appendix = "\n".join(p.text for p in Document(io.BytesIO(rekeyed.appendix_docx)).paragraphs)
        tables = Document(io.BytesIO(rekeyed.appendix_docx)).tables[0]
        cells = " ".join(cell.text for row in tables.rows for cell in row.cells)
    assert "Перевыпуск ключа" in text_of_appendix and "ИСТЁК-1" in text_of_appendix
    assert crypto.format_fingerprint(new_fingerprint) in cells
    details = page(operator, f"/contracts/details/?id={contract_id}")
    assert "договор ждёт, пока Столото зарегистрирует новый ключ" in details
    listing = page(operator, "/contracts/")
    assert "Активный" in listing and "Новый ключ ожидает регистрации в Столото" in listing
    assert 'data-action="activate-new-key"' in details

    early = operator.post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert "Столото ещё не зарегистрировал новый ключ договора № ИСТЁК-1" in early.get_data(as_text=True)
    with app.app_context():
        assert contract(contract_id).certificate_state == "rekeying"

    stand.confirm(new_fingerprint)  # the Stoloto operator registers the key from the new Appendix 5
    done = operator.post("/contracts/activate/", {"id": contract_id}, follow_redirects=True)
    assert "Столото выдал сертификат на новый ключ договора № ИСТЁК-1" in done.get_data(as_text=True)
    with app.app_context():
        active = contract(contract_id)
        assert active.certificate_state == "valid" and active.status == "active"
        assert active.public_key_fingerprint == new_fingerprint
        assert active.certificate_pem == stand_contract(stand, "ИСТЁК-1")["certificate"]
        assert sorted(db.session.scalars(select(Terminal.number).where(Terminal.contract_id == contract_id))) \
            == numbers == stand.issued("ИСТЁК-1")
        terminals.fetch_batch(contract_id, "t", force=True)  # the new certificate works for batches
    assert len(stand.issued("ИСТЁК-1")) == 10


def test_while_stoloto_refuses_the_renewed_certificate_the_previous_one_keeps_batches_going(app, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "ЗАПАС-1")
        certificates.renew(contract_id, "t")
        stand.fault("batches", "error", code="UNAUTHORIZED")  # Stoloto does not know the new certificate yet
        assert terminals.fetch_batch(contract_id, "t") == 5  # asked again with the previous certificate
        assert contract(contract_id).previous_certificate_pem is not None  # the new one has not worked yet
        assert terminals.fetch_batch(contract_id, "t", force=True) == 5
        assert contract(contract_id).previous_certificate_pem is None
    assert stand.calls("batches") == 3


def test_a_viewer_may_not_renew_or_rekey_and_sees_no_button(app, stand, web):
    with app.app_context():
        contract_id = activated_contract(stand, "СМОТР-1")
    viewer = web("viewer")
    assert 'data-action="renew-certificate"' not in page(viewer, f"/contracts/details/?id={contract_id}")
    for url in ("/contracts/renew-certificate/", "/contracts/rekey/"):
        assert viewer.post(url, {"id": contract_id}).status_code == 403
    with app.app_context():
        assert contract(contract_id).certificate_state == "valid" and contract(contract_id).renewal_request_id is None


def test_a_bad_contract_id_or_a_contract_without_certificate_gets_a_message(app, web):
    operator = web("operator")
    for bad in ("", "abc", "99999999999999999999", "-1"):
        response = operator.post("/contracts/renew-certificate/", {"id": bad}, follow_redirects=True)
        assert response.status_code == 200 and "Договор не найден." in response.get_data(as_text=True)
    from stoloto.services import contracts
    from stoloto.services.contracts import ContractInput
    with app.app_context():
        created = contracts.create_contract(ContractInput(number="БЕЗ-1", contract_date="15.01.2026",
                                                          agent_inn="7707083893"), "t").id
    for url, action in (("/contracts/renew-certificate/", "Обновить сертификат"),
                        ("/contracts/rekey/", "Перевыпустить ключ")):
        text = operator.post(url, {"id": created}, follow_redirects=True).get_data(as_text=True)
        assert f"Действие «{action}» невозможно для договора в статусе «Создан»." in text


def test_the_job_finishes_a_renewal_whose_answer_was_lost_whenever_it_began(app, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "ПОТЕРЯ-1")  # a year left: not due by itself
        stand.fault("renew", "garbage")
        with pytest.raises(SisError) as lost:
            certificates.renew(contract_id, "t")
        assert lost.value.code == "BAD_RESPONSE"
        request_id = contract(contract_id).renewal_request_id
        assert contract(contract_id).certificate_state == "renewing" and request_id
        renew_certificates()
        assert contract(contract_id).certificate_state == "valid"
        assert contract(contract_id).certificate_pem == stand_contract(stand, "ПОТЕРЯ-1")["certificate"]
        assert db.session.scalar(select(AuditEvent.details).where(
            AuditEvent.action == "Обновление сертификата завершено", AuditEvent.object_id == contract_id))


def test_a_renewed_certificate_for_another_key_is_refused_and_the_current_one_stays(app, stand):
    with app.app_context():
        contract_id = activated_contract(stand, "ЧУЖОЙ-1")
        before = contract(contract_id)
        certificate, key = before.certificate_pem, before.private_key_encrypted
        stand.fault("renew", "certificate", variant="other_key")
        with pytest.raises(SisError) as refused:
            certificates.renew(contract_id, "t")
        assert refused.value.code == "CERTIFICATE_KEY_MISMATCH"
        assert "Действующий сертификат остаётся в работе" in str(refused.value)
        after = contract(contract_id)
        assert (after.certificate_pem, after.private_key_encrypted) == (certificate, key)
        assert after.certificate_state == "valid" and after.pending_private_key_encrypted is None
        assert after.renewal_error.startswith("Столото выдал сертификат не на ключ этого договора.")
        assert certificates.renew(contract_id, "t").renewed  # the next one is a new request, and succeeds


def test_the_header_asks_for_ending_certificates_once_per_page(app, stand, web):
    from tests.conftest import statements_run
    stand.post("/control/certificate-validity", {"minutes": 3 * DAY_MINUTES})
    with app.app_context():
        activated_contract(stand, "ЗАПРОС-1")
    viewer = web("viewer")
    response, statements = statements_run(app, lambda: viewer.get("/stores/"))
    assert 'data-testid="certificate-banner"' in response.get_data(as_text=True)
    assert sum("certificate_not_after <" in statement for statement in statements) == 1


def test_the_upgrade_reads_the_end_of_certificates_stored_before_it(app, stand, web):
    from cryptography import x509
    from flask_migrate import downgrade, upgrade
    with app.app_context():
        contract_id = activated_contract(stand, "ДО-0019")
        not_after = x509.load_pem_x509_certificate(contract(contract_id).certificate_pem.encode()) \
            .not_valid_after_utc.replace(tzinfo=None)
        db.session.remove()
        downgrade(revision="0018")
        upgrade()
        migrated = contract(contract_id)
        assert (migrated.certificate_not_after, migrated.certificate_state) == (not_after, "valid")
        db.session.remove()
    assert "осталось 364 дня" in page(web("viewer"), "/contracts/")
