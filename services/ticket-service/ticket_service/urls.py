from django.urls import path

from shared_core.api import healthz, readyz
from ticket_service import views

handler400 = "shared_core.api.handler400"
handler403 = "shared_core.api.handler403"
handler404 = "shared_core.api.handler404"
handler500 = "shared_core.api.handler500"

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/tickets/", views.tickets),
    path("api/tickets/<str:ticket_id>/", views.ticket_detail),
    path("api/tickets/<str:ticket_id>/restore/", views.ticket_restore),
]
