"""Job: fetch terminal batches for every contract that needs them."""
import logging

from stoloto.metrics import job_run
from stoloto.services import terminals

log = logging.getLogger(__name__)


@job_run("terminal_batches")
def fetch_terminal_batches() -> None:
    report = terminals.fetch_due_batches()
    if report.received or report.errors:
        log.info("terminal batches: %s", report)
