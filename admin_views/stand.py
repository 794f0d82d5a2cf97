""""Тестовый стенд": shown only when SIS talks to its built-in Stoloto stand."""
from flask import flash, redirect, request
from flask_admin import BaseView, expose

from stoloto.errors import SisError
from stoloto.lifecycle import status_label
from stoloto.services import contracts, demo_stand

from .guard import requested_id
from .security import LoginRequired, actor, require_can_act, show_error


class StandView(LoginRequired, BaseView):
    help_anchor = "тестовый-стенд"  # its section of «Справка» (docs/admin-guide.ru.md)

    def is_visible(self) -> bool:
        return demo_stand.enabled()

    def is_accessible(self) -> bool:
        return demo_stand.enabled() and super().is_accessible()

    @expose("/")
    def index(self):
        rows, problem = demo_stand.overview()
        if problem:
            show_error(problem)
        return self.render("stand.html", rows=rows, status_label=status_label,
                           registered_label=demo_stand.registered_label)

    @expose("/act/", methods=("POST",))
    def act(self):
        require_can_act()
        try:
            contract = contracts.get_contract(requested_id(request.form, "Договор"))
            flash(demo_stand.perform(contract, request.form.get("what"), actor()), "success")
        except SisError as error:
            show_error(error)
        return redirect(self.get_url(".index"))
