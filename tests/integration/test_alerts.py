"""Alerts (issue 15 §2): each condition is told once when it starts and once when it clears, by a real SMTP server
and a real HTTP receiver; the job's entry point drives them, and time moves by time-machine, not by sleeping."""
import threading
from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from jobs.alerts import check_alerts
from jobs.terminals import fetch_terminal_batches
from stoloto import settings
from stoloto.extensions import db
from stoloto.models import AlertNotice, AuditEvent, Contract, Store
from stoloto.services import certificates, contracts
from stoloto.services.contracts import ContractInput
from tests.conftest import TOKEN, flashed
from tests.factories import activated_contract
from tests.processes import free_port, wait_for


def channels(smtp_server=None, webhook=None, **extra) -> dict:
    values = {}
    if smtp_server is not None:
        values.update({settings.SMTP_HOST: smtp_server.host, settings.SMTP_PORT: smtp_server.port,
                       settings.SMTP_TLS: settings.TLS_NONE, settings.EMAIL_FROM: "sis@example.ru",
                       settings.EMAIL_TO: "ops@example.ru, duty@example.ru"})
    if webhook is not None:
        values[settings.WEBHOOK_URL] = webhook.url
    values.update(extra)
    settings.save(values, "t")
    return values


def certificate(days: float) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent")])
    now = datetime.now(UTC)
    built = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
             .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    return built


def store_certificate(contract: Contract, days: float) -> None:
    """Stores a certificate ending in `days` days as an activation or a renewal does; commits."""
    issued = certificate(days)
    certificates.record_certificate(contract, issued, issued.public_bytes(Encoding.PEM).decode(), "")
    db.session.commit()


def contract_with_certificate(number: str, days: float) -> int:
    contract = Contract(number=number, status="active", agent_inn="7707083893")
    db.session.add(contract)
    store_certificate(contract, days)
    return contract.id


def told(response) -> list[str]:
    """The test button's flashes (the page also warns that no Stoloto URL is set)."""
    return [text for text in flashed(response) if text.startswith("Тестовое уведомление")]


def pressed(admin) -> str:
    """Presses «Отправить тестовое уведомление»; the request answers at once, and its flash says where it sends."""
    response = admin.post("/settings/test-alert/")
    assert response.status_code == 302
    [message] = told(admin.get(response.headers["Location"]))
    return message


def progress(admin) -> dict:
    """The latest test notice as «Настройки» asks for it (static/progress.js)."""
    response = admin.get("/settings/test-alert/progress/")
    assert response.status_code == 200
    return response.get_json()


def sent(admin) -> dict:
    """The latest test notice's answer once its sending is over."""
    answer = {}

    def over() -> bool:
        answer.update(progress(admin))
        return not answer["waiting"]
    wait_for(over, 60, "the test notice's sending to end")
    return answer


def journal(action: str) -> list[tuple[str, str]]:
    return [(row.result, row.details) for row in db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))]


# --- a) Stoloto fails for longer than the setting, per service ----------------------------------

def test_stoloto_failing_is_told_once_when_it_starts_and_once_when_it_clears(app, stand, smtp_server, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(smtp_server, webhook)
        activated_contract(stand, "DOWN-1")
        stand.fault("batches", "status", count=1000, status=503)
        fetch_terminal_batches()  # the first failure
        check_alerts()
        assert webhook.bodies == [] and smtp_server.messages == []
        clock.shift(timedelta(minutes=14))
        fetch_terminal_batches()
        check_alerts()
        assert webhook.bodies == []  # 14 minutes: not yet
        clock.shift(timedelta(minutes=3))
        fetch_terminal_batches()
        check_alerts()
        check_alerts()
        assert smtp_server.subjects() == ["СИ Столото: сбой Столото (пакеты терминалов) длится 17 мин."]
        assert smtp_server.messages[0]["to"] == ["ops@example.ru", "duty@example.ru"]
        assert "SERVICE_UNAVAILABLE" in smtp_server.messages[0]["body"]
        [body] = webhook.bodies
        assert (body["kind"], body["subject"], body["state"]) == ("stoloto_down", "batches", "firing")
        assert body["title"] == "СИ Столото: сбой Столото (пакеты терминалов) длится 17 мин."
        assert body["started_at"].endswith("Z") and body["resolved_at"] is None

        stand.post("/control/reset")  # Stoloto is back (the stand forgot the faults with its contracts)
        requests.delete(stand.url + "/control/faults", verify=stand.ca_path, timeout=10)
        clock.shift(timedelta(minutes=2))
        fetch_terminal_batches()  # answered now (CONTRACT_NOT_ACTIVATED after the reset is an answer)
        check_alerts()
        check_alerts()
        assert webhook.states() == ["firing", "resolved"]
        assert smtp_server.subjects()[1] == "СИ Столото: Столото снова работает (пакеты терминалов)"
        assert [result for result, _ in journal("Уведомление: начало")] == ["warning"]
        assert len(journal("Уведомление: завершение")) == 1


def test_one_lost_call_is_not_an_outage(app, stand, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(webhook=webhook)
        activated_contract(stand, "DOWN-2")
        stand.fault("batches", "status", count=1, status=503)
        fetch_terminal_batches()
        clock.shift(timedelta(minutes=30))
        check_alerts()
        assert webhook.bodies == []


# --- b) free numbers under the threshold while Stoloto refuses new batches ----------------------

def test_a_refused_pool_is_told_once_and_cleared_when_stoloto_gives_numbers_again(app, stand, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(webhook=webhook)
        activated_contract(stand, "POOL-1", terminal_limit=5)
        fetch_terminal_batches()  # 5 numbers, the whole limit
        settings.save({settings.REFILL_THRESHOLD: 8}, "t")  # 5 free is now under the threshold
        check_alerts()
        assert webhook.bodies == []  # nothing refused yet
        fetch_terminal_batches()  # TERMINAL_LIMIT_EXCEEDED
        check_alerts()
        check_alerts()
        [body] = webhook.bodies
        assert (body["kind"], body["state"]) == ("pool_refused", "firing")
        assert "POOL-1" in body["title"] and "Свободных номеров терминалов у договора № POOL-1: 5" in body["message"]
        stand.register("POOL-1", terminal_limit=50)  # Stoloto raises the limit
        clock.shift(timedelta(minutes=6))  # past the pause after a refusal
        fetch_terminal_batches()
        check_alerts()
        check_alerts()
        assert webhook.states() == ["firing", "resolved"]


# --- c) certificates expiring within 30 and 7 days ---------------------------------------------

def test_certificate_expiry_is_told_at_30_and_at_7_days_and_cleared_by_a_new_certificate(app, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(webhook=webhook)
        contract_id = contract_with_certificate("CERT-1", days=40)
        check_alerts()
        assert webhook.bodies == []
        clock.shift(timedelta(days=11))
        check_alerts()
        check_alerts()
        assert [(b["kind"], b["state"]) for b in webhook.bodies] == [("cert_expiry_30", "firing")]
        assert webhook.bodies[0]["subject"] == str(contract_id)
        assert "сертификат договора № CERT-1 истекает через 28 дней" in webhook.bodies[0]["title"]
        clock.shift(timedelta(days=23))
        check_alerts()
        check_alerts()
        assert [(b["kind"], b["state"]) for b in webhook.bodies][1:] == [("cert_expiry_7", "firing")]
        result = app.test_cli_runner().invoke(args=["alerts", "check"])
        assert result.exit_code == 0, result.output
        assert result.output.endswith("Действуют уведомлений: 2.\n"
                                      "  СИ Столото: сертификат договора № CERT-1 истекает через 28 дней\n"
                                      "  СИ Столото: сертификат договора № CERT-1 истекает через 5 дней\n")
        store_certificate(db.session.get(Contract, contract_id), days=400)
        check_alerts()
        check_alerts()
        assert sorted((b["kind"], b["state"]) for b in webhook.bodies[2:]) == [
            ("cert_expiry_30", "resolved"), ("cert_expiry_7", "resolved")]


def test_the_certificate_check_reads_when_certificates_end_in_one_query_without_reading_them(app, webhook):
    from tests.conftest import statements_run
    with app.app_context():
        channels(webhook=webhook)
        ids = {days: contract_with_certificate(f"CERT-{days}", days) for days in (5, 20, 40)}
        _, statements = statements_run(app, check_alerts)
    assert sum("certificate_not_after <" in statement for statement in statements) == 1
    assert not any("certificate_pem" in statement for statement in statements)
    assert sorted((b["kind"], b["subject"]) for b in webhook.bodies) == [
        ("cert_expiry_30", str(ids[5])), ("cert_expiry_30", str(ids[20])), ("cert_expiry_7", str(ids[5]))]


# --- d) registers waiting longer than the setting ----------------------------------------------

def test_registers_waiting_are_counted_by_reason_told_once_and_cleared(app, web, smtp_server):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(smtp_server, **{settings.CASH_API_TOKEN: TOKEN})
        contract = contracts.create_contract(ContractInput(number="WAIT-1", contract_date="15.01.2026",
                                                           agent_inn="7707083893"), "t")
        db.session.add(Store(code="101", contract_id=contract.id, name="Магазин №101", source="manual"))
        db.session.commit()
        client = app.test_client()
        for cash_number in (1, 2, 3):
            answer = client.post("/api/v1/cash-registers/registration", json={"store_code": "101",
                                 "cash_number": cash_number}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.json["reason"] == "CONTRACT_NOT_ACTIVE"
        clock.shift(timedelta(minutes=59))
        check_alerts()
        assert smtp_server.messages == []
        clock.shift(timedelta(minutes=2))
        check_alerts()
        check_alerts()
        assert smtp_server.subjects() == [
            "СИ Столото: 3 кассы ждут регистрации дольше 60 мин. («Договор не активен»)"]
        assert smtp_server.messages[0]["body"].startswith(
            "3 кассы ждут регистрации дольше 60 мин. Причина ожидания: «Договор не активен».")
        admin = web("admin")
        page = admin.get("/settings/").get_data(as_text=True)
        assert "СИ Столото: 3 кассы ждут регистрации дольше 60 мин. («Договор не активен») — с " in page
        journal_page = admin.get("/journal/")
        assert journal_page.status_code == 200 and "Уведомление: начало" in journal_page.get_data(as_text=True)
        settings.save({settings.ALERT_WAITING_MINUTES: 120}, "t")
        check_alerts()
        check_alerts()
        assert smtp_server.subjects()[1:] == ["СИ Столото: кассы больше не ждут регистрации дольше порога"]


# --- the rules of sending ----------------------------------------------------------------------

def test_two_runs_at_once_never_send_twice(app, smtp_server, webhook):
    with app.app_context():
        channels(smtp_server, webhook)
        contract_with_certificate("RACE-1", days=3)
    webhook.delay = 0.3  # a slow receiver keeps the runs overlapping
    failures = []

    def run():
        try:
            with app.app_context():
                check_alerts()
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert sorted(b["kind"] for b in webhook.bodies) == ["cert_expiry_30", "cert_expiry_7"]
    assert len(smtp_server.messages) == 2
    with app.app_context():
        check_alerts()
    assert len(webhook.bodies) == 2 and len(smtp_server.messages) == 2


def test_an_unreachable_mail_server_is_a_journaled_warning_and_is_tried_again(app, webhook):
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        channels(webhook=webhook, **{settings.SMTP_HOST: "127.0.0.1", settings.SMTP_PORT: free_port(),
                                     settings.SMTP_TLS: settings.TLS_NONE, settings.EMAIL_FROM: "sis@example.ru",
                                     settings.EMAIL_TO: "ops@example.ru"})
        contract_with_certificate("SMTP-1", days=20)
        check_alerts()  # the job itself does not fail
        assert webhook.states() == ["firing"]  # the other channel is not held up
        warnings = [d for r, d in journal("Отправка уведомления") if r == "warning"]
        assert len(warnings) == 1 and "почтовый сервер 127.0.0.1" in warnings[0] and "недоступен" in warnings[0]
        email = db.session.scalar(select(AlertNotice).where(AlertNotice.channel == "email"))
        assert (email.status, email.attempts) == ("pending", 1)
        check_alerts()
        assert db.session.scalar(select(AlertNotice.attempts).where(AlertNotice.channel == "email")) == 1
        clock.shift(timedelta(minutes=6))  # the retry is due
        check_alerts()
        assert db.session.scalar(select(AlertNotice.attempts).where(AlertNotice.channel == "email")) == 2
        assert webhook.states() == ["firing"]


def test_an_external_service_opens_and_closes_an_episode_once(app, webhook):
    from stoloto.services import alerts
    with app.app_context():
        channels(webhook=webhook)
        assert alerts.open_alert(alerts.RENEWAL_FAILED, "7", "СИ Столото: сертификат не обновлён", "Отказ.")
        contract_id = contract_with_certificate("OPEN-1", days=400)
        db.session.get(Contract, contract_id).comment = "изменено до уведомления"  # the caller's work, not committed
        assert not alerts.open_alert(alerts.RENEWAL_FAILED, "7", "СИ Столото: сертификат не обновлён", "Отказ.")
        db.session.remove()  # what open_alert did not commit is gone
        assert db.session.get(Contract, contract_id).comment == "изменено до уведомления"
        check_alerts()  # the job sends it, and does not close what it does not check
        assert alerts.close_alert(alerts.RENEWAL_FAILED, "7")
        assert not alerts.close_alert(alerts.RENEWAL_FAILED, "7")
        check_alerts()
    assert [(b["kind"], b["state"]) for b in webhook.bodies] == [("renewal_failed", "firing"),
                                                                  ("renewal_failed", "resolved")]
    assert [b["title"] for b in webhook.bodies] == ["СИ Столото: сертификат не обновлён",
                                                    "СИ Столото: сертификат обновлён"]


# --- «Отправить тестовое уведомление» ----------------------------------------------------------

def test_the_test_button_says_where_it_sends_and_the_page_follows_it_to_the_result(app, web, smtp_server, webhook):
    with app.app_context():
        channels(smtp_server, webhook)
    admin = web("admin")
    assert pressed(admin) == ("Тестовое уведомление отправляется: e-mail (ops@example.ru, duty@example.ru), webhook "
                              "(127.0.0.1). Результат появится ниже.")
    assert sent(admin) == {"waiting": False, "notice": (
        "Тестовое уведомление отправлено: e-mail (ops@example.ru, duty@example.ru): принято почтовым сервером; "
        "webhook (127.0.0.1): принято, ответ 200.")}
    assert smtp_server.subjects() == ["СИ Столото: тестовое уведомление"]
    assert webhook.states() == ["test"] and webhook.content_types == "application/json; charset=utf-8"
    page = admin.get("/settings/").get_data(as_text=True)
    assert "Последняя доставка уведомлений" in page and "принято, ответ 200" in page
    assert "Тестовое уведомление отправлено: e-mail" in page and "data-sis-progress" not in page
    assert "Сейчас нет действующих уведомлений." in page
    with app.app_context():
        assert [r for r, _ in journal("Отправка уведомления")] == ["ok", "ok"]


def test_the_test_button_answers_before_a_slow_webhook_does_and_the_page_asks_until_it_has(app, web, smtp_server,
                                                                                           webhook):
    with app.app_context():
        channels(smtp_server, webhook)
    admin = web("admin")
    webhook.release.clear()  # the webhook holds its answer until the request is over
    try:
        response = admin.post("/settings/test-alert/")
        assert response.status_code == 302
        assert progress(admin)["waiting"] is True  # the request came back with the webhook's answer still to come
        page = admin.get(response.headers["Location"]).get_data(as_text=True)
        assert 'data-sis-progress="/settings/test-alert/progress/"' in page and "progress.js" in page
        assert "Тестовое уведомление отправляется" in page
        wait_for(lambda: "почтовым" in progress(admin)["notice"], 30, "the e-mail's result")
        assert progress(admin) == {"waiting": True, "notice": (
            "Тестовое уведомление отправляется: e-mail (ops@example.ru, duty@example.ru): принято почтовым "
            "сервером; webhook (127.0.0.1): ещё отправляется.")}
    finally:
        webhook.release.set()
    assert sent(admin)["notice"].endswith("webhook (127.0.0.1): принято, ответ 200.")
    assert webhook.states() == ["test"]


def test_the_test_button_with_an_unreachable_mail_server_is_a_warning_not_an_error_page(app, web):
    with app.app_context():
        channels(**{settings.SMTP_HOST: "127.0.0.1", settings.SMTP_PORT: free_port(),
                    settings.SMTP_TLS: settings.TLS_NONE, settings.EMAIL_FROM: "sis@example.ru",
                    settings.EMAIL_TO: "ops@example.ru"})
    admin = web("admin")
    assert pressed(admin) == "Тестовое уведомление отправляется: e-mail (ops@example.ru). Результат появится ниже."
    notice = sent(admin)["notice"]
    assert notice.startswith("Тестовое уведомление не доставлено: e-mail (ops@example.ru): почтовый сервер "
                             "127.0.0.1:")
    assert "недоступен" in notice
    page = admin.get("/settings/")
    assert page.status_code == 200 and "не доставлено" in page.get_data(as_text=True)
    with app.app_context():
        assert [r for r, _ in journal("Отправка уведомления")] == ["warning"]


def test_the_test_button_says_which_channel_failed_when_another_delivered(app, web, smtp_server):
    port = free_port()  # nobody listens there
    with app.app_context():
        channels(smtp_server, **{settings.WEBHOOK_URL: f"http://127.0.0.1:{port}/alerts"})
    admin = web("admin")
    pressed(admin)
    assert sent(admin)["notice"] == (
        "Тестовое уведомление отправлено не везде: e-mail (ops@example.ru, duty@example.ru): принято почтовым "
        "сервером; webhook (127.0.0.1): webhook на 127.0.0.1 недоступен: соединение не установлено.")


def test_the_test_button_without_channels_says_so(app, web):
    admin = web("admin")
    response = admin.post("/settings/test-alert/", follow_redirects=True)
    assert told(response) == ["Тестовое уведомление не отправлено: не настроен ни один канал. Укажите почтовый "
                                 "сервер, отправителя и получателей писем или адрес webhook и сохраните настройки."]
    assert progress(admin) == {"waiting": False, "notice": "Тестовое уведомление ещё не отправлялось."}
    assert "data-sis-progress" not in response.get_data(as_text=True)


def test_the_test_button_and_its_progress_are_for_administrators_with_the_csrf_token(app, web):
    operator = web("operator")
    assert operator.post("/settings/test-alert/").status_code == 403
    assert operator.get("/settings/test-alert/progress/").status_code == 403
    assert app.test_client().get("/settings/test-alert/progress/").status_code == 302  # to the login page
    admin = web("admin")
    assert admin.post("/settings/test-alert/", {"csrf_token": "forged"}).status_code == 400
    with app.app_context():
        assert journal("Тестовое уведомление") == []


# --- settings «Уведомления» --------------------------------------------------------------------

@pytest.mark.parametrize("key, value, message", [
    (settings.SMTP_PORT, "70000", "Допустимые значения: от 1 до 65535."),
    (settings.SMTP_PORT, "двадцать пять", "Введите целое число."),
    (settings.SMTP_PORT, "9" * 30, "Допустимые значения: от 1 до 65535."),
    (settings.EMAIL_TO, "ops@example.ru, " * 200, "Значение длиннее 2000 символов."),
    (settings.SMTP_HOST, "smtp://mail.example.ru", "Укажите имя или IP-адрес сервера без схемы и порта"),
    (settings.SMTP_TLS, "tls13", "Выберите значение из списка."),
    (settings.EMAIL_FROM, "sis.example.ru", "«sis.example.ru» — не адрес электронной почты"),
    (settings.EMAIL_TO, "ops@example.ru, дежурный", "«дежурный» — не адрес электронной почты"),
    (settings.WEBHOOK_URL, "hooks.example.ru/alerts", "Укажите адрес вида https://host:port."),
    (settings.ALERT_STOLOTO_MINUTES, "0", "Допустимые значения: от 1 до 10080."),
    (settings.EMAIL_TO, "ops@example.ru\x00",
     "Значение содержит нулевой байт (символ с кодом 0): удалите этот символ."),
])
def test_bad_alert_settings_are_refused_with_a_russian_message(app, web, key, value, message):
    admin = web("admin")
    admin.get("/settings/")  # the first visit stores the cash API token
    with app.app_context():
        before = settings.all_values()
    response = admin.post("/settings/", {settings.SMTP_HOST: "mail.example.ru", key: value})
    if "\x00" in value:  # the panel's boundary refuses it before the view; the service refuses it too
        assert response.status_code == 400
        with app.app_context(), pytest.raises(settings.errors.SisError) as error:
            settings.save({key: value}, "t")
        assert error.value.fields[key] == message
    else:
        assert response.status_code == 200 and message in response.get_data(as_text=True)
    with app.app_context():
        assert settings.all_values() == before  # nothing saved, the good field neither


def test_the_smtp_password_is_sealed_and_never_shown_back(app, web):
    admin = web("admin")
    admin.post("/settings/", {settings.SMTP_PASSWORD: "pa55-word-secret"})
    page = admin.get("/settings/").get_data(as_text=True)
    assert "pa55-word-secret" not in page and "Задан — оставьте пустым, чтобы не менять" in page
    with app.app_context():
        from stoloto.models import Setting
        assert "pa55-word-secret" not in db.session.get(Setting, settings.SMTP_PASSWORD).value
        assert settings.get(settings.SMTP_PASSWORD) == "pa55-word-secret"
        assert "pa55-word-secret" not in " ".join(d for _, d in journal("Изменение настройки"))
    admin.post("/settings/", {settings.SMTP_PASSWORD: "", settings.SMTP_LOGIN: "sis"})  # empty keeps it
    with app.app_context():
        settings.forget()
        assert settings.get(settings.SMTP_PASSWORD) == "pa55-word-secret"
    admin.post("/settings/", {settings.SMTP_PASSWORD: "", f"{settings.SMTP_PASSWORD}.clear": "1"})
    with app.app_context():
        settings.forget()
        assert settings.get(settings.SMTP_PASSWORD) == ""


# On a connection that began with TLS aiosmtpd cannot tell it is encrypted, and warns that AUTH may go in clear.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", [settings.TLS_STARTTLS, settings.TLS_SSL])
def test_mail_goes_over_starttls_or_ssl_with_a_login(app, web, tls_smtp_server, mode):
    from tests.alert_receivers import LOGIN, PASSWORD
    server = tls_smtp_server(mode)
    with app.app_context():
        channels(server, **{settings.SMTP_TLS: mode, settings.SMTP_LOGIN: LOGIN, settings.SMTP_PASSWORD: PASSWORD})
    admin = web("admin")
    pressed(admin)
    assert sent(admin)["notice"] == ("Тестовое уведомление отправлено: e-mail (ops@example.ru, duty@example.ru): "
                                     "принято почтовым сервером.")
    assert server.subjects() == ["СИ Столото: тестовое уведомление"]
    with app.app_context():
        settings.save({settings.SMTP_PASSWORD: "wrong-password"}, "t")
    pressed(admin)
    assert sent(admin)["notice"] == ("Тестовое уведомление не доставлено: e-mail (ops@example.ru, duty@example.ru): "
                                     f"почтовый сервер 127.0.0.1:{server.port} не принял логин и пароль.")


def test_stoloto_state_is_written_when_it_changes_not_on_every_call(app, stand):
    from stoloto.models import StolotoEndpoint
    with app.app_context(), time_machine.travel(datetime.now(UTC), tick=False) as clock:
        activated_contract(stand, "STATE-1")
        settings.save({settings.REFILL_THRESHOLD: 1000}, "t")  # every run asks for a batch
        started = datetime.now(UTC).replace(tzinfo=None)

        def row():
            return db.session.scalars(select(StolotoEndpoint).where(StolotoEndpoint.endpoint == "batches")
                                      .execution_options(populate_existing=True)).one()

        fetch_terminal_batches()
        clock.shift(timedelta(seconds=30))
        fetch_terminal_batches()
        assert stand.calls("batches") == 2
        assert (row().state, row().last_ok_at) == ("ok", started)  # the second success wrote nothing
        stand.fault("batches", "status", count=1, status=503)
        fetch_terminal_batches()  # a change: written at once
        assert (row().state, row().failing_since) == ("failing", started + timedelta(seconds=30))
        fetch_terminal_batches()  # and back
        assert (row().state, row().failing_since, row().last_ok_at) == ("ok", None, started + timedelta(seconds=30))


def test_the_webhook_url_is_sealed_and_the_journal_names_only_its_host(app, web, webhook):
    secret_url = webhook.url + "/T0001/B0002/secret-token-123"
    admin = web("admin")
    admin.post("/settings/", {settings.WEBHOOK_URL: secret_url})
    pressed(admin)
    sent(admin)
    with app.app_context():
        from stoloto.models import Setting
        assert "secret-token-123" not in db.session.get(Setting, settings.WEBHOOK_URL).value
        assert all("secret-token-123" not in (details or "") for _, details in journal("Изменение настройки")
                   + journal("Отправка уведомления") + journal("Тестовое уведомление"))
        assert journal("Отправка уведомления") == [("ok", "тестовое уведомление — webhook (127.0.0.1): принято, "
                                                          "ответ 200")]
    assert webhook.states() == ["test"]
    port = free_port()  # nobody listens there
    admin.post("/settings/", {settings.WEBHOOK_URL: f"http://127.0.0.1:{port}/T0001/B0002/secret-token-123"})
    pressed(admin)
    assert sent(admin)["notice"] == ("Тестовое уведомление не доставлено: webhook (127.0.0.1): webhook на 127.0.0.1 "
                                     "недоступен: соединение не установлено.")
    with app.app_context():
        assert journal("Отправка уведомления")[1] == (
            "warning", "тестовое уведомление не доставлено — webhook (127.0.0.1): webhook на 127.0.0.1 недоступен: "
                       "соединение не установлено.")


def test_the_scheduler_run_checks_the_alerts(app, webhook):
    from jobs.scheduler import JobRunner
    with app.app_context():
        channels(webhook=webhook)
        contract_with_certificate("TICK-1", days=20)
    JobRunner(app).tick()  # takes the lease and runs every job, the alerts' included
    assert [(b["kind"], b["state"]) for b in webhook.bodies] == [("cert_expiry_30", "firing")]


# --- the certificate's renewal failed; the pool runs out at the current rate --------------------

def test_a_failed_renewal_is_told_once_and_cleared_by_the_renewal_that_succeeds(app, stand, webhook):
    cli = app.test_cli_runner()
    with app.app_context():
        channels(webhook=webhook)
        activated_contract(stand, "RENEW-1")
        stand.fault("renew", "garbage")
        refused = cli.invoke(args=["certificates", "renew", "--contract", "RENEW-1"])
        assert refused.exit_code != 0
        check_alerts()
        check_alerts()
        [body] = webhook.bodies
        assert (body["kind"], body["state"]) == ("renewal_failed", "firing")
        assert body["title"] == "СИ Столото: сертификат договора № RENEW-1 не обновлён"
        assert body["message"].startswith("Обновить сертификат Столото договора № RENEW-1 не удалось: ")
        renewed = cli.invoke(args=["certificates", "renew", "--contract", "RENEW-1"])
        assert renewed.exit_code == 0, renewed.output
        check_alerts()
        check_alerts()
        assert webhook.states() == ["firing", "resolved"]


def test_a_pool_running_out_at_the_current_rate_is_told_once_and_cleared(app, stand, webhook):
    start = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    with app.app_context(), time_machine.travel(start, tick=False) as clock:
        channels(webhook=webhook, **{settings.CASH_API_TOKEN: TOKEN, settings.BATCH_SIZE: 20,
                                     settings.REFILL_THRESHOLD: 1})
        contract_id = activated_contract(stand, "RATE-1")
        fetch_terminal_batches()  # 20 numbers
        db.session.add(Store(code="601", contract_id=contract_id, name="Магазин 601", source="manual"))
        db.session.commit()
        client = app.test_client()
        for cash_number in range(1, 8):  # 7 numbers used in a week: one a day, 13 left for 13 days
            answer = client.post("/api/v1/cash-registers/registration", json={
                "store_code": "601", "cash_number": cash_number}, headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.json["status"] == "REGISTERED"
        clock.shift(timedelta(hours=1))
        check_alerts()
        assert webhook.bodies == []  # 13 days left, the setting's 7 not reached
        settings.save({settings.ALERT_POOL_DAYS: 14}, "t")
        check_alerts()
        check_alerts()
        [body] = webhook.bodies
        assert (body["kind"], body["subject"], body["state"]) == ("pool_forecast", str(contract_id), "firing")
        assert body["title"] == "СИ Столото: номера терминалов договора № RATE-1 кончатся примерно через 13 дней"
        assert "Свободных номеров: 13; за 7 дней использовано 7" in body["message"]
        settings.save({settings.ALERT_POOL_DAYS: 10}, "t")
        check_alerts()
        check_alerts()
        assert webhook.states() == ["firing", "resolved"]
