"""shared_core.settings.service_settings: production by default, required secrets, database from the URL."""

import pytest
from django.core.exceptions import ImproperlyConfigured

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
    """Request context comes first and the token check last; logging is configured for the service."""
    settings = make(**SECRETS)
    assert settings["MIDDLEWARE"][0] == "shared_core.middleware.RequestContextMiddleware"
    assert settings["MIDDLEWARE"][-1] == "shared_core.middleware.ServiceTokenMiddleware"
    assert settings["LOGGING"]["filters"]["context"]["service"] == "svc"


def test_numbers_are_checked():
    """A non-numeric HTTP_CLIENT_DEADLINE is an ImproperlyConfigured naming it."""
    with pytest.raises(ImproperlyConfigured, match="HTTP_CLIENT_DEADLINE"):
        make(**SECRETS, HTTP_CLIENT_DEADLINE="soon")
    assert make(**SECRETS, HTTP_CLIENT_DEADLINE="2.5")["HTTP_CLIENT_DEADLINE"] == 2.5
