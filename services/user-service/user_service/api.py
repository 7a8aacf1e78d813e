"""The JSON API of user-service: departments and users."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Router, Schema
from ninja.responses import Status
from pydantic import AfterValidator, WithJsonSchema

from shared_core.api import (
    ERROR_RESPONSES,
    APIError,
    ListFilters,
    get_or_404,
    soft_delete_routes,
    text,
)
from user_service.models import Department, User

router = Router(tags=["users"])

Name = text(200)


#: The longest email stored (the column's length), counted after lower-casing.
MAX_EMAIL_LENGTH = User._meta.get_field("email").max_length or 254


def valid_email(value: str) -> str:
    """The address lower-cased, then checked: lower-casing can lengthen it (``İ`` becomes two characters)."""
    normalised = value.lower()
    if len(normalised) > MAX_EMAIL_LENGTH:
        raise ValueError(f"is longer than {MAX_EMAIL_LENGTH} characters once lower-cased")
    try:
        validate_email(normalised)
    except ValidationError:
        raise ValueError("is not a valid email address") from None
    return normalised


Email = Annotated[
    text(MAX_EMAIL_LENGTH),
    AfterValidator(valid_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]


class DepartmentIn(Schema):
    name: text(100)


class DepartmentOut(Schema):
    id: UUID
    name: str
    is_deleted: bool


class UserIn(Schema):
    email: Email
    name: Name
    department_id: UUID | None = None


class UserPatch(Schema):
    """Only the fields sent change; ``department_id: null`` clears the department; email and name are never null."""

    email: Email = None
    name: Name = None
    department_id: UUID | None = None


class UserOut(Schema):
    id: UUID
    email: str
    name: str
    department_id: UUID | None
    is_deleted: bool
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserFilters(ListFilters):
    email: Email | None = None


def save_checked(obj: User | Department) -> None:
    """Save ``obj``; a clash with a live row is a 409 naming the field."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError:
        field = "email" if isinstance(obj, User) else "name"
        raise APIError(409, "conflict", f"a live row already has this {field}", field=field) from None


def live_department(key: UUID | None) -> Department | None:
    if key is None:
        return None
    department = Department.objects.filter(pk=key).first()
    if department is None:
        raise APIError(404, "not_found", "department_id names no live department", field="department_id")
    return department


@router.post("/departments/", response={201: DepartmentOut, **ERROR_RESPONSES})
def create_department(request: HttpRequest, payload: DepartmentIn) -> Status[Department]:
    department = Department(name=payload.name)
    save_checked(department)
    return Status(201, department)


soft_delete_routes(
    router, Department, DepartmentOut, name="department", path="/departments/", module=__name__, routes=("list",)
)


@router.post("/users/", response={201: UserOut, **ERROR_RESPONSES})
def create_user(request: HttpRequest, payload: UserIn) -> Status[User]:
    user = User(email=payload.email, name=payload.name, department=live_department(payload.department_id))
    save_checked(user)
    return Status(201, user)


soft_delete_routes(
    router,
    User,
    UserOut,
    name="user",
    path="/users/",
    module=__name__,
    filters=UserFilters,
    conflict="user with this email",
)


@router.patch("/users/{user_id}/", response={200: UserOut, **ERROR_RESPONSES})
def update_user(request: HttpRequest, user_id: UUID, payload: UserPatch) -> User:
    user = get_or_404(User.objects.all(), user_id, "user")
    if payload.email is not None:
        user.email = payload.email
    if payload.name is not None:
        user.name = payload.name
    if "department_id" in payload.model_fields_set:
        user.department = live_department(payload.department_id)
    save_checked(user)
    return user
