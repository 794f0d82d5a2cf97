"""The "Журнал": the audit log, read-only."""
from .export import ExportMixin
from .formatters import datetime_formatter, in_zone
from .security import SecureModelView


class AuditView(ExportMixin, SecureModelView):
    help_anchor = "журнал"  # its section of «Справка» (docs/admin-guide.ru.md)
    export_name = "zhurnal"  # the list's columns
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = True
    column_default_sort = ("id", True)
    column_list = ("created_at", "actor", "object_type", "object_id", "action", "result", "details")
    column_labels = {
        "created_at": in_zone("Время"), "actor": "Кто", "object_type": "Объект", "object_id": "№ объекта",
        "action": "Действие", "result": "Результат", "details": "Подробности",
    }
    column_filters = ("actor", "object_type", "action", "result", "created_at")
    column_searchable_list = ("action", "details", "actor")
    column_formatters = {
        "created_at": datetime_formatter,
        "result": lambda v, c, m, n: "успешно" if m.result == "ok" else "ошибка",
        "object_type": lambda v, c, m, n: {"contract": "договор", "user": "пользователь", "store": "магазин",
                                           "setting": "настройка", "cash_register": "касса",
                                           "key_encryption_key": "ключ шифрования",
                                           "backup": "резервная копия"}.get(
            m.object_type, m.object_type),
    }
    column_formatters_detail = column_formatters
