""""Настройки" (administrators only): every setting with its Russian label and a validated value."""
from flask import flash, redirect, request
from flask_admin import BaseView, expose

from stoloto import settings
from stoloto.errors import SisError

from .security import AdminOnly, actor, show_error


class SettingsView(AdminOnly, BaseView):
    help_anchor = "настройки"  # its section of «Справка» (docs/admin-guide.ru.md)
    @expose("/", methods=("GET", "POST"))
    def index(self):
        problems, typed = {}, {}
        if request.method == "POST":
            typed = {d.key: request.form.get(d.key, "") for d in settings.DEFINITIONS if d.key in request.form}
            try:
                changed = settings.save(typed, actor())
            except SisError as error:
                problems = error.fields
                show_error(error)
            else:
                flash(f"Настройки сохранены: {', '.join(f'«{label}»' for label in changed)}." if changed
                      else "Изменений нет.", "success")
                return redirect(self.get_url(".index"))
        settings.cash_api_token()  # generated on first sight, so the administrator can hand it to the registers
        values = settings.all_values()
        values.update(typed)
        return self.render("settings.html", definitions=settings.DEFINITIONS, values=values, problems=problems,
                           environment=settings.CONFIG_DEFAULTS)
