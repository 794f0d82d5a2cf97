"""Job: finish cash-register registrations that had to wait (contract activated, batch arrived, Stoloto back)."""
import logging

from stoloto.metrics import job_run
from stoloto.services import registers

log = logging.getLogger(__name__)


@job_run("pending_registrations")
def finish_pending_registrations() -> None:
    finished = registers.finish_pending()
    if finished:
        log.info("cash registers registered by the job: %s", finished)
