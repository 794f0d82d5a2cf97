"""The "Журнал": the audit log, read-only."""
from flask import g
from flask_admin.contrib.sqla.filters import FilterEqual
from markupsafe import Markup

from stoloto.audit import RESULT_LABELS, result_label
from stoloto.models import AuditEvent

from .export import ExportMixin
from .formatters import datetime_formatter, in_zone
from .journal_objects import TYPE_NAMES, object_links
from .security import SecureModelView


def _objects_formatter(view, context, model, name):
    links = g.get("journal_objects", {}).get(model.id)
    if links is None:  # a details page, or a row outside the listed page
        links = object_links([model])[model.id]
    return Markup(", ").join(links)


class AuditView(ExportMixin, SecureModelView):
    help_anchor = "журнал"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "zhurnal"  # the list's columns
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_default_sort = ("id", True)
    column_list = ("created_at", "actor", "object", "action", "result", "details")
    column_details_list = column_list
    column_labels = {
        "created_at": in_zone("Время"), "actor": "Кто", "object": "Объект", "object_type": "Вид объекта",
        "action": "Действие", "result": "Результат", "details": "Подробности",
    }
    column_filters = ("actor", FilterEqual(AuditEvent.object_type, "Вид объекта", options=list(TYPE_NAMES.items())),
                      "action", FilterEqual(AuditEvent.result, "Результат", options=list(RESULT_LABELS.items())),
                      "created_at")
    column_searchable_list = ("action", "details", "actor")
    column_formatters = {
        "created_at": datetime_formatter,
        "result": lambda v, c, m, n: result_label(m.result),
        "object": _objects_formatter,
    }
    column_formatters_detail = column_formatters

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        count, events = super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)
        if execute:  # a page of rows, not a query (an export streams its own)
            events = list(events)
            g.journal_objects = object_links(events)  # one query per kind of object for the whole page
        return count, events

    def prepare_export_chunk(self, models: list) -> None:
        g.journal_objects = object_links(models)
