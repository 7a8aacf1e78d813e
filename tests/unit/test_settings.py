"""shared_core.settings.service_settings: production by default, required secrets, database from the URL."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from shared_core.clients import Resilience
from shared_core.settings import service_settings

SECRETS = {"DJANGO_SECRET_KEY": "k" * 50, "SERVICE_AUTH_TOKEN": "t"}


def make(**env):
    return service_settings("svc", apps=["svc_app"], urlconf="svc_app.urls", env=env)


def test_production_by_default_and_secrets_required():
    """Without DJANGO_DEBUG=1 the secret key and token must be set, and DEBUG is off."""
    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY"):
        make()
    with pytest.raises(ImproperlyConfigured, match="SERVICE_AUTH_TOKEN"):
        make(DJANGO_SECRET_KEY="k" * 50)
    settings = make(**SECRETS)
    assert settings["DEBUG"] is False and settings["INSTALLED_APPS"] == ["shared_core", "svc_app"]
    assert make(DJANGO_DEBUG="1")["DEBUG"] is True


def test_sqlite_default_uses_wal_and_postgres_from_url():
    """The default database is SQLite in /data with WAL; DATABASE_URL can name PostgreSQL."""
    sqlite = make(**SECRETS)["DATABASES"]["default"]
    assert sqlite["NAME"] == "/data/db.sqlite3" and "journal_mode=WAL" in sqlite["OPTIONS"]["init_command"]
    pg = make(**SECRETS, DATABASE_URL="postgres://u:p@db:5432/svc")["DATABASES"]["default"]
    assert pg["ENGINE"] == "django.db.backends.postgresql" and pg["NAME"] == "svc" and pg["HOST"] == "db"


def test_middleware_order_and_logging():
    """Metrics come first, then request context, and the token check last; logging is configured for the service."""
    settings = make(**SECRETS)
    assert settings["MIDDLEWARE"][:2] == [
        "shared_core._ops.metrics.MetricsMiddleware",
        "shared_core._web.middleware.RequestContextMiddleware",
    ]
    assert settings["MIDDLEWARE"][-1] == "shared_core._web.middleware.ServiceTokenMiddleware"
    assert settings["LOGGING"]["filters"]["context"]["service"] == "svc"
    assert settings["METRICS_ENABLED"] and settings["TRACING_ENABLED"] and settings["METRICS_MULTIPROC_DIR"] is None


def test_metrics_and_tracing_can_be_turned_off():
    """METRICS_ENABLED=0 drops the metrics middleware; TRACING_ENABLED=0 is passed on; the multiprocess dir is read."""
    settings = make(**SECRETS, METRICS_ENABLED="0", TRACING_ENABLED="false", PROMETHEUS_MULTIPROC_DIR="/tmp/p")
    assert settings["MIDDLEWARE"][0] == "shared_core._web.middleware.RequestContextMiddleware"
    assert not settings["METRICS_ENABLED"] and not settings["TRACING_ENABLED"]
    assert settings["METRICS_MULTIPROC_DIR"] == "/tmp/p"


def test_numbers_are_checked():
    """A non-numeric HTTP_CLIENT_DEADLINE is an ImproperlyConfigured naming it."""
    with pytest.raises(ImproperlyConfigured, match="HTTP_CLIENT_DEADLINE"):
        make(**SECRETS, HTTP_CLIENT_DEADLINE="soon")
    assert make(**SECRETS, HTTP_CLIENT_DEADLINE="2.5")["HTTP_CLIENT_DEADLINE"] == 2.5


def test_accepted_tokens_are_parsed_per_caller_and_blank_slots_skipped():
    """SERVICE_ACCEPTED_TOKENS gives {caller: [tokens]}; a caller= slot is skipped; no send token is then needed."""
    raw = "ticket-service=old-tok, ticket-service=new-tok,operator=op-tok,communication-service=,"
    settings = make(DJANGO_SECRET_KEY="k" * 50, SERVICE_ACCEPTED_TOKENS=raw)
    assert settings["SERVICE_ACCEPTED_TOKENS"] == {"ticket-service": ["old-tok", "new-tok"], "operator": ["op-tok"]}
    assert settings["SERVICE_AUTH_TOKEN"] is None
    assert make(**SECRETS)["SERVICE_ACCEPTED_TOKENS"] is None


@pytest.mark.parametrize("raw", ["s3cr3t-without-a-caller", "Ticket Service=s3cr3t", "=s3cr3t"])
def test_malformed_accepted_tokens_name_the_entry_never_the_token(raw):
    """A malformed entry is ImproperlyConfigured naming its position, and the message never holds the token."""
    with pytest.raises(ImproperlyConfigured, match="entry 1") as info:
        make(**SECRETS, SERVICE_ACCEPTED_TOKENS=raw)
    assert "s3cr3t" not in str(info.value)


def test_database_connections_are_kept_and_health_checked():
    """PostgreSQL connections are reused for DEFAULT_CONN_MAX_AGE and checked before reuse, so a restart costs none."""
    pg = make(**SECRETS, DATABASE_URL="postgres://u:p@db:5432/svc")["DATABASES"]["default"]
    assert pg["CONN_MAX_AGE"] == 60 and pg["CONN_HEALTH_CHECKS"] is True


def test_a_database_that_stops_answering_is_given_up_within_the_connect_timeout():
    """PostgreSQL gets libpq's connect_timeout and tcp_user_timeout (DATABASE_CONNECT_TIMEOUT, 5 s); 0 is refused."""
    pg = make(**SECRETS, DATABASE_URL="postgres://u:p@db:5432/svc")["DATABASES"]["default"]
    assert (pg["OPTIONS"]["connect_timeout"], pg["OPTIONS"]["tcp_user_timeout"]) == (5, 5000)
    pg = make(**SECRETS, DATABASE_URL="postgres://u:p@db/svc", DATABASE_CONNECT_TIMEOUT="2")["DATABASES"]["default"]
    assert (pg["OPTIONS"]["connect_timeout"], pg["OPTIONS"]["tcp_user_timeout"]) == (2, 2000)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_CONNECT_TIMEOUT must be 1 or more"):
        make(**SECRETS, DATABASE_URL="postgres://u:p@db/svc", DATABASE_CONNECT_TIMEOUT="0")


def test_database_password_beside_the_url_takes_any_character(tmp_path):
    """DATABASE_PASSWORD (or its _FILE) is the password as it is, `@ / : %` included, beside a URL without one."""
    password = "p@ss/w:rd%41?#"
    pg = make(**SECRETS, DATABASE_URL="postgres://u@db:5432/svc", DATABASE_PASSWORD=password)["DATABASES"]["default"]
    assert (pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"], pg["NAME"]) == ("u", password, "db", 5432, "svc")
    (tmp_path / "pw").write_text(password + "\n")
    from_file = make(**SECRETS, DATABASE_URL="postgres://u@db/svc", DATABASE_PASSWORD_FILE=str(tmp_path / "pw"))
    assert from_file["DATABASES"]["default"]["PASSWORD"] == password


def test_task_queues_turn_the_outbox_on_with_checked_timings():
    """Queues add the task apps and backend; a recovery bound not above the task timeout is refused."""
    settings = service_settings("svc", apps=["svc_app"], urlconf="svc_app.urls", task_queues=["q"], env=SECRETS)
    assert settings["INSTALLED_APPS"] == [
        "shared_core",
        "django_tasks",
        "django_tasks_db",
        "shared_core.outbox",
        "svc_app",
    ]
    assert settings["TASKS"]["default"] == {"BACKEND": "shared_core.outbox.OutboxBackend", "QUEUES": ["q"]}
    assert (settings["OUTBOX_TASK_TIMEOUT"], settings["OUTBOX_RECOVER_AFTER"]) == (30.0, 90.0)
    for env in ({"OUTBOX_RECOVER_AFTER": "30"}, {"OUTBOX_TASK_TIMEOUT": "0"}, {"OUTBOX_MAX_ATTEMPTS": "0"}):
        with pytest.raises(ImproperlyConfigured, match="OUTBOX_"):
            service_settings("svc", apps=[], urlconf="u", task_queues=["q"], env={**SECRETS, **env})
    assert "TASKS" not in make(**SECRETS)


def test_secrets_can_come_from_files_as_swarm_and_kubernetes_mount_them(tmp_path):
    """NAME_FILE supplies NAME from a file (its trailing newline dropped), for every secret variable."""
    (tmp_path / "key").write_text("k" * 50 + "\n")
    (tmp_path / "accepted").write_text("operator=op-token,ticket-service=ticket-token\n")
    (tmp_path / "db").write_text("postgres://u:secret@db:5432/svc")
    settings = make(
        DJANGO_SECRET_KEY_FILE=str(tmp_path / "key"),
        SERVICE_ACCEPTED_TOKENS_FILE=str(tmp_path / "accepted"),
        DATABASE_URL_FILE=str(tmp_path / "db"),
    )
    assert settings["SECRET_KEY"] == "k" * 50
    assert settings["SERVICE_ACCEPTED_TOKENS"] == {"operator": ["op-token"], "ticket-service": ["ticket-token"]}
    assert settings["DATABASES"]["default"]["PASSWORD"] == "secret"


def test_a_secret_file_that_is_missing_or_doubled_is_named_without_its_value(tmp_path):
    """An unreadable NAME_FILE, or NAME and NAME_FILE both set, is ImproperlyConfigured naming the variable only."""
    with pytest.raises(ImproperlyConfigured, match=r"DJANGO_SECRET_KEY_FILE: cannot read .*nowhere") as missing:
        make(DJANGO_SECRET_KEY_FILE=str(tmp_path / "nowhere"), SERVICE_AUTH_TOKEN="t")
    (tmp_path / "token").write_text("file-token-value")
    with pytest.raises(ImproperlyConfigured, match="SERVICE_AUTH_TOKEN or SERVICE_AUTH_TOKEN_FILE") as doubled:
        make(**SECRETS, SERVICE_AUTH_TOKEN_FILE=str(tmp_path / "token"))
    assert "file-token-value" not in str(doubled.value) and "k" * 50 not in str(missing.value)


def resilience_settings(resilience=None, **env):
    upstreams = {"user-service": "http://user-service:8000", "file-service": "http://file-service:8000"}
    return service_settings(
        "svc", apps=[], urlconf="u", upstreams=upstreams, resilience=resilience, env={**SECRETS, **env}
    )


def test_the_bulkhead_defaults_to_half_the_threads_and_every_upstream_gets_the_fleet_policy():
    """With no variable set, each upstream's bulkhead is half of GUNICORN_THREADS (at least 1); the rest is default."""
    settings = resilience_settings()
    assert settings["HTTP_CLIENT_RESILIENCE"] == Resilience(max_concurrent=2)
    assert settings["UPSTREAM_RESILIENCE"] == {
        "user-service": Resilience(max_concurrent=2),
        "file-service": Resilience(max_concurrent=2),
    }
    assert resilience_settings(GUNICORN_THREADS="1")["HTTP_CLIENT_RESILIENCE"].max_concurrent == 1
    assert resilience_settings(GUNICORN_THREADS="16")["HTTP_CLIENT_RESILIENCE"].max_concurrent == 8


def test_fleet_variables_then_code_then_upstream_variables_set_each_policy():
    """HTTP_CLIENT_<FIELD> sets the fleet's; resilience= overrides one upstream; <NAME>_<FIELD> overrides both."""
    settings = resilience_settings(
        {"file-service": {"max_concurrent": 1, "open_seconds": 30.0}},
        HTTP_CLIENT_OPEN_SECONDS="10",
        HTTP_CLIENT_RETRY_BUDGET="0",
        FILE_SERVICE_OPEN_SECONDS="60",
        USER_SERVICE_MAX_CONCURRENT="0",
        USER_SERVICE_MINIMUM_CALLS="20",
    )
    user, files = settings["UPSTREAM_RESILIENCE"]["user-service"], settings["UPSTREAM_RESILIENCE"]["file-service"]
    assert settings["HTTP_CLIENT_RESILIENCE"].open_seconds == 10 and not settings["HTTP_CLIENT_RESILIENCE"].retry_budget
    assert user.max_concurrent is None and user.minimum_calls == 20 and user.open_seconds == 10
    assert files.max_concurrent == 1 and files.open_seconds == 60 and not files.retry_budget


@pytest.mark.parametrize(
    ("env", "resilience", "named"),
    [
        ({"HTTP_CLIENT_FAILURE_RATE": "often"}, None, "HTTP_CLIENT_FAILURE_RATE"),
        ({"USER_SERVICE_FAILURE_RATE": "2"}, None, "failure_rate"),
        ({}, {"billing-service": {"open_seconds": 1}}, "billing-service"),
        ({}, {"user-service": {"open_secs": 1}}, "open_secs"),
    ],
)
def test_a_bad_resilience_setting_is_named(env, resilience, named):
    """A value that is not a number, out of range, for an undeclared upstream or an unknown field is named."""
    with pytest.raises(ImproperlyConfigured, match=named):
        resilience_settings(resilience, **env)
