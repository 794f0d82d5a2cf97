"""Login and logout pages."""
from urllib.parse import urlsplit

from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from stoloto import audit
from stoloto.extensions import db
from stoloto.services import users


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
            user = users.authenticate(form.login.data, form.password.data)
            if user is not None:
                login_user(user)
                audit.record(user.login, "user", user.id, "Вход в систему")
                db.session.commit()
                return redirect(_safe_next(request.args.get("next")))
            flash("Неверный логин или пароль.", "danger")
        return self.render("login.html", form=form)

    @expose("/logout", methods=("POST",))
    def logout_view(self):
        logout_user()
        return redirect(url_for(".login_view"))
