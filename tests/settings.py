"""Settings for the host unit tests: SQLite by default, PostgreSQL when TEST_DATABASE_URL says so."""

import os

import dj_database_url

SECRET_KEY = "unit-tests-only-not-a-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "shared_core",
    "django_tasks",
    "django_tasks_db",
    "shared_core.outbox",
    "tests.testapp",
]
TASKS = {"default": {"BACKEND": "shared_core.outbox.OutboxBackend", "QUEUES": ["default", "hooks"]}}
METRICS_ENABLED = True
MIDDLEWARE = [
    "shared_core._ops.metrics.MetricsMiddleware",
    "shared_core._web.middleware.RequestContextMiddleware",
    "shared_core._web.middleware.ProtocolMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "shared_core._web.middleware.ServiceTokenMiddleware",
]
ROOT_URLCONF = "tests.testapp.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": dj_database_url.parse(os.environ.get("TEST_DATABASE_URL", "sqlite:///:memory:"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SERVICE_AUTH_TOKEN = "unit-test-service-token"
SERVICE_TOKEN_EXEMPT_PATHS = ["/healthz"]
