"""«Сменить пароль»: any signed-in user replaces their own password; a forced change sends every page here."""
from flask import flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from stoloto.errors import SisError
from stoloto.services import users

from .security import LoginRequired, show_error

# Pages a user who must change their password may still reach: this one, logout and the static files.
OPEN_WHILE_FORCED = ("password.index", "auth.logout_view", "auth.login_view", "static", "favicon")


def send_to_password_change():
    """before_request: a user whose password an administrator set sees only «Сменить пароль» until done."""
    if (not request.path.startswith("/api/")  # first: the API has no session, so no user to load
            and current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in OPEN_WHILE_FORCED
            and not (request.endpoint or "").endswith(".static")):
        return redirect(url_for("password.index"))
    return None


class PasswordView(LoginRequired, BaseView):
    help_anchor = "пользователи"  # its section of «Справка» (docs/admin-guide.ru.md) tells of «Сменить пароль»

    def is_visible(self) -> bool:
        return False  # reached from the user menu, not the top menu

    @expose("/", methods=("GET", "POST"))
    def index(self):
        problems = {}
        if request.method == "POST":
            try:
                users.change_own_password(current_user, request.form.get("current", ""),
                                          request.form.get("new", ""), request.form.get("repeated", ""))
            except SisError as error:
                problems = error.fields
                show_error(error)
            else:
                flash("Пароль изменён. Другие ваши сеансы завершены, этот продолжается.", "success")
                return redirect(url_for("home.index"))
        return self.render("password.html", problems=problems)
