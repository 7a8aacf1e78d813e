"""Departments and users."""

from django.db import models

from shared_core.models import BaseModel, live_unique


class Department(BaseModel):
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [live_unique("name")]

    def __str__(self) -> str:
        return self.name


class User(BaseModel):
    email = models.EmailField()
    name = models.CharField(max_length=200)
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="users")

    class Meta:
        constraints = [live_unique("email")]

    def __str__(self) -> str:
        return self.email
