"""Users of SIS (administrators only): list, add, change role, deactivate, set a new password."""
from flask_admin.form import BaseForm
from wtforms import BooleanField, PasswordField, SelectField, StringField

from stoloto.models import ROLE_LABELS, ROLE_VIEWER
from stoloto.services import users

from .export import ExportMixin
from .formatters import datetime_formatter, in_zone
from .required import MarkedRequired
from .security import AdminOnly, SecureModelView, actor, save_or_show


class UserForm(BaseForm):
    # Required marks only: the users service checks both and says what is wrong.
    login = StringField("Логин", validators=[MarkedRequired()])
    role = SelectField("Роль", choices=list(ROLE_LABELS.items()), default=ROLE_VIEWER)  # the least, unless chosen
    password = PasswordField("Пароль", validators=[MarkedRequired()],
                             description=f"Не короче {users.MIN_PASSWORD_LENGTH} символов.")


class UserEditForm(BaseForm):
    role = SelectField("Роль", choices=list(ROLE_LABELS.items()))
    active = BooleanField("Активен", description="Отключение завершает все сеансы пользователя.")
    password = PasswordField("Новый пароль", description="Оставьте пустым, чтобы не менять. "
                                                         "Новый пароль завершает все сеансы пользователя.")


class UserView(AdminOnly, ExportMixin, SecureModelView):
    help_anchor = "пользователи"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "polzovateli"  # the list's columns; administrators only, as the list
    can_delete = False
    column_list = ("login", "role", "active", "created_at")
    column_labels = {"login": "Логин", "role": "Роль", "active": "Активен", "created_at": in_zone("Создан")}
    column_formatters = {"role": lambda v, c, m, n: ROLE_LABELS.get(m.role, m.role),
                         "created_at": datetime_formatter}
    form = UserForm

    def get_edit_form(self):
        return UserEditForm  # the login stays as created; the password is new or left as it is

    def create_model(self, form):
        return save_or_show(form, lambda: users.create_user(form.login.data, form.role.data, form.password.data,
                                                             actor()))

    def update_model(self, form, model):
        return save_or_show(form, lambda: users.update_user(model.id, form.role.data, form.active.data,
                                                             form.password.data, actor()))
