"""Job: fetch terminal batches for every contract that needs them."""
import logging

from stoloto.services import terminals

log = logging.getLogger(__name__)


def fetch_terminal_batches() -> None:
    report = terminals.fetch_due_batches()
    if report.received or report.errors:
        log.info("terminal batches: %s", report)
