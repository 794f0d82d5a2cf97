"""Required fields marked the Flask-Admin way (its asterisk, the browser's check); the services decide."""
from wtforms.validators import InputRequired


class MarkedRequired(InputRequired):
    """Makes Flask-Admin draw its asterisk and the browser ask for a value; checks nothing itself: the
    service refuses an empty value with its own Russian message, and only where its rule says so."""

    def __call__(self, form, field):
        return None


def mark_required(field) -> None:
    field.validators = [*field.validators, MarkedRequired()]
    field.flags.required = True
