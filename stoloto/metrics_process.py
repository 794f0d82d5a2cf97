"""gunicorn's side of the metrics: the workers' shared Prometheus folder and the hook that forgets a dead worker.

Kept apart from stoloto/metrics.py on purpose: prometheus_client chooses its storage when first imported, so
gunicorn.conf.py must set PROMETHEUS_MULTIPROC_DIR before anything imports it, and this module imports nothing
of it at module level.
"""
import os
from pathlib import Path

from .config import instance_path

FOLDER_NAME = "prometheus"


def prepare_folder() -> str:
    """Points PROMETHEUS_MULTIPROC_DIR at an empty folder and returns it; call it in the gunicorn master.

    The folder is the variable's value when set, else instance/prometheus. Files a previous server left there
    are removed: their counters belong to processes that are gone, and Prometheus handles the counters' reset.
    """
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or instance_path() / FOLDER_NAME)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return str(folder)


def child_exit(server, worker) -> None:
    """gunicorn's child_exit hook: the dead worker's live gauges leave the sums; its counters stay in them."""
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)
