from django.urls import path

from shared_core.api import handler400, handler403, handler404, handler500, health_urls
from ticket_service import views

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *health_urls,
    path("api/tickets/", views.tickets),
    path("api/tickets/<str:ticket_id>/", views.ticket_detail),
    path("api/tickets/<str:ticket_id>/restore/", views.ticket_restore),
]
