"""The panel's boundary: text and ids the database cannot hold are refused before a view or a query sees them."""
from flask import render_template, request
from flask_admin.contrib.sqla.filters import IntEqualFilter

from stoloto import errors
from stoloto.boundary import INT4_MAX, is_storable, parse_int

FORBIDDEN_TEXT = "Текст содержит недопустимый символ (нулевой байт). Удалите его и повторите."


def refuse_unstorable_text():
    """before_request: a query string or form with a NUL byte gets a Russian 400 page, whatever the page.

    One check for every search box, filter, form and hidden field of the panel, the login form included;
    the API answers such requests in JSON itself.
    """
    if request.path.startswith("/api/"):
        return None
    values = [*request.args.items(multi=True)]
    if request.method == "POST":
        values += request.form.items(multi=True)
    if not all(is_storable(key) and is_storable(value) for key, value in values):
        return render_template("error.html", code=400, title="Некорректный запрос", text=FORBIDDEN_TEXT), 400
    return None


def record_id(value) -> int | None:
    """An id as typed into a URL or a form: a positive integer the id columns can hold, else None."""
    return parse_int(str(value or "").strip(), 1, INT4_MAX)


def requested_id(values, what: str) -> int:
    """The `id` field of a request; an id no row can have is the same as a missing row."""
    number = record_id(values.get("id"))
    if number is None:
        raise errors.not_found(what)
    return number


class RecordIdFilter(IntEqualFilter):
    """"Равно" on an id column: a number no id can be is dropped, like any value Flask-Admin cannot read."""

    def validate(self, value) -> bool:
        return record_id(value) is not None
