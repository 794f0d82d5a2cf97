"""The "Обзор" home page: contracts by status and recent errors."""
from flask_admin import AdminIndexView, expose
from sqlalchemy import func, select

from stoloto.extensions import db
from stoloto.lifecycle import STATUS_LABELS
from stoloto.models import AuditEvent, Contract

from .security import LoginRequired


class HomeView(LoginRequired, AdminIndexView):
    @expose("/")
    def index(self):
        counts = dict(db.session.execute(
            select(Contract.status, func.count()).group_by(Contract.status)).all())
        by_status = [(label, counts.get(status.value, 0)) for status, label in STATUS_LABELS.items()]
        recent_errors = db.session.scalars(
            select(AuditEvent).where(AuditEvent.result == "error")
            .order_by(AuditEvent.id.desc()).limit(10)).all()
        return self.render("home.html", by_status=by_status, recent_errors=recent_errors,
                           total=sum(counts.values()))
