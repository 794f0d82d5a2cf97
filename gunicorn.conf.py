"""gunicorn's settings for SIS (`python -m stoloto.container` uses them); each one can be set by environment."""
import os

from gunicorn.glogging import Logger

from stoloto.logs import gunicorn_logconfig

# child_exit is gunicorn's hook by its name here; prepare_folder must run before anything imports prometheus_client.
from stoloto.metrics_process import child_exit, prepare_folder  # noqa: F401

prepare_folder()  # Prometheus' multiprocess folder, shared by every worker (stoloto/metrics.py)


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"*** СИ Столото не запущен: {name}={value!r}: нужно целое число.") from None


# A configuration error (bad key, bad setting in the environment) ends the start with the Russian message.
wsgi_app = "app:create_app_or_exit()"
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = _int("SIS_WORKERS", 4)
threads = _int("SIS_THREADS", 4)
# A request may wait for Stoloto up to the read timeout setting (30 s by default): leave it room.
timeout = _int("SIS_TIMEOUT", 60)
# On SIGTERM requests in flight get this long to finish; keep it under the orchestrator's stop timeout.
graceful_timeout = _int("SIS_GRACEFUL_TIMEOUT", 20)
# A worker takes no more connections than it has threads. A kept-alive connection stays with the worker that
# accepted it, and that is whichever was idle when it came: with keep-alive, the 32 connections of a load test
# (or a proxy's) piled onto one or two of the four workers, whose GIL then bound them (bench/drain.py --part=api:
# 65–75 % of what threads and latency allow, 74–82 % with one connection per thread). So no keep-alive by default
# (a request's connection costs a fraction of a millisecond on a LAN); with SIS_KEEPALIVE a worker takes twice its
# threads' connections, the rest being idle ones kept alive.
keepalive = _int("SIS_KEEPALIVE", 0)
worker_connections = _int("SIS_WORKER_CONNECTIONS", threads * 2 if keepalive else threads)
# One format for every line (stoloto/logs.py). The access log is SIS's own line per request, which carries the
# request id: gunicorn's would log each request a second time without it.
logconfig_dict = gunicorn_logconfig()


class SisLogger(Logger):
    """gunicorn's logger without its access line, which it would otherwise still build (every header and
    environ value, for each request: 2 % of a worker's CPU under the API benchmark) to drop unlogged."""

    access_log_enabled = False


logger_class = SisLogger
errorlog = "-"
loglevel = os.environ.get("SIS_LOG_LEVEL", "info")
# Whose X-Forwarded-* headers gunicorn believes; the app itself uses them only with SIS_BEHIND_PROXY=1.
forwarded_allow_ips = os.environ.get("SIS_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# gunicorn's runtime control socket is not used, and the image's working folder is not writable by its user.
control_socket_disable = True
