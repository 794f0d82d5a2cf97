"""Job: fetch terminal batches for every contract that needs them."""
import logging

from stoloto import logs
from stoloto.metrics import job_run
from stoloto.services import terminals

log = logging.getLogger(__name__)


@job_run("terminal_batches")
def fetch_terminal_batches() -> None:
    with logs.request_id(logs.job_run_id("terminals")):
        report = terminals.fetch_due_batches()
        # Every run, even an idle one: its absence from the log is how a stopped job shows.
        log.log(logging.WARNING if report.errors else logging.INFO,
                "terminal batches job: %d numbers received for %d contracts, %d contracts failed%s",
                sum(report.received.values()), len(report.received), len(report.errors),
                f" ({report})" if report.errors else "",
                extra={"numbers_received": sum(report.received.values()), "contracts_received": len(report.received),
                       "contracts_failed": len(report.errors)})
