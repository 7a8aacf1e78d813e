from django.urls import path

from communication_service import views
from shared_core.api import healthz, readyz

handler400 = "shared_core.api.handler400"
handler403 = "shared_core.api.handler403"
handler404 = "shared_core.api.handler404"
handler500 = "shared_core.api.handler500"

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/notifications/", views.notifications),
    path("api/notifications/<str:notification_id>/", views.notification_detail),
]
