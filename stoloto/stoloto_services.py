"""Stoloto's four services by one name each: in the metrics, the alerts, «Обзор»'s counters and the database.

The names are the last part of Stoloto's URLs (docs/protocols.md §1.1–1.4), as the test stand names them too.
"""
ACTIVATE = "activate"          # §1.1 /api/v1/contracts/activate
BATCHES = "batches"            # §1.2 /api/v1/terminals/batches
REGISTRATION = "registration"  # §1.3 /api/v1/terminals/{number}/registration
RENEW = "renew"                # §1.4 /api/v1/certificates/renew

LABELS = {ACTIVATE: "активация договоров", BATCHES: "пакеты терминалов", REGISTRATION: "регистрация касс",
          RENEW: "обновление сертификатов"}


def label(service: str) -> str:
    """The service's Russian name; a name no longer known (stored by an older SIS) as it is."""
    return LABELS.get(service, service)
