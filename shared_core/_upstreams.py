"""One HTTPClient per neighbouring service, named in the settings, made on first use and shared by all threads."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from shared_core.clients import HTTPClient

__all__ = ["upstream"]


def upstream(name: str) -> HTTPClient:
    """The client of the upstream service ``name``, at the URL ``settings.UPSTREAMS[name]`` gives.

    ``service_settings(upstreams={"user-service": "http://user-service:8000"})`` declares
    it, and ``USER_SERVICE_URL`` overrides the URL. One client per URL is kept, and changing
    ``UPSTREAMS``, an ``HTTP_CLIENT_*`` setting or the token (as tests do) makes new ones.
    ``ImproperlyConfigured`` names an upstream the settings do not declare.
    """
    urls = getattr(settings, "UPSTREAMS", {})
    if name not in urls:
        declared = ", ".join(sorted(urls)) or "none"
        raise ImproperlyConfigured(f"no upstream {name!r} in settings.UPSTREAMS (declared: {declared})")
    return _client(urls[name])


@lru_cache(maxsize=64)
def _client(url: str) -> HTTPClient:
    return HTTPClient(url)


@receiver(setting_changed)
def _forget_clients(*, setting: str, **_: object) -> None:
    if setting in ("UPSTREAMS", "SERVICE_AUTH_TOKEN") or setting.startswith("HTTP_CLIENT_"):
        _client.cache_clear()
