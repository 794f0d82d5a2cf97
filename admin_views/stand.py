""""Тестовый стенд": shown only when SIS talks to its built-in Stoloto stand."""
from flask import flash, redirect, request
from flask_admin import BaseView, expose
from sqlalchemy import select

from stoloto.errors import SisError
from stoloto.extensions import db
from stoloto.lifecycle import ContractStatus, status_label
from stoloto.models import Contract
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
        # A draft lacks the date or the INN the stand registers a contract by.
        rows = db.session.scalars(select(Contract).where(Contract.status != ContractStatus.DRAFT.value)
                                  .order_by(Contract.id)).all()
        return self.render("stand.html", contracts=rows, status_label=status_label)

    @expose("/act/", methods=("POST",))
    def act(self):
        require_can_act()
        try:
            contract = contracts.get_contract(requested_id(request.form, "Договор"))
            if request.form.get("what") == "register":
                demo_stand.register_contract(contract, actor())
                flash(f"Договор № {contract.number} зарегистрирован на тестовом стенде.", "success")
            else:
                demo_stand.confirm_key(contract, actor())
                flash(f"Ключ договора № {contract.number} подтверждён на тестовом стенде. "
                      "Теперь нажмите «Активировать договор».", "success")
        except SisError as error:
            show_error(error)
        return redirect(self.get_url(".index"))
