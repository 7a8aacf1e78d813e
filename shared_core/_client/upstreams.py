"""One HTTPClient per neighbouring service, named in the settings, made on first use and shared by all threads."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from shared_core._client.httpclient import HTTPClient, default_resilience
from shared_core._client.resilience import Resilience

__all__ = ["upstream"]


def upstream(name: str) -> HTTPClient:
    """The client of the upstream service ``name``, at the URL ``settings.UPSTREAMS[name]`` gives.

    ``service_settings(upstreams={"user-service": "http://user-service:8000"})`` declares
    it, and ``USER_SERVICE_URL`` overrides the URL. Its bulkhead, breaker and retry budget
    follow ``settings.UPSTREAM_RESILIENCE[name]`` (``service_settings(resilience=...)`` and the
    ``USER_SERVICE_*`` variables), else ``HTTP_CLIENT_RESILIENCE``. One client per URL and
    policy is kept, and changing ``UPSTREAMS``, ``UPSTREAM_RESILIENCE``, an ``HTTP_CLIENT_*``
    setting or the token (as tests do) makes new ones. ``ImproperlyConfigured`` names an
    upstream the settings do not declare.
    """
    urls = getattr(settings, "UPSTREAMS", {})
    if name not in urls:
        declared = ", ".join(sorted(urls)) or "none"
        raise ImproperlyConfigured(f"no upstream {name!r} in settings.UPSTREAMS (declared: {declared})")
    policies = getattr(settings, "UPSTREAM_RESILIENCE", {})
    policy = policies[name] if name in policies else default_resilience()
    return _client(urls[name], policy)


#: The clients made so far, by URL and policy; bounded by the settings, and emptied when they change.
_clients: dict[tuple[str, Resilience | None], HTTPClient] = {}
_clients_lock = threading.Lock()


def _client(url: str, policy: Resilience | None) -> HTTPClient:
    with _clients_lock:
        client = _clients.get((url, policy))
        if client is None:
            client = _clients[url, policy] = HTTPClient(url, resilience=policy)
        return client


@receiver(setting_changed)
def _forget_clients(*, setting: str, **_: object) -> None:
    """Drop the clients the changed setting made stale, closing their pooled connections.

    A call still running on one finishes on its connection, which is closed when it comes back.
    """
    if setting in ("UPSTREAMS", "UPSTREAM_RESILIENCE", "SERVICE_AUTH_TOKEN") or setting.startswith("HTTP_CLIENT_"):
        with _clients_lock:
            stale = list(_clients.values())
            _clients.clear()
        for client in stale:
            client.close()
