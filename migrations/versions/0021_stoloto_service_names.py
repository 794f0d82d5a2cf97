"""Stoloto's services by one set of names: activation → activate and renewal → renew in stoloto_endpoints and the
stoloto_down alert episodes, renewal → renew in hourly_stoloto_calls (stoloto/stoloto_services.py)

The new names were written nowhere before this revision, but each rename is made safe against a row that has one
already: counters are added to it, an endpoint's newer state is kept, an open episode stays the only open one.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
from sqlalchemy import text

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

# (old, new): the alert state's names, and «Обзор»'s counters' (which called activations `activate` already).
_ALERT_NAMES = (('activation', 'activate'), ('renewal', 'renew'))
_COUNTER_NAMES = (('renewal', 'renew'),)


def _rename_endpoint(old, new):
    connection = op.get_bind()
    # The state stored under the new name was written by a newer SIS, so it is the later one.
    connection.execute(text("DELETE FROM stoloto_endpoints WHERE endpoint = :old AND EXISTS "
                            "(SELECT 1 FROM stoloto_endpoints n WHERE n.endpoint = :new)"), {'old': old, 'new': new})
    connection.execute(text("UPDATE stoloto_endpoints SET endpoint = :new WHERE endpoint = :old"),
                       {'old': old, 'new': new})


def _rename_subject(old, new):
    # An old-named open episode next to an open new-named one keeps its name: the unique index allows one open
    # episode per subject, and the job closes the old one, whose condition no longer exists.
    op.get_bind().execute(text(
        "UPDATE alert_episodes SET subject = :new WHERE kind = 'stoloto_down' AND subject = :old AND NOT "
        "(resolved_at IS NULL AND EXISTS (SELECT 1 FROM alert_episodes e WHERE e.kind = 'stoloto_down' "
        "AND e.subject = :new AND e.resolved_at IS NULL))"), {'old': old, 'new': new})


def _rename_counter(old, new):
    connection = op.get_bind()
    same_key = ("FROM hourly_stoloto_calls o WHERE o.hour = hourly_stoloto_calls.hour "
                "AND o.slot = hourly_stoloto_calls.slot AND o.endpoint = :old")
    added = ", ".join(f"{column} = {column} + (SELECT o.{column} {same_key})"
                      for column in ('calls', 'refusals', 'failures'))
    names = {'old': old, 'new': new}
    connection.execute(text(f"UPDATE hourly_stoloto_calls SET {added} WHERE endpoint = :new "
                            f"AND EXISTS (SELECT 1 {same_key})"), names)
    connection.execute(text("DELETE FROM hourly_stoloto_calls WHERE endpoint = :old AND EXISTS "
                            "(SELECT 1 FROM hourly_stoloto_calls n WHERE n.hour = hourly_stoloto_calls.hour "
                            "AND n.slot = hourly_stoloto_calls.slot AND n.endpoint = :new)"), names)
    connection.execute(text("UPDATE hourly_stoloto_calls SET endpoint = :new WHERE endpoint = :old"), names)


def _rename_all(backwards: bool):
    for old, new in _ALERT_NAMES:
        old, new = (new, old) if backwards else (old, new)
        _rename_endpoint(old, new)
        _rename_subject(old, new)
    for old, new in _COUNTER_NAMES:
        _rename_counter(*((new, old) if backwards else (old, new)))


def upgrade():
    _rename_all(backwards=False)


def downgrade():
    _rename_all(backwards=True)
