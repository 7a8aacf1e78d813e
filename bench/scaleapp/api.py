"""The live table behind the API's own list machinery (KeysetPagination), for the deep-page benchmark."""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.urls import path
from ninja import Query, Router, Schema
from ninja.pagination import paginate

from bench.scaleapp.models import LiveRow
from shared_core.api import KeysetPagination, ListFilters, service_api, visible

router = Router()


class RowOut(Schema):
    id: UUID
    code: str
    created_at: datetime


@router.get("/rows/", response=list[RowOut], auth=None)
@paginate(KeysetPagination)
def rows(request: HttpRequest, filters: Query[ListFilters]) -> Any:
    return visible(LiveRow, filters)


urlpatterns = [path("", service_api("bench", ("/api", router)).urls)]
