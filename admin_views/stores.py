"""Menu "Магазины": the list, the form, "Загрузка списка магазинов", "Загрузка из файла" and "Привязать магазины к
договору"."""
from flask import Response, abort, flash, redirect, request, session
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual
from flask_admin.form import BaseForm
from flask_admin.helpers import get_redirect_target
from sqlalchemy import func
from wtforms import SelectField, StringField, TextAreaField

from stoloto import plural, settings, store_file
from stoloto.errors import SisError
from stoloto.models import Store
from stoloto.services import contracts, store_uploads, stores
from stoloto.services.stores import MAX_ID, SOURCE_LABELS, StoreInput

from .export import ExportMixin
from .formatters import datetime_formatter, details_link, in_zone
from .large_lists import LargeListMixin
from .required import mark_required
from .security import (
    SecureModelView,
    actor,
    contract_options,
    delete_or_show,
    require_can_act,
    save_or_show,
    show_error,
)

NO_CONTRACT = "none"
# How many ticked codes the bind form lists before "и ещё N".
SHOWN_CODES = 100
# How many rows of each kind a file's preview lists before "и ещё N" (the counts are always whole).
SHOWN_ROWS = 500
# The session's key for the token of the user's file preview: «Загрузить» must come from the same session.
UPLOAD_SESSION_KEY = "store_upload"
TEMPLATE_TYPES = {"csv": "text/csv; charset=utf-8",
                  "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class StoreForm(BaseForm):
    code = StringField("Код магазина", render_kw={"placeholder": "номер магазина в SET, например 101",
                                                  "inputmode": "numeric"})
    # The service checks the choice and says what is wrong in Russian.
    contract_id = SelectField("Договор", choices=[], validate_choice=False)
    name = StringField("Наименование")
    address = StringField("Адрес")
    comment = TextAreaField("Комментарий")


class ContractFilter(BaseSQLAFilter):
    """"Договор": one of the contracts in SIS, or "без договора"."""

    def __init__(self):
        super().__init__(Store.contract_id, "Договор")

    def get_options(self, view):
        return [(NO_CONTRACT, "без договора")] + contract_options()

    def validate(self, value) -> bool:
        return value == NO_CONTRACT or (value.isascii() and value.isdigit() and int(value) <= MAX_ID)

    def apply(self, query, value, alias=None):
        column = self.get_column(alias)
        return query.filter(column.is_(None) if value == NO_CONTRACT else column == int(value))

    def operation(self):
        return "равно"


def _contract_formatter(view, context, model, name):
    return details_link("contracts", model.contract_id, model.contract)


def _source_formatter(view, context, model, name):
    return SOURCE_LABELS.get(model.source, model.source)


class StoreView(ExportMixin, LargeListMixin, SecureModelView):
    help_anchor = "магазины"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "magaziny"
    column_export_list = ("code", "name", "address", "contract", "source", "comment", "created_at", "updated_at")
    list_template = "admin/stores/list.html"
    can_view_details = True
    form = StoreForm
    column_list = ("code", "name", "address", "contract", "source", "updated_at")
    column_details_list = ("code", "name", "address", "contract", "comment", "source", "created_at", "updated_at")
    column_labels = {
        "code": "Код магазина", "name": "Наименование", "address": "Адрес", "contract": "Договор",
        "comment": "Комментарий", "source": "Источник", "created_at": in_zone("Создан"),
        "updated_at": in_zone("Изменён"),
    }
    column_filters = [ContractFilter(),
                      FilterEqual(Store.source, "Источник", options=list(SOURCE_LABELS.items()))]
    column_searchable_list = ("code", "name", "address")
    # Codes are digits without leading zeros, so (length, text) is numeric order without a cast.
    column_sortable_list = (("code", (func.length(Store.code), Store.code)), "name", "address",
                            ("contract", "contract.number"), "source", "updated_at")
    column_default_sort = [(func.length(Store.code), False), (Store.code, False)]
    column_formatters = {"contract": _contract_formatter, "source": _source_formatter,
                         "updated_at": datetime_formatter}
    column_formatters_detail = dict(column_formatters, created_at=datetime_formatter)

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        query, joins = super()._apply_sorting(query, joins, sort_column, sort_desc)
        # Names, sources and contracts repeat: the id keeps every page's rows in one fixed order.
        return query.order_by(Store.id), joins

    @expose("/")
    def index_view(self):
        # The last SET import's outcome above the list, one query: a failure of the scheduled one must not go unseen.
        self._template_args["set_import"] = stores.last_set_import()
        return super().index_view()

    # --- "Добавить" and editing -----------------------------------------------------------------

    def _with_contracts(self, form, editing=None):
        mark_required(form.code)  # the service refuses a store without one
        form.contract_id.choices = [("", "— выберите договор —")] + [
            (str(i), label) for i, label in stores.contract_choices()]
        if stores.contract_required(editing):
            mark_required(form.contract_id)
            form.contract_id.description = "Обязательное поле: по этому договору кассы магазина работают со Столото."
        else:
            form.contract_id.description = ("Магазин загружен из SET Centrum без договора: его можно сохранить и так, "
                                            "но его кассы не зарегистрируются, пока договор не выбран.")
        return form

    def create_form(self, obj=None):
        return self._with_contracts(super().create_form(obj))

    def edit_form(self, obj=None):
        return self._with_contracts(super().edit_form(obj), obj)

    def _input(self, form) -> StoreInput:
        return StoreInput(code=form.code.data, contract_id=form.contract_id.data, name=form.name.data,
                          address=form.address.data, comment=form.comment.data)

    def _save(self, form, save):
        return save_or_show(form, save)

    def create_model(self, form):
        return self._save(form, lambda: stores.create_store(self._input(form), actor()))

    def update_model(self, form, model):
        return self._save(form, lambda: stores.update_store(model, self._input(form), actor()))

    def delete_model(self, model):
        return delete_or_show(lambda: stores.delete_store(model, actor()))

    # --- "Загрузка списка магазинов" ------------------------------------------------------------

    @expose("/import/", methods=("GET", "POST"))
    def import_view(self):
        """GET asks for confirmation; POST (with CSRF) imports and says how many stores were added."""
        require_can_act()
        if request.method == "GET":
            return self.render("admin/stores/import.html", set_url=settings.get(settings.SET_CENTRUM_URL),
                               return_url=self.get_url(".index_view"))
        try:
            added = stores.import_from_set(actor())
        except SisError as error:
            show_error(error)
        else:
            flash(f"{stores.loaded_message(added)}.", "success")
        return redirect(self.get_url(".index_view"))

    # --- "Привязать магазины к договору" --------------------------------------------------------

    @action("bind", "Привязать магазины к договору")
    def action_bind(self, ids):
        # An action takes no parameters: the contract is chosen on a page of its own.
        return redirect(self.get_url(".bind_view", ids=",".join(ids), url=get_redirect_target()))

    @expose("/bind/", methods=("GET", "POST"))
    def bind_view(self):
        """The contract choice for the ticked stores; "Выполнить" (POST with CSRF) binds them."""
        require_can_act()
        return_url = get_redirect_target() or self.get_url(".index_view")
        try:
            selected = stores.selected_stores(stores.parse_ids([request.values.get("ids", "")]))
            if not selected:
                raise stores.nothing_selected()
        except SisError as error:
            show_error(error)
            return redirect(return_url)
        problem = None
        if request.method == "POST":
            try:
                count = stores.bind_stores([store.id for store in selected], request.form.get("contract_id"), actor())
            except SisError as error:
                show_error(error)
                problem = error.fields.get("contract_id")
            else:
                contract = contracts.get_contract(request.form.get("contract_id", type=int))
                flash(f"{stores.bound_message(count, contract)}.", "success")
                return redirect(return_url)
        return self.render("admin/stores/bind.html", ids=",".join(str(store.id) for store in selected),
                           selected=selected[:SHOWN_CODES], total=len(selected),
                           contracts=stores.contract_choices(), chosen=request.form.get("contract_id", ""),
                           problem=problem, return_url=return_url)

    # --- "Загрузка из файла" --------------------------------------------------------------------

    @expose("/upload/", methods=("GET", "POST"))
    def upload_view(self):
        """GET shows the form; POST (with CSRF) reads the file and shows its preview; nothing is saved yet."""
        require_can_act()
        if request.method == "POST":
            chosen = request.files.get("file")
            if chosen is None or not chosen.filename:
                flash("Выберите файл для загрузки.", "danger")
            else:
                try:
                    preview = store_uploads.preview(chosen.read(store_uploads.UPLOAD_MAX_BYTES + 1),
                                                    chosen.filename, actor())
                except SisError as error:
                    show_error(error)
                else:
                    session[UPLOAD_SESSION_KEY] = preview.token
                    return redirect(self.get_url(".upload_preview_view"))
        return self.render("admin/stores/upload.html", max_megabytes=store_uploads.UPLOAD_MAX_BYTES // 2 ** 20,
                           max_rows=store_uploads.UPLOAD_MAX_ROWS, header=store_file.HEADER,
                           return_url=self.get_url(".index_view"))

    @expose("/upload/preview/")
    def upload_preview_view(self):
        """What «Загрузить» will add and what it skips and why, from the preview kept for this session."""
        require_can_act()
        preview = store_uploads.pending(session.get(UPLOAD_SESSION_KEY), actor())
        if preview is None:
            show_error(store_uploads.stale())
            return redirect(self.get_url(".upload_view"))
        return self.render("admin/stores/upload_preview.html", preview=preview, shown=SHOWN_ROWS,
                           added=plural.stores(len(preview.rows)),
                           skipped=store_file.rows_message(len(preview.skipped)),
                           total=store_file.rows_message(preview.total),
                           return_url=self.get_url(".index_view"))

    @expose("/upload/confirm/", methods=("POST",))
    def upload_confirm_view(self):
        """«Загрузить» (POST with CSRF): adds the previewed rows in one transaction."""
        require_can_act()
        try:
            added, filename = store_uploads.confirm(request.form.get("token"), session.get(UPLOAD_SESSION_KEY),
                                                    actor())
        except SisError as error:
            show_error(error)
            return redirect(self.get_url(".upload_view"))
        session.pop(UPLOAD_SESSION_KEY, None)
        flash(f"{store_uploads.loaded_message(added, filename)}.", "success")
        return redirect(self.get_url(".index_view"))

    @expose("/upload/template.<kind>")
    def upload_template_view(self, kind):
        require_can_act()
        if kind not in TEMPLATE_TYPES:
            abort(404)
        return Response(store_file.template(kind), content_type=TEMPLATE_TYPES[kind],
                        headers={"Content-Disposition": f"attachment; filename=magaziny-shablon.{kind}"})
