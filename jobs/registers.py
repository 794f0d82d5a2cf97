"""Job: finish cash-register registrations that had to wait (contract activated, batch arrived, Stoloto back)."""
import logging

from stoloto import logs
from stoloto.metrics import job_run
from stoloto.services import registers

log = logging.getLogger(__name__)


@job_run("pending_registrations")
def finish_pending_registrations() -> None:
    with logs.request_id(logs.job_run_id("registers")):
        report = registers.finish_pending_report()
        # Every run, even an idle one: its absence from the log is how a stopped job shows.
        log.info("cash registers job: %d registered, %d still waiting", report.registered, report.waiting,
                 extra={"registered": report.registered, "waiting": report.waiting})
