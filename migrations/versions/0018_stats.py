"""daily_registrations, daily_terminals, hourly_stoloto_calls: the counters «Обзор» charts and the pool forecast read

The registrations and terminal numbers already recorded are counted in, by the day (in SIS_TIMEZONE) the
rows tell: registered_at, a wait's history row, a number's arrival; a number in use counts as used on the
day its register registered (or was recorded), a retired one on the day it arrived. Calls to Stoloto were
never recorded: their chart starts empty. Every key has up to stats.SLOTS rows (`slot`), added up when read,
so that concurrent registrations do not all wait on one row; the counts found here go to slot 0.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 23:00:00

"""
import os
from collections import Counter
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'daily_registrations',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('contract_id', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('slot', sa.SmallInteger(), server_default='0', nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('day', 'contract_id', 'outcome', 'slot'),
    )
    op.create_table(
        'daily_terminals',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('contract_id', sa.Integer(), nullable=False),
        sa.Column('slot', sa.SmallInteger(), server_default='0', nullable=False),
        sa.Column('issued', sa.Integer(), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['contract_id'], ['contracts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('day', 'contract_id', 'slot'),
    )
    op.create_table(
        'hourly_stoloto_calls',
        sa.Column('hour', sa.DateTime(), nullable=False),
        sa.Column('endpoint', sa.String(length=32), nullable=False),
        sa.Column('slot', sa.SmallInteger(), server_default='0', nullable=False),
        sa.Column('calls', sa.Integer(), nullable=False),
        sa.Column('refusals', sa.Integer(), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('hour', 'endpoint', 'slot'),
    )
    _backfill()


def downgrade():
    op.drop_table('hourly_stoloto_calls')
    op.drop_table('daily_terminals')
    op.drop_table('daily_registrations')


def _zone() -> ZoneInfo:
    try:
        return ZoneInfo(os.environ.get("SIS_TIMEZONE") or "Europe/Moscow")
    except (KeyError, ValueError):
        return ZoneInfo("Europe/Moscow")


def _backfill() -> None:
    """Groups by hour in SQL (a few thousand rows however many registers), then by local day here."""
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    zone = _zone()

    def hour(column):
        if postgresql:
            return sa.func.date_trunc(sa.literal_column("'hour'"), column)  # a literal: GROUP BY must match it
        return sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:00:00'"), column)

    def day(value):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC).astimezone(zone).date()

    registers, attempts, terminals = (sa.table(name, *(sa.column(c) for c in columns)) for name, columns in (
        ("cash_registers", ("id", "contract_id", "state", "registered_at", "created_at", "terminal_id")),
        ("registration_attempts", ("cash_register_id", "created_at", "state", "reason")),
        ("terminals", ("id", "contract_id", "status", "created_at"))))

    registrations = Counter()
    registered = sa.select(hour(registers.c.registered_at), registers.c.contract_id, sa.func.count()).where(
        registers.c.registered_at.is_not(None), registers.c.contract_id.is_not(None)).group_by(
        hour(registers.c.registered_at), registers.c.contract_id)
    for moment, contract_id, count in bind.execute(registered):
        registrations[day(moment), contract_id, "registered"] += count
    outcome = sa.case((attempts.c.reason == "STOLOTO_REFUSED", "refused"), else_="waiting")
    waits = (sa.select(hour(attempts.c.created_at), registers.c.contract_id, outcome, sa.func.count())
             .select_from(attempts.join(registers, registers.c.id == attempts.c.cash_register_id))
             .where(attempts.c.state == "pending", attempts.c.reason.is_not(None),
                    registers.c.contract_id.is_not(None))
             .group_by(hour(attempts.c.created_at), registers.c.contract_id, outcome))
    for moment, contract_id, kind, count in bind.execute(waits):
        registrations[day(moment), contract_id, kind] += count

    pool = Counter()
    issued = sa.select(hour(terminals.c.created_at), terminals.c.contract_id, sa.func.count()).group_by(
        hour(terminals.c.created_at), terminals.c.contract_id)
    for moment, contract_id, count in bind.execute(issued):
        pool[day(moment), contract_id, "issued"] += count
    used_on = sa.func.coalesce(registers.c.registered_at, registers.c.created_at, terminals.c.created_at)
    used = (sa.select(hour(used_on), terminals.c.contract_id, sa.func.count())
            .select_from(terminals.outerjoin(registers, registers.c.terminal_id == terminals.c.id))
            .where(terminals.c.status != "free").group_by(hour(used_on), terminals.c.contract_id))
    for moment, contract_id, count in bind.execute(used):
        pool[day(moment), contract_id, "used"] += count

    if registrations:
        op.bulk_insert(sa.table("daily_registrations", sa.column("day"), sa.column("contract_id"),
                                sa.column("outcome"), sa.column("count")),
                       [{"day": d, "contract_id": c, "outcome": o, "count": n}
                        for (d, c, o), n in registrations.items()])
    days = sorted({(d, c) for d, c, _ in pool})
    if days:
        op.bulk_insert(sa.table("daily_terminals", sa.column("day"), sa.column("contract_id"), sa.column("issued"),
                                sa.column("used")),
                       [{"day": d, "contract_id": c, "issued": pool[d, c, "issued"], "used": pool[d, c, "used"]}
                        for d, c in days])
