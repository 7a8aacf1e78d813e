"""The JSON API of user-service."""

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from shared_core.api import (
    APIError,
    api_view,
    get_or_404,
    json_body,
    list_limit,
    newest,
    parse_uuid,
    required_str,
    rows,
    visible,
)
from user_service.models import Department, User


def render_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "department_id": user.department_id,
        "is_deleted": user.is_deleted,
        "deleted_at": user.deleted_at,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def render_department(department: Department) -> dict[str, Any]:
    return {"id": department.id, "name": department.name, "is_deleted": department.is_deleted}


def save_checked(obj: User | Department) -> None:
    """full_clean then save; a clash with a live row is 409, any other invalid field 400 naming it."""
    try:
        obj.full_clean()
        with transaction.atomic():
            obj.save()
    except ValidationError as exc:
        fields = exc.message_dict
        clash = any(e.code == "unique" for errors in exc.error_dict.values() for e in errors)
        status, error = (409, "conflict") if clash else (400, "invalid_field")
        raise APIError(
            status, error, "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()), fields=fields
        ) from None
    except IntegrityError:
        raise APIError(409, "conflict", "a live row with these values already exists") from None


def apply_user_fields(user: User, data: dict[str, Any], *, partial: bool) -> None:
    if not partial or "email" in data:
        email = required_str(data, "email", 254).lower()
        try:
            validate_email(email)
        except ValidationError:
            raise APIError(400, "invalid_field", "email is not a valid address", field="email") from None
        user.email = email
    if not partial or "name" in data:
        user.name = required_str(data, "name", 200)
    if "department_id" in data:
        if data["department_id"] is None:
            user.department = None
        else:
            key = parse_uuid(data["department_id"], "department_id")
            department = Department.objects.filter(pk=key).first()
            if department is None:
                raise APIError(400, "invalid_field", "department_id names no live department", field="department_id")
            user.department = department


@api_view("GET", "POST")
def departments(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        department = Department(name=required_str(json_body(request), "name", 100))
        save_checked(department)
        return JsonResponse(render_department(department), status=201)
    queryset = visible(Department, request)
    return rows(queryset.order_by("name")[: list_limit(request)], render_department)


@api_view("GET", "POST")
def users(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = User()
        apply_user_fields(user, json_body(request), partial=False)
        save_checked(user)
        return JsonResponse(render_user(user), status=201)
    queryset = visible(User, request)
    if "email" in request.GET:
        queryset = queryset.filter(email=request.GET["email"].lower())
    return newest(request, queryset, render_user)


@api_view("GET", "PATCH", "DELETE")
def user_detail(request: HttpRequest, user_id: str) -> HttpResponse:
    queryset = visible(User, request) if request.method == "GET" else User.objects.all()
    user = get_or_404(queryset.all(), user_id, "user")
    if request.method == "DELETE":
        user.soft_delete()
        return HttpResponse(status=204)
    if request.method == "PATCH":
        apply_user_fields(user, json_body(request), partial=True)
        save_checked(user)
    return JsonResponse(render_user(user))


@api_view("POST")
def user_restore(request: HttpRequest, user_id: str) -> HttpResponse:
    user = get_or_404(User.all_objects.all(), user_id, "user")
    if User.objects.filter(email=user.email).exclude(pk=user.pk).exists():
        raise APIError(409, "conflict", "a live user already has this email", field="email")
    user.restore()
    return JsonResponse(render_user(user))
