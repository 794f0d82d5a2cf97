"""List-column formatters: Russian date formats."""


def date_formatter(view, context, model, name):
    value = getattr(model, name)
    return f"{value:%d.%m.%Y}" if value else ""


def datetime_formatter(view, context, model, name):
    value = getattr(model, name)
    return f"{value:%d.%m.%Y %H:%M:%S}" if value else ""
