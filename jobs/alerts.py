"""Job: check the alert conditions and send the notices that are due (stoloto/services/alerts.py)."""
import logging

from stoloto import logs
from stoloto.metrics import job_run
from stoloto.services import alerts

log = logging.getLogger(__name__)


@job_run("alerts")
def check_alerts() -> None:
    with logs.request_id(logs.job_run_id("alerts")):
        report = alerts.run()
        log.log(logging.WARNING if report.failed else logging.INFO,
                "alerts job: %d started, %d cleared, %d notices sent, %d not delivered",
                len(report.opened), len(report.resolved), report.sent, report.failed,
                extra={"alerts_opened": len(report.opened), "alerts_resolved": len(report.resolved),
                       "notices_sent": report.sent, "notices_failed": report.failed})
