"""Dates and times as the panel shows them: Russian formats, times in SIS_TIMEZONE and labelled with it."""
from flask import has_app_context, url_for
from flask_babel import LazyString
from markupsafe import Markup

from stoloto import clock

TIME_FORMAT = "%d.%m.%Y %H:%M:%S"


def local_time(value, fmt: str = TIME_FORMAT) -> str:
    """A stored (UTC) moment in SIS_TIMEZONE; also the templates' `local_time` filter."""
    return clock.local(value).strftime(fmt) if value else ""


def date_formatter(view, context, model, name):
    value = getattr(model, name)
    return f"{value:%d.%m.%Y}" if value else ""


def datetime_formatter(view, context, model, name):
    return local_time(getattr(model, name))


def in_zone(label: str) -> LazyString:
    """A column header with the zone, e.g. «Время (МСК)»; built per page, since the zone is the app's."""
    def text() -> str:
        # Flask-Admin names the filters once as the views are built, before there is an app to ask;
        # every list page names them again (SecureModelView.index_view), with the zone.
        return f"{label} ({clock.label()})" if has_app_context() else label
    return LazyString(text)


def details_link(endpoint: str, record_id: int | None, text) -> Markup | str:
    """A link to a record's details page (a register's store, a store's contract); empty without a record."""
    if record_id is None:
        return ""
    return Markup('<a href="{}">{}</a>').format(url_for(f"{endpoint}.details_view", id=record_id), text)
