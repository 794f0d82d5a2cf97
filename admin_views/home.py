"""The "Обзор" home page: contracts by status, stores without a contract, registers by state, free terminals,
the contracts' certificates and days left, the latest errors with links to what they are about."""
from flask_admin import AdminIndexView, expose
from sqlalchemy import func, select

from stoloto.extensions import db
from stoloto.lifecycle import STATUS_LABELS
from stoloto.models import AuditEvent, CashRegister, Contract, Store, Terminal
from stoloto.register_lifecycle import STATE_LABELS
from stoloto.services import certificates

from .journal_objects import object_links
from .security import LoginRequired


def _count_by(column) -> dict:
    return dict(db.session.execute(select(column, func.count()).group_by(column)).all())


class HomeView(LoginRequired, AdminIndexView):
    help_anchor = "обзор"  # its section of «Справка» (docs/admin-guide.ru.md)
    @expose("/")
    def index(self):
        contracts = _count_by(Contract.status)
        registers = _count_by(CashRegister.state)
        recent_errors = db.session.scalars(select(AuditEvent).where(AuditEvent.result == "error")
                                           .order_by(AuditEvent.id.desc()).limit(10)).all()
        free = db.session.execute(
            select(Contract.number, func.count(Terminal.id)).join(Terminal, Terminal.contract_id == Contract.id)
            .where(Terminal.status == "free").group_by(Contract.number).order_by(Contract.number)).all()
        return self.render(
            "home.html",
            by_status=[(label, contracts.get(status.value, 0)) for status, label in STATUS_LABELS.items()],
            total=sum(contracts.values()),
            registers=[(label, registers.get(state, 0)) for state, label in STATE_LABELS.items()],
            registers_total=sum(registers.values()),
            stores_total=db.session.scalar(select(func.count()).select_from(Store)),
            stores_unbound=db.session.scalar(select(func.count()).select_from(Store).where(Store.contract_id.is_(None))),
            free_terminals=free,
            certificates=certificates.by_end(),
            recent_errors=recent_errors,
            error_objects=object_links(recent_errors))
