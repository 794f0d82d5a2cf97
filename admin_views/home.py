"""The "Обзор" home page: contracts by status, stores without a contract, registers by state, free terminals,
the contracts' certificates and days left, the latest errors with links to what they are about; charts of
registrations, of each contract's pool with its forecast and of the calls to Stoloto; when the background jobs ran
and run next, and which process runs them."""
from flask_admin import AdminIndexView, expose
from sqlalchemy import func, select

from jobs import scheduler
from stoloto import clock, stats, stoloto_services
from stoloto.extensions import db
from stoloto.lifecycle import STATUS_LABELS
from stoloto.models import AuditEvent, CashRegister, Contract, Store
from stoloto.register_lifecycle import STATE_LABELS
from stoloto.services import certificates, forecast, overview

from . import charts
from .formatters import local_time
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
        return self.render(
            "home.html",
            by_status=[(label, contracts.get(status.value, 0)) for status, label in STATUS_LABELS.items()],
            total=sum(contracts.values()),
            registers=[(label, registers.get(state, 0)) for state, label in STATE_LABELS.items()],
            registers_total=sum(registers.values()),
            stores_total=db.session.scalar(select(func.count()).select_from(Store)),
            stores_unbound=db.session.scalar(select(func.count()).select_from(Store).where(Store.contract_id.is_(None))),
            certificates=certificates.by_end(),
            recent_errors=recent_errors,
            error_objects=object_links(recent_errors),
            registrations_chart=registrations_chart(),
            pools=pool_rows(),
            calls_chart=calls_chart(),
            job=job_lines())


OUTCOME_CSS = {stats.REGISTERED: "sis-ok", stats.REFUSED: "sis-refused", stats.WAITING: "sis-waiting"}


def registrations_chart() -> charts.BarChart:
    days = overview.registrations_by_day(30)
    series = [charts.Series(outcome, stats.OUTCOME_LABELS[outcome], OUTCOME_CSS[outcome],
                            [day.counts[outcome] for day in days]) for outcome in stats.OUTCOMES]
    labels = [f"{day.day:%d.%m}" for day in days]
    # The last day (today) always labelled, then every fifth one back from it.
    return charts.stacked_bars("Регистрации касс по дням за 30 дней", "Кассы", labels, labels, series,
                               label_every=5, label_from_end=True)


def pool_rows() -> list[tuple[forecast.PoolHistory, charts.Sparkline]]:
    rows, labels = [], {}
    for pool in forecast.pool_histories(30):
        if not labels:  # every contract has the same days: each date is formatted once, not once per contract
            labels = {day: f"{day:%d.%m}" for day, _ in pool.free_by_day}
        tooltips = [f"{labels[day]}: свободно {free}" for day, free in pool.free_by_day]
        line = charts.sparkline(f"Свободные номера договора № {pool.forecast.contract_number} за 30 дней",
                                [free for _, free in pool.free_by_day], tooltips)
        rows.append((pool, line))
    return rows


def calls_chart() -> charts.BarChart:
    hours = overview.calls_by_hour(24)
    series = [charts.Series("ok", "Успешно", "sis-ok", [hour.succeeded for hour in hours]),
              charts.Series("refused", "Отказ Столото", "sis-refused", [hour.refusals for hour in hours]),
              charts.Series("failed", "Без ответа", "sis-failed", [hour.failures for hour in hours])]
    starts = [clock.local(hour.hour) for hour in hours]
    labels = [f"{start:%H:%M}" for start in starts]  # a zone may be off UTC by a half hour
    tooltips = [f"{start:%d.%m %H:%M}{_endpoints(hour.by_endpoint)}" for start, hour in zip(starts, hours, strict=True)]
    return charts.stacked_bars(f"Вызовы Столото по часам за сутки ({clock.label()})", "Вызовы", labels, tooltips,
                               series, label_every=3, label_from_end=True)


def _endpoints(by_endpoint: dict[str, int]) -> str:
    if not by_endpoint:
        return ""
    named = ", ".join(f"{stoloto_services.label(name)} {count}" for name, count in sorted(by_endpoint.items()))
    return f" ({named})"


def job_lines() -> dict[str, str]:
    """The background jobs' last run, next run and runner, as sentences."""
    status = scheduler.status()
    zone = clock.label()
    last = (f"{local_time(status.last_run, '%d.%m.%Y %H:%M:%S')} ({zone})." if status.last_run
            else "Ещё не запускалось.")
    if status.next_run is None:
        upcoming = "Не запланирован: фоновое задание сейчас не запущено ни в одном процессе СИ."
        holder = "Ни один процесс СИ."
    else:
        upcoming = f"{local_time(status.next_run, '%d.%m.%Y %H:%M:%S')} ({zone})."
        host, _, rest = (status.holder or "").partition(":")
        pid = rest.partition(":")[0]
        holder = f"Процесс {pid} на сервере {host}." if pid else f"{status.holder}."
    return {"last": last, "next": upcoming, "holder": holder}
