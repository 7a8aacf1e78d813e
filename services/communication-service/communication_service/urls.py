from django.urls import path

from communication_service import views
from shared_core.api import handler400, handler403, handler404, handler500, health_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *health_urls,
    path("api/notifications/", views.notifications),
    path("api/notifications/<str:notification_id>/", views.notification_detail),
]
