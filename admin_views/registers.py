"""Tab "Кассы": every cash register, its terminal number and state; the detail page shows its history."""
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import flash, jsonify, redirect, request
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import FilterEqual
from flask_admin.helpers import get_redirect_target
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.models import CashRegister, Contract, RegistrationAttempt, Store, Terminal
from stoloto.register_lifecycle import REASON_LABELS, STATE_LABELS
from stoloto.services import register_search, registers

from .export import ExportMixin
from .formatters import datetime_formatter, details_link, in_zone
from .guard import RecordIdFilter, record_id
from .large_lists import LargeListMixin
from .security import SecureModelView, actor, contract_options, show_error


def _state(view, context, model, name):
    css = "success" if model.state == "registered" else "warning"
    return Markup('<span class="badge badge-{}">{}</span>').format(css, STATE_LABELS.get(model.state, model.state))


class CashRegisterView(ExportMixin, LargeListMixin, SecureModelView):
    help_anchor = "кассы"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "kassy"
    column_export_list = ("store.code", "store.name", "cash_number", "serial_number", "fiscal_number", "cash_type",
                          "terminal.number", "state", "reason", "registered_at", "last_attempt_at", "last_error",
                          "created_at")
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    details_template = "admin/registers/details.html"
    column_list = ("store.code", "contract.number", "cash_number", "serial_number", "terminal.number", "state",
                   "reason", "last_attempt_at", "last_error")
    column_details_list = ("store.code", "store.name", "cash_number", "serial_number", "fiscal_number",
                           "cash_type", "contract.number", "terminal.number", "state", "reason",
                           "registered_at", "last_attempt_at", "last_error", "created_at")
    column_labels = {
        "store.code": "Магазин", "store.name": "Наименование магазина", "cash_number": "Номер кассы",
        "serial_number": "Серийный номер", "fiscal_number": "Фискальный номер", "cash_type": "Тип кассы",
        "contract.number": "Договор", "terminal.number": "Номер терминала", "state": "Состояние",
        "reason": "Причина ожидания", "registered_at": in_zone("Зарегистрирована"),
        "last_attempt_at": in_zone("Последняя попытка"),
        "last_error": "Последняя ошибка", "created_at": in_zone("Впервые обратилась"),
    }
    # Only indexed orders: sorting 200,000 rows by anything else is a full scan per page.
    column_sortable_list = ("state", "last_attempt_at")
    column_default_sort = ("id", True)
    # Exact keys, each found by an index: stoloto/services/register_search.py.
    column_searchable_list = ("terminal.number", "store.code", "cash_number", "serial_number")
    column_filters = [
        FilterEqual(CashRegister.state, "Состояние", options=list(STATE_LABELS.items())),
        FilterEqual(CashRegister.reason, "Причина ожидания", options=list(REASON_LABELS.items())),
        FilterEqual(Store.code, "Код магазина"),
        RecordIdFilter(CashRegister.contract_id, "Договор", options=contract_options),
    ]
    column_formatters = {
        "store.code": lambda v, c, m, n: details_link("stores", m.store_id, m.store.code),
        "contract.number": lambda v, c, m, n: details_link("contracts", m.contract_id, m.contract),
        "state": _state,
        "reason": lambda v, c, m, n: REASON_LABELS.get(m.reason, m.reason or ""),
        "last_attempt_at": datetime_formatter,
        "registered_at": datetime_formatter,
        "created_at": datetime_formatter,
    }
    column_formatters_detail = column_formatters
    # The badge's word without its HTML, made 200,000 times in an export.
    column_formatters_export = dict(column_formatters, state=lambda v, c, m, n: STATE_LABELS.get(m.state, m.state))

    list_template = "admin/registers/list.html"

    @action("finish", "Зарегистрировать сейчас",
            "Зарегистрировать отмеченные кассы в Столото сейчас, не дожидаясь фонового задания?")
    def action_finish(self, ids):
        """Starts the run in the background; the list it returns to shows its progress (progress_view)."""
        try:
            started = registers.finish_now(registers.parse_ids(ids), actor())
        except SisError as error:
            show_error(error)
            return None
        if started.refusal:
            flash(started.refusal, "warning")
        return redirect(_showing_run(get_redirect_target() or self.get_url(".index_view"), started.run_id))

    @expose("/progress/")
    def progress_view(self):
        """A run's notice for static/progress.js, which updates «Кассы» until the run is over."""
        state = registers.run_state(record_id(request.args.get("id")))
        if state is None:
            return jsonify({"error": "Запуск регистрации касс не найден."}), 404
        return jsonify({"waiting": state.running, "notice": state.notice})

    def search_placeholder(self) -> str:
        return "Терминал, магазин, касса или серийный номер"

    def _apply_search(self, query, count_query, joins, count_joins, search):
        if search.strip():
            condition = register_search.matching(search)
            query = query.filter(condition)
            count_query = None if count_query is None else count_query.filter(condition)
        return query, count_query, joins, count_joins

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, query = super().get_list(page, sort_column, sort_desc, search, filters, execute=False,
                                        page_size=page_size)
        # Narrow rows: the list shows only the store's code, the contract's and the terminal's number.
        query = query.options(joinedload(CashRegister.store).load_only(Store.code, Store.name),
                              joinedload(CashRegister.contract).load_only(Contract.number),
                              joinedload(CashRegister.terminal).load_only(Terminal.number))
        return count, query.all() if execute else query

    def render(self, template, **kwargs):
        if template == self.list_template:
            kwargs["register_runs"] = registers.runs_to_show(record_id(request.args.get("run")))
        if template == self.details_template and "model" in kwargs:
            kwargs["history"] = db.session.scalars(
                select(RegistrationAttempt).where(RegistrationAttempt.cash_register_id == kwargs["model"].id)
                .order_by(RegistrationAttempt.id.desc())).all()
            kwargs["reason_labels"], kwargs["state_labels"] = REASON_LABELS, STATE_LABELS
        return super().render(template, **kwargs)


def _showing_run(url: str, run_id: int) -> str:
    """The list's address as the user left it, naming the run whose notice it shows."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "run"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("run", run_id)])))
