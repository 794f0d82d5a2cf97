"""Menu "Администрирование" → "Договоры": the list, the form and the row actions."""
import io

from cryptography import x509
from flask import flash, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.form import BaseForm
from flask_admin.model.template import TemplateLinkRowAction
from markupsafe import Markup
from sqlalchemy import select
from wtforms import StringField, TextAreaField

from stoloto import appendix, crypto
from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.lifecycle import STATUS_LABELS, ContractStatus, status_label
from stoloto.models import AuditEvent, Contract, TerminalBatch
from stoloto.services import activation, contracts, terminals
from stoloto.services.contracts import ContractInput

from .export import ExportMixin
from .formatters import date_formatter, datetime_formatter, in_zone
from .guard import requested_id
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


def _status_formatter(view, context, model, name):
    return status_label(model.status)


def _fingerprint_formatter(view, context, model, name):
    return crypto.format_fingerprint(model.public_key_fingerprint) if model.public_key_fingerprint else ""


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
    column_export_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "comment", "created_at",
                          "updated_at")
    list_template = "admin/contracts/list.html"
    details_template = "admin/contracts/details.html"
    edit_template = "admin/contracts/edit.html"
    can_view_details = True
    form = ContractForm
    column_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "updated_at")
    column_details_list = ("number", "contract_date", "agent_inn", "agent_name", "comment", "status",
                           "key_algorithm", "public_key_fingerprint", "csr_pem", "appendix_generated_at",
                           "created_at", "updated_at")
    column_labels = {
        "number": "Номер договора", "contract_date": "Дата заключения договора",
        "agent_inn": "ИНН агента", "agent_name": "Наименование агента", "comment": "Комментарий",
        "status": "Статус", "created_at": in_zone("Создан"), "updated_at": in_zone("Изменён"),
        "key_algorithm": "Алгоритм ключа", "public_key_fingerprint": "Отпечаток открытого ключа (SHA-256)",
        "csr_pem": "Запрос на сертификат", "appendix_generated_at": in_zone("Приложение №5 сформировано"),
    }
    column_filters = [FilterEqual(Contract.status, "Статус",
                                  options=[(status.value, label) for status, label in STATUS_LABELS.items()])]
    column_searchable_list = ("number", "agent_inn", "agent_name")
    column_sortable_list = ("number", "contract_date", "agent_inn", "agent_name", "status", "updated_at")
    column_default_sort = ("id", True)
    column_formatters = {
        "status": _status_formatter, "contract_date": date_formatter, "updated_at": datetime_formatter,
    }
    column_formatters_detail = dict(column_formatters, created_at=datetime_formatter,
                                    appendix_generated_at=datetime_formatter,
                                    public_key_fingerprint=_fingerprint_formatter, csr_pem=_csr_formatter)
    column_extra_row_actions = [
        TemplateLinkRowAction("contract_actions.activate", "Активировать договор"),
        TemplateLinkRowAction("contract_actions.appendix", "Приложение к договору"),
    ]

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
        return self._save(form, lambda: contracts.update_contract(model, self._input(form), actor()))

    def delete_model(self, model):
        return delete_or_show(lambda: contracts.delete_contract(model, actor()))

    @expose("/activate/", methods=("POST",))
    def activate_view(self):
        """"Активировать договор": the step that fits the status (prepare in "Создан", activate after)."""
        require_can_act()
        return_url = request.form.get("url") or self.get_url(".index_view")
        if not return_url.startswith("/") or return_url.startswith("//"):
            return_url = self.get_url(".index_view")
        try:
            contract_id = requested_id(request.form, "Договор")
            contract = contracts.get_contract(contract_id)
            if contract.status == ContractStatus.AWAITING_ACTIVATION.value:
                contract = activation.activate(contract_id, actor())
                flash(f"Договор № {contract.number} активирован в Столото и переведён в статус "
                      f"«{status_label(contract.status)}». Номера терминалов будут получены автоматически.",
                      "success")
                return redirect(return_url)
            contract = contracts.prepare_activation(contract_id, actor())
        except SisError as error:
            show_error(error)
            return redirect(return_url)
        link = url_for(".appendix_view", id=contract.id)
        flash(Markup(
            "Договор № {number} переведён в статус «{status}». Сформированы ключ СИ и запрос на "
            "сертификат. <a href=\"{link}\" class=\"alert-link\">Скачать «Приложение №5»</a> — "
            "его нужно подписать и передать представителю Столото."
        ).format(number=contract.number, status=status_label(contract.status), link=link), "success")
        return redirect(return_url)

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
        if template == self.details_template and "model" in kwargs:
            model = kwargs["model"]
            kwargs["certificate"] = certificate_summary(model.certificate_pem)
            kwargs["pool"] = terminals.pool_counts(model.id)
            kwargs["batches"] = db.session.scalars(
                select(TerminalBatch).where(TerminalBatch.contract_id == model.id)
                .order_by(TerminalBatch.id.desc()).limit(50)).all()
            kwargs["history"] = db.session.scalars(
                select(AuditEvent).where(AuditEvent.object_type == "contract",
                                         AuditEvent.object_id == kwargs["model"].id)
                .order_by(AuditEvent.id.desc()).limit(100)).all()
        return super().render(template, **kwargs)
