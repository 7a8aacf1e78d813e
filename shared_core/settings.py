"""The settings every service shares, read from the environment in one place.

A service's settings module is then a few lines::

    from shared_core.settings import service_settings

    globals().update(service_settings("user-service", apps=["user_service"], urlconf="user_service.urls"))

Each environment variable and its default is listed in the docs' configuration table.
Production is the default: ``DJANGO_DEBUG=1`` is needed for debug mode, and
without it ``DJANGO_SECRET_KEY`` must be set, and ``SERVICE_AUTH_TOKEN`` too
unless ``SERVICE_ACCEPTED_TOKENS`` names the callers (then
``SERVICE_AUTH_TOKEN`` is only the token this service sends, if it calls anyone).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Final

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from shared_core._base.wire import CALLER_NAME_PATTERN
from shared_core._client.httpclient import DEFAULT_DEADLINE, DEFAULT_RETRIES
from shared_core._client.resilience import DEFAULT_RESILIENCE, Resilience
from shared_core._web.uploads import DEFAULT_SPOOL_BYTES, DEFAULT_SPOOL_RESERVE_BYTES
from shared_core.logging_config import get_logging_config
from shared_core.outbox import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_RECOVER_AFTER,
    DEFAULT_RETENTION,
    DEFAULT_TASK_TIMEOUT,
)

__all__ = ["service_settings"]

#: SQLite in the container's /data volume.
DEFAULT_DATABASE_URL = "sqlite:////data/db.sqlite3"
#: The largest request body a service accepts (FILE_UPLOAD_MAX_BYTES overrides it).
DEFAULT_UPLOAD_MAX_BYTES = 10 * 1024 * 1024
#: Seconds a PostgreSQL connection is kept between requests; each reuse is health-checked first.
DEFAULT_CONN_MAX_AGE = 60
#: Seconds to reach PostgreSQL, and to wait for it to acknowledge what was sent before the connection counts as
#: lost (libpq's connect_timeout and tcp_user_timeout): a database whose host died answers nothing, not even a
#: reset, and without these a request would wait for TCP to give up, minutes later. A slow query is not cut:
#: the server acknowledges it at once. DATABASE_CONNECT_TIMEOUT overrides it.
DEFAULT_DATABASE_CONNECT_TIMEOUT = 5

#: Variables that may name a file holding the value instead (``NAME_FILE``), as Swarm and Kubernetes mount secrets.
SECRET_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "SERVICE_AUTH_TOKEN",
    "SERVICE_ACCEPTED_TOKENS",
    "DATABASE_URL",
    "DATABASE_PASSWORD",
)

#: gunicorn's threads per worker process when ``GUNICORN_THREADS`` is unset (base-image/gunicorn.conf.py).
DEFAULT_GUNICORN_THREADS = 4

_CALLER_NAME = re.compile(CALLER_NAME_PATTERN)

_DEBUG_SECRET_KEY = "debug-only-" + "x" * 50


def _with_secret_files(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with each of ``SECRET_VARIABLES`` read from the file its ``NAME_FILE`` names (trailing newline dropped).

    Setting both ``NAME`` and ``NAME_FILE``, or naming a file that cannot be read, raises
    ``ImproperlyConfigured`` naming the variable and the path, never a value.
    """
    resolved = dict(env)
    for name in SECRET_VARIABLES:
        path = env.get(f"{name}_FILE")
        if not path:
            continue
        if env.get(name):
            raise ImproperlyConfigured(f"set {name} or {name}_FILE, not both")
        try:
            resolved[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ImproperlyConfigured(f"{name}_FILE: cannot read {path} ({type(exc).__name__})") from None
    return resolved


def _flag(env: Mapping[str, str], name: str, *, default: bool = False) -> bool:
    raw = env.get(name, "").lower()
    return raw in ("1", "true", "yes", "on") if raw else default


def _required(env: Mapping[str, str], name: str, debug: bool, debug_default: str) -> str:
    value = env.get(name, "")
    if value:
        return value
    if debug:
        return debug_default
    raise ImproperlyConfigured(f"{name} must be set (or DJANGO_DEBUG=1 for a local debug run)")


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None


def _variable_prefix(upstream: str) -> str:
    """The prefix of an upstream's variables: ``user-service`` → ``USER_SERVICE_`` (``USER_SERVICE_URL``, ...)."""
    return upstream.upper().replace("-", "_").replace(".", "_") + "_"


def _url_variable(upstream: str) -> str:
    """The environment variable that holds an upstream's URL: ``user-service`` → ``USER_SERVICE_URL``."""
    return _variable_prefix(upstream) + "URL"


def _policy_values(env: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The ``Resilience`` fields that ``<prefix><FIELD>`` variables set, parsed by the field's type."""
    values: dict[str, Any] = {}
    for name in (field.name for field in fields(Resilience)):
        variable = prefix + name.upper()
        if not env.get(variable):
            continue
        default = getattr(DEFAULT_RESILIENCE, name)
        if isinstance(default, bool):
            values[name] = _flag(env, variable)
        elif name == "max_concurrent":
            values[name] = int(_number(env, variable, 0)) or None  # 0: no bulkhead
        else:
            values[name] = type(default)(_number(env, variable, default))
    return values


def _resilience(
    env: Mapping[str, str], upstreams: Sequence[str], overrides: Mapping[str, Mapping[str, Any]]
) -> tuple[Resilience, dict[str, Resilience]]:
    """The fleet's default policy (``HTTP_CLIENT_*``) and each upstream's: code's ``overrides``, then ``<NAME>_*``.

    The bulkhead's default is half the process's gunicorn threads, so a hung upstream leaves the rest free.
    """
    threads = int(_number(env, "GUNICORN_THREADS", DEFAULT_GUNICORN_THREADS))
    fleet = {"max_concurrent": max(1, threads // 2), **_policy_values(env, "HTTP_CLIENT_")}
    unknown = sorted(set(overrides) - set(upstreams))
    if unknown:
        raise ImproperlyConfigured(f"resilience names upstreams that upstreams does not: {', '.join(unknown)}")
    try:
        default = Resilience(**fleet)
        each = {
            name: Resilience(**{**fleet, **overrides.get(name, {}), **_policy_values(env, _variable_prefix(name))})
            for name in upstreams
        }
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"HTTP_CLIENT_* or an upstream's resilience settings: {exc}") from None
    return default, each


def parse_accepted_tokens(raw: str) -> dict[str, list[str]]:
    """``SERVICE_ACCEPTED_TOKENS`` as ``{caller: [token, ...]}``.

    The value is comma-separated ``caller=token`` entries; a caller may appear
    several times (old and new token while rotating). Entries with an empty
    token (``caller=``) are skipped, so a template can leave a slot blank.
    An entry that is not ``caller=token``, or a caller name outside
    ``[a-z0-9._-]``, raises ``ImproperlyConfigured`` naming its position,
    never its token.
    """
    accepted: dict[str, list[str]] = {}
    for position, entry in enumerate(raw.split(","), start=1):
        if not entry.strip():
            continue
        caller, sep, token = entry.strip().partition("=")
        if not sep or _CALLER_NAME.fullmatch(caller) is None:
            raise ImproperlyConfigured(
                f"SERVICE_ACCEPTED_TOKENS entry {position} must be caller=token with a caller name of a-z, 0-9, . _ -"
            )
        if token:
            accepted.setdefault(caller, []).append(token)
    return accepted


def service_settings(
    service_name: str,
    *,
    apps: Sequence[str],
    urlconf: str,
    task_queues: Sequence[str] = (),
    upstreams: Mapping[str, str] | None = None,
    resilience: Mapping[str, Mapping[str, Any]] | None = None,
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Django settings for one service: database, security, middleware, logging, token, client defaults.

    ``apps``: the service's own apps, added after ``shared_core``.
    ``task_queues``: the outbox queues of the service's tasks (shared_core.outbox);
    empty means the service enqueues none and gets no task tables.
    ``upstreams``: the services this one calls, name → default base URL; each URL
    is overridden by ``<NAME>_URL`` (``user-service`` → ``USER_SERVICE_URL``) and
    lands in ``UPSTREAMS``, where ``shared_core.clients.upstream(name)`` finds it.
    ``resilience``: per upstream, ``Resilience`` fields that differ from the fleet's
    (``{"file-service": {"max_concurrent": 1}}``); the variables ``HTTP_CLIENT_<FIELD>``
    set the fleet's, and ``<NAME>_<FIELD>`` (``USER_SERVICE_OPEN_SECONDS``) one upstream's,
    over both. They land in ``HTTP_CLIENT_RESILIENCE`` and ``UPSTREAM_RESILIENCE``.
    ``variables``: the service's own settings read from the environment, name →
    default (``{"FILE_STORAGE_DIR": "/data/files"}``), so no service module reads
    ``os.environ``. ``env``:
    the environment to read (``os.environ`` when ``None``); each of
    ``SECRET_VARIABLES`` may come from a file instead (``DJANGO_SECRET_KEY_FILE=/run/secrets/key``).
    """
    env = _with_secret_files(os.environ if env is None else env)
    debug = _flag(env, "DJANGO_DEBUG")
    outbox = _outbox_settings(env, task_queues) if task_queues else {}
    metrics = _flag(env, "METRICS_ENABLED", default=True)
    fleet_policy, upstream_policies = _resilience(env, list(upstreams or {}), resilience or {})
    return {
        **{name: env.get(name, default) for name, default in (variables or {}).items()},
        **outbox,
        **_uploads(env),
        **_security(),
        "UPSTREAMS": {name: env.get(_url_variable(name)) or url for name, url in (upstreams or {}).items()},
        "SERVICE_NAME": service_name,
        "DEBUG": debug,
        "SECRET_KEY": _required(env, "DJANGO_SECRET_KEY", debug, _DEBUG_SECRET_KEY),
        **_tokens(env, debug),
        "ALLOWED_HOSTS": [h.strip() for h in env.get("DJANGO_ALLOWED_HOSTS", "*").split(",") if h.strip()],
        "INSTALLED_APPS": [
            "shared_core",
            *(["django_tasks", "django_tasks_db", "shared_core.outbox"] if outbox else []),
            *apps,
        ],
        "MIDDLEWARE": [*(["shared_core._ops.metrics.MetricsMiddleware"] if metrics else []), *_MIDDLEWARE],
        "METRICS_ENABLED": metrics,
        # prometheus-client reads this variable itself; base-image/bin/start sets it for gunicorn's worker processes.
        "METRICS_MULTIPROC_DIR": env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        "TRACING_ENABLED": _flag(env, "TRACING_ENABLED", default=True),
        "ROOT_URLCONF": urlconf,
        "DATABASES": {"default": _database(env)},
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "APPEND_SLASH": False,
        "LOGGING": get_logging_config(service_name, debug=debug),
        "HTTP_CLIENT_DEADLINE": _number(env, "HTTP_CLIENT_DEADLINE", DEFAULT_DEADLINE),
        "HTTP_CLIENT_RETRIES": int(_number(env, "HTTP_CLIENT_RETRIES", DEFAULT_RETRIES)),
        "HTTP_CLIENT_RESILIENCE": fleet_policy,
        "UPSTREAM_RESILIENCE": upstream_policies,
    }


#: The middleware after the metrics one (when METRICS_ENABLED), in order.
_MIDDLEWARE: Final = (
    "shared_core._web.middleware.RequestContextMiddleware",
    "shared_core._web.middleware.ProtocolMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shared_core._web.middleware.ServiceTokenMiddleware",
)


def _security() -> dict[str, Any]:
    """Services speak plain HTTP on a private network; TLS and HSTS belong to the edge in front."""
    return {
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "X_FRAME_OPTIONS": "DENY",
        "SILENCED_SYSTEM_CHECKS": ["security.W004", "security.W008"],
    }


def _database(env: Mapping[str, str]) -> dict[str, Any]:
    """``DATABASES["default"]`` from ``DATABASE_URL`` (and ``DATABASE_PASSWORD``), tuned for its engine."""
    database = dj_database_url.parse(
        env.get("DATABASE_URL") or DEFAULT_DATABASE_URL, conn_max_age=DEFAULT_CONN_MAX_AGE, conn_health_checks=True
    )
    if env.get("DATABASE_PASSWORD"):  # as it is, any characters: no percent-encoding into the URL to get wrong
        database["PASSWORD"] = env["DATABASE_PASSWORD"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # WAL and IMMEDIATE transactions let gunicorn's threads write without "database is locked".
        database["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        database["CONN_MAX_AGE"] = 0
        return dict(database)
    timeout = int(_number(env, "DATABASE_CONNECT_TIMEOUT", DEFAULT_DATABASE_CONNECT_TIMEOUT))
    if timeout < 1:  # libpq reads 0 as "wait for ever"
        raise ImproperlyConfigured(f"DATABASE_CONNECT_TIMEOUT must be 1 or more seconds, got {timeout}")
    database["OPTIONS"] = {
        **database.get("OPTIONS", {}),
        "connect_timeout": timeout,
        "tcp_user_timeout": timeout * 1000,
    }
    return dict(database)


def _tokens(env: Mapping[str, str], debug: bool) -> dict[str, Any]:
    """The token this service sends, and the callers it accepts with theirs."""
    # With per-caller tokens, SERVICE_AUTH_TOKEN is only what this service sends: one that calls no one needs none.
    accepted = parse_accepted_tokens(env.get("SERVICE_ACCEPTED_TOKENS", "")) or None
    sent = (
        env.get("SERVICE_AUTH_TOKEN") or None
        if accepted
        else _required(env, "SERVICE_AUTH_TOKEN", debug, "debug-token")
    )
    return {"SERVICE_AUTH_TOKEN": sent, "SERVICE_ACCEPTED_TOKENS": accepted}


def _uploads(env: Mapping[str, str]) -> dict[str, Any]:
    """Request and upload bounds, and where uploads spool."""
    return {
        "FILE_UPLOAD_MAX_BYTES": int(_number(env, "FILE_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES)),
        "DATA_UPLOAD_MAX_MEMORY_SIZE": 1024 * 1024,
        "FILE_UPLOAD_MAX_MEMORY_SIZE": 1024 * 1024,
        # Unset: uploads spool to _web.uploads.DEFAULT_SPOOL_DIR, made on first use (Django checks a set one).
        "FILE_UPLOAD_TEMP_DIR": env.get("FILE_UPLOAD_TEMP_DIR") or None,
        "FILE_UPLOAD_SPOOL_BYTES": int(_number(env, "FILE_UPLOAD_SPOOL_BYTES", DEFAULT_SPOOL_BYTES)),
        "FILE_UPLOAD_SPOOL_RESERVE_BYTES": int(
            _number(env, "FILE_UPLOAD_SPOOL_RESERVE_BYTES", DEFAULT_SPOOL_RESERVE_BYTES)
        ),
        "FILE_UPLOAD_HANDLERS": [
            "django.core.files.uploadhandler.MemoryFileUploadHandler",
            "shared_core._web.uploads.SpoolUploadHandler",
        ],
    }


def _outbox_settings(env: Mapping[str, str], queues: Sequence[str]) -> dict[str, Any]:
    """The task backend on the service's database and the outbox worker's timings."""
    timeout = _number(env, "OUTBOX_TASK_TIMEOUT", DEFAULT_TASK_TIMEOUT)
    recover_after = _number(env, "OUTBOX_RECOVER_AFTER", DEFAULT_RECOVER_AFTER)
    if not 0 < timeout < recover_after:
        # Recovering a task its worker may still run would run it twice at once.
        raise ImproperlyConfigured("OUTBOX_RECOVER_AFTER must exceed OUTBOX_TASK_TIMEOUT, and both be positive")
    attempts = int(_number(env, "OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
    if attempts < 1:
        raise ImproperlyConfigured("OUTBOX_MAX_ATTEMPTS must be at least 1")
    return {
        "TASKS": {"default": {"BACKEND": "shared_core.outbox.OutboxBackend", "QUEUES": list(queues)}},
        "OUTBOX_MAX_ATTEMPTS": attempts,
        "OUTBOX_BACKOFF_BASE": _number(env, "OUTBOX_BACKOFF_BASE", DEFAULT_BACKOFF_BASE),
        "OUTBOX_BACKOFF_MAX": _number(env, "OUTBOX_BACKOFF_MAX", DEFAULT_BACKOFF_MAX),
        "OUTBOX_TASK_TIMEOUT": timeout,
        "OUTBOX_RECOVER_AFTER": recover_after,
        "OUTBOX_POLL_INTERVAL": _number(env, "OUTBOX_POLL_INTERVAL", DEFAULT_POLL_INTERVAL),
        "OUTBOX_RETENTION": _number(env, "OUTBOX_RETENTION", DEFAULT_RETENTION),
    }
