"""Login and role checks shared by every admin view, and the one helper that shows errors."""
from flask import abort, flash, has_app_context, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext
from flask_admin.contrib.sqla import ModelView
from flask_login import current_user

from stoloto.boundary import INT4_MAX
from stoloto.errors import SisError
from stoloto.services import stores

from .filters import RussianDateFilters
from .guard import record_id
from .pager import JumpPager


def show_error(error: SisError) -> None:
    """Flashes a SisError: its message, then what to do about it."""
    flash(str(error), "danger")


def save_or_show(form, save):
    """Runs a service save; on a SisError puts its messages on the form's fields and returns False."""
    try:
        return save()
    except SisError as error:
        for name, message in error.fields.items():
            if hasattr(form, name):
                getattr(form, name).errors.append(message)
        show_error(error)
        return False


def delete_or_show(delete) -> bool:
    try:
        delete()
    except SisError as error:
        show_error(error)
        return False
    return True


def actor() -> str:
    return current_user.login if current_user.is_authenticated else "аноним"


class LoginRequired:
    """Mixin: a view open to any signed-in user; anonymous users go to the login page."""

    def is_accessible(self) -> bool:
        return current_user.is_authenticated

    def inaccessible_callback(self, name, **kwargs):
        if current_user.is_authenticated:
            abort(403)
        return redirect(url_for("auth.login_view", next=request.full_path))


class AdminOnly(LoginRequired):
    def is_accessible(self) -> bool:
        return current_user.is_authenticated and current_user.is_admin


def require_can_act() -> None:
    if not (current_user.is_authenticated and current_user.can_act):
        abort(403)


def contract_options() -> list[tuple[str, str]]:
    """The contracts in SIS for a list filter, as they are now."""
    if not has_app_context():
        return []  # Flask-Admin builds filters at start-up, before any database; pages ask again
    return [(str(contract_id), label) for contract_id, label in stores.contract_choices()]


class SecureModelView(LoginRequired, JumpPager, ModelView):
    """A model view whose create/edit/delete follow the user's role."""

    page_size = 50
    can_set_page_size = True
    filter_converter = RussianDateFilters()  # ДД.ММ.ГГГГ ЧЧ:ММ in SIS_TIMEZONE, like the times shown

    def get_invalid_value_msg(self, value, filter):
        problem = getattr(filter, "problem", None)  # the date filters say what they expected
        if problem is None:
            return super().get_invalid_value_msg(value, filter)
        return f"Фильтр «{filter.name}» не применён: {problem(value)}"

    @expose("/")
    def index_view(self):
        # Flask-Admin reads filter options once at start-up; contracts added since must show up.
        self._refresh_filters_cache()
        return super().index_view()

    @property
    def can_create(self) -> bool:
        return current_user.is_authenticated and current_user.can_act

    @property
    def can_edit(self) -> bool:
        return current_user.is_authenticated and current_user.can_act

    @property
    def can_delete(self) -> bool:
        return current_user.is_authenticated and current_user.can_act

    @expose("/action/", methods=("POST",))
    def action_view(self):
        require_can_act()  # viewers get 403 here too, not a silent redirect
        return super().action_view()

    def is_action_allowed(self, name: str) -> bool:
        return current_user.is_authenticated and current_user.can_act and super().is_action_allowed(name)

    # --- what comes from the address bar and hidden fields (issue 10 §2) --------------------------

    def get_one(self, id):
        # Details, edit, delete: an id no row can have is a missing row, not a query PostgreSQL refuses.
        number = record_id(id)
        return None if number is None else super().get_one(str(number))

    def _get_list_extra_args(self):
        args = super()._get_list_extra_args()
        if not 0 <= args.page <= INT4_MAX:  # a page typed by hand: show the first one
            args.page = 0
        return args

    @action("delete", lazy_gettext("Delete"), lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids):
        # Flask-Admin hands the ticked ids over as text, which PostgreSQL will not compare with an integer id.
        numbers = [record_id(value) for value in ids]
        if None in numbers:
            show_error(SisError("VALIDATION_ERROR", "Неверный список отмеченных записей.",
                                "Обновите страницу и отметьте записи снова."))
            return None
        return super().action_delete(numbers)
