"""Users of SIS (administrators only): list and add; passwords are stored as hashes."""
from flask_admin.form import BaseForm
from wtforms import PasswordField, SelectField, StringField

from stoloto.models import ROLE_LABELS
from stoloto.services import users

from .formatters import datetime_formatter, in_zone
from .security import AdminOnly, SecureModelView, actor, save_or_show


class UserForm(BaseForm):
    login = StringField("Логин")
    role = SelectField("Роль", choices=list(ROLE_LABELS.items()))
    password = PasswordField("Пароль")


class UserView(AdminOnly, SecureModelView):
    can_edit = False
    can_delete = False
    column_list = ("login", "role", "active", "created_at")
    column_labels = {"login": "Логин", "role": "Роль", "active": "Активен", "created_at": in_zone("Создан")}
    column_formatters = {"role": lambda v, c, m, n: ROLE_LABELS.get(m.role, m.role),
                         "created_at": datetime_formatter}
    form = UserForm

    def create_model(self, form):
        return save_or_show(form, lambda: users.create_user(form.login.data, form.role.data, form.password.data,
                                                             actor()))
