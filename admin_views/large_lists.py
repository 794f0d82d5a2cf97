"""Lists of up to millions of rows: counted by estimate past a limit, deep pages without a join per skipped row."""
from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Query

from stoloto import counting


class LargeListMixin:
    """Put it before SecureModelView in a list view's bases.

    - The total (the tab's «Список (N)», the pager) is exact up to the app's SIS_EXACT_COUNT_LIMIT
      (default stoloto.counting.EXACT_LIMIT), past it PostgreSQL's estimate, shown «≈ 1 000 000».
    - Page 10,000 first picks the page's ids from the table alone (an index walk), then reads only those
      rows with their joined columns: OFFSET over the joined query costs a join per skipped row.
    """

    def get_count_query(self):
        return _EstimatedCount(super().get_count_query())

    def _apply_pagination(self, query, page, page_size):
        page_size = self.page_size if page_size is None else page_size
        if not page or not page_size:
            return super()._apply_pagination(query, page, page_size)
        key = getattr(self.model, self._primary_key)
        page_ids = super()._apply_pagination(query.with_entities(key), page, page_size).subquery()
        return query.filter(key.in_(select(page_ids.c[0]))).limit(page_size)


class _EstimatedCount:
    """Flask-Admin's count query, passed through its filters and joins; scalar() counts with stoloto.counting."""

    def __init__(self, query: Query) -> None:
        self._query = query

    def __getattr__(self, name):
        method = getattr(self._query, name)

        def chained(*args, **kwargs):
            result = method(*args, **kwargs)
            return _EstimatedCount(result) if isinstance(result, Query) else result
        return chained

    def scalar(self) -> counting.Count:
        limit = current_app.config.get("SIS_EXACT_COUNT_LIMIT", counting.EXACT_LIMIT)
        return counting.count_rows(self._query.session, self._query.statement, limit)
