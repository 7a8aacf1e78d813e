"""One HTTPClient per neighbouring service, made on first use and shared by all threads."""

from functools import cache

from django.conf import settings

from shared_core.clients import HTTPClient


@cache
def users() -> HTTPClient:
    return HTTPClient(settings.USER_SERVICE_URL)


@cache
def communications() -> HTTPClient:
    return HTTPClient(settings.COMMUNICATION_SERVICE_URL)


@cache
def files() -> HTTPClient:
    return HTTPClient(settings.FILE_SERVICE_URL)
