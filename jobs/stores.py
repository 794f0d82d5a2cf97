"""Job: the scheduled SET import («Загружать магазины из SET каждые N часов»); the service decides when it is due."""
import logging

from stoloto import logs
from stoloto.metrics import job_run
from stoloto.services import stores

log = logging.getLogger(__name__)


@job_run("set_import")
def import_stores_from_set() -> None:
    with logs.request_id(logs.job_run_id("stores")):
        outcome = stores.import_when_due()
        if outcome is None:
            return  # off, or not due: most runs, and silent so the log is not one line per job interval
        if outcome.ok:
            log.info("scheduled SET import: %d stores added", outcome.added, extra={"stores_added": outcome.added})
        else:
            log.warning("scheduled SET import failed: %s", outcome.error_message,
                        extra={"error_code": outcome.error_code})
