from django.urls import path

from shared_core.api import handler400, handler403, handler404, handler500, health_urls
from user_service import views

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *health_urls,
    path("api/departments/", views.departments),
    path("api/users/", views.users),
    path("api/users/<str:user_id>/", views.user_detail),
    path("api/users/<str:user_id>/restore/", views.user_restore),
]
