"""Login and logout pages."""
from urllib.parse import urlsplit

from flask import redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from stoloto.errors import SisError
from stoloto.services import users

from .security import actor, show_error


class LoginForm(FlaskForm):
    login = StringField("Логин", validators=[DataRequired("Введите логин.")])
    password = PasswordField("Пароль", validators=[DataRequired("Введите пароль.")])


def _safe_next(target: str | None) -> str:
    # Only local paths: a login page must not become an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("home.index")


class AuthView(BaseView):
    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self):
        return redirect(url_for(".login_view"))

    @expose("/login", methods=("GET", "POST"))
    def login_view(self):
        if current_user.is_authenticated:
            return redirect(_safe_next(request.args.get("next")))
        form = LoginForm()
        if form.validate_on_submit():
            try:
                user = users.authenticate(form.login.data, form.password.data, request.remote_addr)
            except SisError as error:
                show_error(error)
                return self.render("login.html", form=form), 429 if error.code == "LOGIN_THROTTLED" else 200
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        return self.render("login.html", form=form)

    @expose("/logout", methods=("POST",))
    def logout_view(self):
        if current_user.is_authenticated:
            users.end_session(current_user, actor())
        logout_user()
        return redirect(url_for(".login_view"))
