"""Job: renew the contracts' certificates before they end (setting «Обновлять сертификат за N дней»)."""
import logging

from stoloto import logs
from stoloto.metrics import job_run
from stoloto.services import certificates

log = logging.getLogger(__name__)


@job_run("certificate_renewals")
def renew_certificates() -> None:
    with logs.request_id(logs.job_run_id("certificates")):
        report = certificates.renew_due()
        if report.renewed or report.errors:
            log.log(logging.WARNING if report.errors else logging.INFO,
                    "certificates job: %d renewed, %d failed%s", len(report.renewed), len(report.errors),
                    f" ({report.errors})" if report.errors else "",
                    extra={"certificates_renewed": len(report.renewed), "certificates_failed": len(report.errors)})
