""""Настройки" (administrators only): every setting with its Russian label and a validated value, and
«Отправить тестовое уведомление»."""
from itertools import groupby

from flask import flash, jsonify, redirect, request
from flask_admin import BaseView, expose

from stoloto import settings
from stoloto.errors import SisError
from stoloto.services import alerts

from .security import AdminOnly, actor, show_error


def clear_field(key: str) -> str:
    """The checkbox that empties a write-only setting (its field left empty keeps the stored value)."""
    return f"{key}.clear"


def _typed(form) -> dict:
    typed = {}
    for definition in settings.DEFINITIONS:
        if definition.write_only and form.get(clear_field(definition.key)):
            typed[definition.key] = ""
        elif definition.key in form and not (definition.write_only and not form[definition.key]):
            typed[definition.key] = form[definition.key]
    return typed


class SettingsView(AdminOnly, BaseView):
    help_anchor = "настройки"  # its section of «Справка» (docs/admin-guide.ru.md)
    @expose("/", methods=("GET", "POST"))
    def index(self):
        problems, typed = {}, {}
        if request.method == "POST":
            typed = _typed(request.form)
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
        stored = {d.key for d in settings.DEFINITIONS if d.write_only and values[d.key]}
        values.update(typed)
        for definition in settings.DEFINITIONS:
            if definition.write_only:
                values[definition.key] = ""  # never sent back to the browser
        sections = [(name, list(items)) for name, items in groupby(settings.DEFINITIONS, lambda d: d.section)]
        return self.render("settings.html", sections=sections, values=values, problems=problems,
                           environment=settings.CONFIG_DEFAULTS, stored=stored, clear_field=clear_field,
                           deliveries=alerts.last_deliveries(), channel_labels=alerts.CHANNEL_LABELS,
                           open_alerts=alerts.open_episodes(), last_test=alerts.last_test())

    @expose("/test-alert/", methods=("POST",))
    def test_alert(self):
        """Starts the sending and answers at once; the page follows it (test_alert_progress)."""
        channels = alerts.send_test(actor())
        if channels:
            flash(f"Тестовое уведомление отправляется: {alerts.where_sent(channels)}. Результат появится ниже.",
                  "info")
        else:
            flash("Тестовое уведомление не отправлено: не настроен ни один канал. Укажите почтовый сервер, "
                  "отправителя и получателей писем или адрес webhook и сохраните настройки.", "warning")
        return redirect(self.get_url(".index"))

    @expose("/test-alert/progress/")
    def test_alert_progress(self):
        """The latest test notice for static/progress.js, which updates «Настройки» until its sending is over."""
        last = alerts.last_test()
        if last is None:
            return jsonify({"waiting": False, "notice": "Тестовое уведомление ещё не отправлялось."})
        return jsonify({"waiting": last.waiting, "notice": last.notice})
