"""Timing pages in-process (Flask test client): the median of some rounds, and the SQL statements a round runs."""
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import event


@dataclass(frozen=True)
class PageTiming:
    name: str
    median_ms: float
    worst_ms: float
    statements: int  # SQL statements of the last round
    html: str        # the last round's page

    def line(self, target: str) -> str:
        return f"{self.name:26} {self.median_ms:9.1f} {self.worst_ms:7.1f} {self.statements:7d}  {target}"


HEADER = f"{'page':26} {'median ms':>9} {'max ms':>7} {'queries':>7}  target"


def time_pages(client, engine, pages: dict[str, str], rounds: int) -> Iterator[PageTiming]:
    """Each page `rounds` times in a row; every answer must be 200."""
    statements = []

    def count(*args):
        statements.append(1)
    event.listen(engine, "before_cursor_execute", count)
    try:
        for name, url in pages.items():
            timings = []
            for _ in range(rounds):
                statements.clear()
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, response.status_code)
            yield PageTiming(name, statistics.median(timings), max(timings), len(statements),
                             response.get_data(as_text=True))
    finally:
        event.remove(engine, "before_cursor_execute", count)
