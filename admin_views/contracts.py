"""Menu "Администрирование" → "Договоры": the list, the form and the row actions."""
import io

from cryptography import x509
from flask import flash, g, jsonify, redirect, request, send_file
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.form import BaseForm
from flask_admin.model.template import TemplateLinkRowAction
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select
from wtforms import StringField, TextAreaField

from jobs import scheduler
from stoloto import appendix, clock, crypto
from stoloto.certificate_lifecycle import CertificateState
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.lifecycle import STATUS_LABELS, ActivationStep, ContractStatus, status_label
from stoloto.models import AuditEvent, Contract, TerminalBatch
from stoloto.services import activation, certificates, contracts, terminals
from stoloto.services.contracts import ContractInput

from .export import ExportMixin
from .formatters import date_formatter, datetime_formatter, in_zone, local_time
from .guard import record_id, requested_id
from .required import mark_required
from .security import SecureModelView, actor, delete_or_show, require_can_act, save_or_show, show_error


class RussianDateField(StringField):
    """A text field shown as ДД.ММ.ГГГГ; the service parses and checks what was typed."""

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return f"{self.data:%d.%m.%Y}" if self.data else ""


class ContractForm(BaseForm):
    number = StringField("Номер договора", render_kw={"placeholder": "например, СТ-2026/001"})
    contract_date = RussianDateField("Дата заключения договора",
                                     render_kw={"placeholder": "ДД.ММ.ГГГГ", "autocomplete": "off"})
    agent_inn = StringField("ИНН агента", render_kw={"placeholder": "10 или 12 цифр", "inputmode": "numeric"})
    agent_name = StringField("Наименование агента")
    comment = TextAreaField("Комментарий")


NEEDED_FOR_ACTIVATION = "Нужно для активации договора; без этого поля договор сохранится как черновик."
LOCKED = "Договор активирован в Столото: это поле изменить нельзя."


def waiting_notice() -> str:
    """What a contract waiting for its terminal numbers says: when the job asks Stoloto next (once per request)."""
    if "sis_waiting_notice" not in g:
        moment = scheduler.next_run()
        if moment:
            notice = ("Запрос номеров терминалов в Столото выполняется: следующий запуск фонового задания — "
                      f"{local_time(moment)} ({clock.label()}).")
        else:
            notice = ("Номера терминалов ещё не получены: фоновое задание сейчас не запущено ни в одном процессе СИ. "
                      + ("Запросите их кнопкой «Запросить номера сейчас»." if current_user.can_act else
                         "Запросить их может оператор или администратор."))
        g.sis_waiting_notice = notice
    return g.sis_waiting_notice


def _status_formatter(view, context, model, name):
    # The cell updates itself (static/progress.js) while the contract waits for its terminal numbers.
    if model.certificate_state == CertificateState.REKEYING.value:
        return Markup('<span id="contract-status-{}" data-sis-live>{}<small class="d-block text-danger" '
                      'data-testid="rekeying">{}</small></span>').format(
            model.id, status_label(model.status), CertificateState.REKEYING.label)
    if not contracts.waiting_for_terminals(model):
        return Markup('<span id="contract-status-{}" data-sis-live>{}</span>').format(
            model.id, status_label(model.status))
    return Markup(
        '<span id="contract-status-{id}" data-sis-live data-sis-progress="{url}">{label}'
        '<small class="d-block text-muted" data-testid="terminals-request" data-sis-notice>{notice}</small></span>'
    ).format(id=model.id, url=view.get_url(".progress_view", id=model.id), label=status_label(model.status),
             notice=waiting_notice())


def _certificate_formatter(view, context, model, name):
    """«Сертификат до»: the end date and the days left, coloured as the header warns."""
    shown = certificates.validity_of(model)
    if shown is None:
        return ""
    return Markup('<span class="text-nowrap text-{level}" data-testid="certificate-until" title="{title}">'
                  '{date}<small class="d-block">{left}</small></span>').format(
        level=shown.level, date=local_time(shown.not_after, "%d.%m.%Y"), left=shown.left,
        title=shown.state.label)


def _fingerprint_formatter(view, context, model, name):
    # In monospace, as the certificate's and «Тестовый стенд»'s: the groups line up when compared by eye.
    if not model.public_key_fingerprint:
        return ""
    return Markup("<code>{}</code>").format(crypto.format_fingerprint(model.public_key_fingerprint))


def _csr_formatter(view, context, model, name):
    return Markup("<pre class='mb-0'>{}</pre>").format(model.csr_pem) if model.csr_pem else ""


def certificate_summary(pem: str | None) -> dict | None:
    if not pem:
        return None
    certificate = x509.load_pem_x509_certificate(pem.encode())
    return {
        "subject": crypto.describe_subject(certificate.subject),
        "issuer": certificate.issuer.rfc4514_string(),
        "not_before": certificate.not_valid_before_utc,
        "not_after": certificate.not_valid_after_utc,
        "fingerprint": crypto.format_fingerprint(crypto.public_key_fingerprint(certificate.public_key())),
        "serial": format(certificate.serial_number, "X"),
    }


class ContractView(ExportMixin, SecureModelView):
    help_anchor = "договоры"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "dogovory"
    column_export_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "certificate_not_after",
                          "comment", "created_at", "updated_at")
    column_export_days = ("certificate_not_after",)
    list_template = "admin/contracts/list.html"
    details_template = "admin/contracts/details.html"
    edit_template = "admin/contracts/edit.html"
    can_view_details = True
    form = ContractForm
    column_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "certificate_not_after",
                   "updated_at")
    column_details_list = ("number", "contract_date", "agent_inn", "agent_name", "comment", "status",
                           "key_algorithm", "public_key_fingerprint", "csr_pem", "appendix_generated_at",
                           "created_at", "updated_at")
    column_labels = {
        "number": "Номер договора", "contract_date": "Дата заключения договора",
        "agent_inn": "ИНН агента", "agent_name": "Наименование агента", "comment": "Комментарий",
        "status": "Статус", "created_at": in_zone("Создан"), "updated_at": in_zone("Изменён"),
        "key_algorithm": "Алгоритм ключа", "public_key_fingerprint": "Отпечаток открытого ключа (SHA-256)",
        "csr_pem": "Запрос на сертификат", "appendix_generated_at": in_zone("Приложение №5 сформировано"),
        "certificate_not_after": "Сертификат до",
    }
    column_filters = [FilterEqual(Contract.status, "Статус",
                                  options=[(status.value, label) for status, label in STATUS_LABELS.items()]),
                      "contract_date"]
    column_searchable_list = ("number", "agent_inn", "agent_name")
    column_sortable_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "certificate_not_after",
                            "updated_at")
    column_default_sort = ("id", True)
    column_formatters = {
        "status": _status_formatter, "contract_date": date_formatter, "updated_at": datetime_formatter,
        "certificate_not_after": _certificate_formatter,
    }
    column_formatters_export = {"status": lambda view, context, model, name: status_label(model.status)}
    column_formatters_detail = dict(column_formatters, created_at=datetime_formatter,
                                    appendix_generated_at=datetime_formatter,
                                    public_key_fingerprint=_fingerprint_formatter, csr_pem=_csr_formatter)
    column_extra_row_actions = [
        TemplateLinkRowAction("contract_actions.activate", "Активировать договор"),
        TemplateLinkRowAction("contract_actions.request_terminals", "Запросить номера сейчас"),
        TemplateLinkRowAction("contract_actions.appendix", "Приложение к договору"),
    ]

    def _fitted(self, form, status: str | None):
        """The form as the contract's status allows: what cannot change is read-only, what must not be empty
        is marked required; both rules are the contracts service's."""
        locked = contracts.locked_fields(status) if status else ()
        required = contracts.required_fields(status)
        for field in form:
            if field.name in locked:
                field.render_kw = {**(field.render_kw or {}), "readonly": True}
                field.description = LOCKED
            elif field.name in required:
                mark_required(field)
            elif field.name in contracts.REQUIRED_FIELDS:
                field.description = NEEDED_FOR_ACTIVATION
        return form

    def create_form(self, obj=None):
        return self._fitted(super().create_form(obj), None)

    def edit_form(self, obj=None):
        return self._fitted(super().edit_form(obj), obj.status)

    def _input(self, form) -> ContractInput:
        return ContractInput(number=form.number.data, contract_date=form.contract_date.data,
                             agent_inn=form.agent_inn.data, agent_name=form.agent_name.data,
                             comment=form.comment.data)

    def _save(self, form, save):
        contract = save_or_show(form, save)
        if contract and contract.status == ContractStatus.DRAFT.value:
            flash("Договор сохранён как черновик: действия с ним станут доступны, когда будут заполнены "
                  "номер, дата заключения и ИНН агента.", "warning")
        return contract

    def create_model(self, form):
        return self._save(form, lambda: contracts.create_contract(self._input(form), actor()))

    def update_model(self, form, model):
        generated_before = model.appendix_generated_at
        contract = self._save(form, lambda: contracts.update_contract(model, self._input(form), actor()))
        if contract and contract.appendix_generated_at != generated_before:
            flash(Markup("Приложение №5 обновлено — передайте в Столото новую версию: "
                         '<a href="{}" class="alert-link" data-testid="new-appendix">скачать «Приложение №5»</a>.')
                  .format(self.get_url(".appendix_view", id=contract.id)), "warning")
        return contract

    def delete_model(self, model):
        return delete_or_show(lambda: contracts.delete_contract(model, actor()))

    def _return_url(self) -> str:
        url = request.form.get("url") or ""
        return url if url.startswith("/") and not url.startswith("//") else self.get_url(".index_view")

    @expose("/activate/", methods=("POST",))
    def activate_view(self):
        """"Активировать договор": the service takes the step that fits the status and says which it took."""
        require_can_act()
        try:
            contract, step = activation.take_next_step(requested_id(request.form, "Договор"), actor())
        except SisError as error:
            show_error(error)
            return redirect(self._return_url())
        if step is ActivationStep.ACTIVATE_NEW_KEY:
            flash(f"Столото выдал сертификат на новый ключ договора № {contract.number}: договор снова работает "
                  "со Столото. Номера терминалов и кассы договора сохранены.", "success")
        elif step is ActivationStep.ACTIVATE:
            flash(f"Договор № {contract.number} активирован в Столото и переведён в статус "
                  f"«{status_label(contract.status)}». Номера терминалов будут получены автоматически.", "success")
        else:
            flash(Markup(
                "Договор № {number} переведён в статус «{status}»: сформированы ключ СИ, запрос на сертификат "
                "и «Приложение №5». <a href=\"{link}\" class=\"alert-link\">Скачайте «Приложение №5»</a>, "
                "подпишите его и передайте представителю Столото."
            ).format(number=contract.number, status=status_label(contract.status),
                     link=self.get_url(".appendix_view", id=contract.id)), "success")
        return redirect(self._return_url())

    @expose("/renew-certificate/", methods=("POST",))
    def renew_certificate_view(self):
        """«Обновить сертификат»: a new key and certificate from Stoloto (§1.4) while the current one is valid."""
        require_can_act()
        try:
            renewal = certificates.renew(requested_id(request.form, "Договор"), actor())
        except SisError as error:
            show_error(error)
            return redirect(self._return_url())
        shown = certificates.validity_of(renewal.contract)
        flash(f"Сертификат договора № {renewal.contract.number} обновлён: новый сертификат действует "
              f"{shown.until if shown else ''}. Прежний ключ удаляется после первого обращения к Столото с новым.",
              "success")
        return redirect(self._return_url())

    @expose("/rekey/", methods=("POST",))
    def rekey_view(self):
        """«Перевыпустить ключ»: after an expiry, a new key and «Приложение №5» (a re-keying)."""
        require_can_act()
        try:
            contract = certificates.rekey(requested_id(request.form, "Договор"), actor())
        except SisError as error:
            show_error(error)
            return redirect(self._return_url())
        flash(Markup(
            "Для договора № {number} сформированы новый ключ СИ, запрос на сертификат и «Приложение №5» "
            "(перевыпуск ключа). <a href=\"{link}\" class=\"alert-link\">Скачайте «Приложение №5»</a>, подпишите "
            "его и передайте в Столото; когда Столото зарегистрирует ключ, нажмите «Активировать договор»."
        ).format(number=contract.number, link=self.get_url(".appendix_view", id=contract.id)), "success")
        return redirect(self._return_url())

    @expose("/request-terminals/", methods=("POST",))
    def request_terminals_view(self):
        """"Запросить номера сейчас": what the background job does for a contract waiting for numbers, at once."""
        require_can_act()
        try:
            flash(contracts.request_terminals_now(requested_id(request.form, "Договор"), actor()), "success")
        except SisError as error:
            show_error(error)
        return redirect(self._return_url())

    @expose("/progress/")
    def progress_view(self):
        """The contract's status for static/progress.js, which updates the page while it waits for terminals."""
        contract = db.session.get(Contract, record_id(request.args.get("id")) or 0)
        if contract is None:
            return jsonify({"error": "Договор не найден."}), 404
        waiting = contracts.waiting_for_terminals(contract)
        return jsonify({"status": contract.status, "label": status_label(contract.status), "waiting": waiting,
                        "notice": waiting_notice() if waiting else None})

    @expose("/appendix/")
    def appendix_view(self):
        """"Приложение к договору": downloads the .docx."""
        try:
            content, filename = contracts.appendix_file(requested_id(request.args, "Договор"))
        except SisError as error:
            show_error(error)
            return redirect(self.get_url(".index_view"))
        return send_file(io.BytesIO(content), mimetype=appendix.DOCX_MIME, as_attachment=True,
                         download_name=filename)

    def render(self, template, **kwargs):
        # The row actions ask the service's rules, not lists of statuses of their own.
        kwargs["activation_step"] = activation.next_step
        kwargs["certificate_action"] = certificates.offered_action
        kwargs["waiting_for_terminals"] = contracts.waiting_for_terminals
        if template == self.edit_template and "model" in kwargs:
            kwargs["locked_fields"] = contracts.locked_fields(kwargs["model"].status)
        if template == self.details_template and "model" in kwargs:
            model = kwargs["model"]
            kwargs["certificate"] = certificate_summary(model.certificate_pem)
            kwargs["validity"] = certificates.validity_of(model)
            kwargs["new_key_fingerprint"] = certificates.pending_fingerprint(model)
            kwargs["pool"] = terminals.pool_counts(model.id)
            kwargs["batches"] = db.session.scalars(
                select(TerminalBatch).where(TerminalBatch.contract_id == model.id)
                .order_by(TerminalBatch.id.desc()).limit(50)).all()
            kwargs["history"] = db.session.scalars(
                select(AuditEvent).where(AuditEvent.object_type == "contract",
                                         AuditEvent.object_id == kwargs["model"].id)
                .order_by(AuditEvent.id.desc()).limit(100)).all()
        return super().render(template, **kwargs)
