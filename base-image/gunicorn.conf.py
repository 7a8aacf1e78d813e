"""gunicorn settings for every service, read from environment variables (docs: Configuration)."""

import os

from gunicorn.glogging import Logger

from shared_core.logging_config import get_logging_config


def _number(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {value!r}") from None


bind = f"0.0.0.0:{_number('PORT', 8000)}"
worker_class = "gthread"  # keeps connections between services alive; the sync worker closes each one
workers = _number("WEB_CONCURRENCY", 2)
threads = _number("GUNICORN_THREADS", 4)
timeout = _number("GUNICORN_TIMEOUT", 30)
graceful_timeout = _number("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _number("GUNICORN_KEEPALIVE", 5)
# The inside of the network gets limits too. They sit above the edge proxy's (6 KiB per header line),
# so a request the edge passed on is never refused here.
limit_request_line = _number("GUNICORN_LIMIT_REQUEST_LINE", 8190)
limit_request_fields = _number("GUNICORN_LIMIT_REQUEST_FIELDS", 100)
limit_request_field_size = _number("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)
max_requests = _number("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _number("GUNICORN_MAX_REQUESTS_JITTER", 100)
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "/tmp/gunicorn.ctl")  # noqa: S108 - /tmp is the tmpfs
worker_tmp_dir = "/dev/shm"  # noqa: S108 - writable even with a read-only root filesystem
_ACCESS_LOG = os.environ.get("GUNICORN_ACCESS_LOG", "1") != "0"
accesslog = "-" if _ACCESS_LOG else None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms request_id=%({x-request-id}o)s caller=%({x-service-caller}o)s'
logconfig_dict = get_logging_config(debug=os.environ.get("DJANGO_DEBUG") == "1")


class SwitchableAccessLog(Logger):
    """gunicorn's logger with an access line GUNICORN_ACCESS_LOG=0 really turns off.

    With ``logconfig_dict`` set, gunicorn writes the access line whatever ``accesslog`` says.
    """

    def access(self, resp: object, req: object, environ: dict[str, object], request_time: object) -> None:
        if _ACCESS_LOG:
            super().access(resp, req, environ, request_time)


logger_class = SwitchableAccessLog


def child_exit(server: object, worker: object) -> None:
    """A worker process ended: its values are folded into the archive files and its own files removed.

    Its counters keep counting in the totals, its live gauges (requests in flight) stop, and the directory
    stays bounded however many workers are replaced (shared_core._base.multiprocess).
    """
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from shared_core._base.multiprocess import compact

        compact(worker.pid, directory)  # type: ignore[attr-defined]
