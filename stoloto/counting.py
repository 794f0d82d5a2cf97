"""Row counts of long lists: exact up to a limit, PostgreSQL's planner estimate past it («≈ 1 000 000»)."""
import json

from sqlalchemy import Select, func, literal_column, select
from sqlalchemy.orm import Session

# An exact COUNT(*) of more rows than this reads them all (on PostgreSQL, ~70 ms per million registers).
EXACT_LIMIT = 100_000


class Count(int):
    """A number of rows that knows whether it is an estimate; str() is what the page shows.

    An estimate keeps the planner's own figure as its value (pages are counted from it) and shows it
    rounded to two significant digits: «≈ 1 000 000», not a precision it does not have.
    """

    approximate: bool

    def __new__(cls, value: int, approximate: bool = False) -> "Count":
        count = super().__new__(cls, value)
        count.approximate = approximate
        return count

    def __str__(self) -> str:
        return f"≈ {grouped(rounded(self))}" if self.approximate else str(int(self))


def grouped(number: int) -> str:
    """1000000 → «1 000 000», digits grouped by three with no-break spaces, as Russian text writes them."""
    return f"{number:,}".replace(",", "\u00a0")


def count_rows(session: Session, count_statement: Select, exact_limit: int = EXACT_LIMIT) -> Count:
    """The result of a `SELECT count(*) FROM … WHERE …`, or, on PostgreSQL when there are more than exact_limit
    rows, the planner's estimate (Count.approximate) instead of reading them all.

    On PostgreSQL one query counts at most exact_limit + 1 rows, so a list of usual size costs one statement;
    only past the limit does an EXPLAIN follow. SQLite has no cheap estimate: it always counts (its COUNT(*)
    walks the smallest index, fast enough there).
    """
    if session.get_bind().dialect.name != "postgresql":
        return Count(session.execute(count_statement).scalar_one())
    rows = count_statement.with_only_columns(literal_column("1"))
    counted = session.execute(select(func.count()).select_from(rows.limit(exact_limit + 1).subquery())).scalar_one()
    if counted <= exact_limit:
        return Count(counted)
    return Count(max(planner_rows(session, rows), counted), approximate=True)


def planner_rows(session: Session, statement: Select) -> int:
    """How many rows PostgreSQL's planner expects the statement to return (EXPLAIN: planning only, ~1 ms)."""
    compiled = statement.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    connection = session.connection()
    plan = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}", compiled.params).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def rounded(number: int) -> int:
    """Two significant digits: 1 003 412 → 1 000 000, 98 765 → 99 000."""
    digits = len(str(int(number)))
    return round(int(number), -(digits - 2)) if digits > 2 else int(number)
