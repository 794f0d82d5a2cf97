"""APScheduler wiring: started only when the app serves (never in tests or CLI commands)."""
from flask import Flask


def register_jobs(app: Flask) -> None:
    app.extensions["sis_scheduler"] = None
