from django.urls import path

from file_service import views
from shared_core.api import healthz, readyz

handler400 = "shared_core.api.handler400"
handler403 = "shared_core.api.handler403"
handler404 = "shared_core.api.handler404"
handler500 = "shared_core.api.handler500"

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/files/", views.files),
    path("api/files/<str:file_id>/", views.file_detail),
    path("api/files/<str:file_id>/content", views.file_content),
    path("api/files/<str:file_id>/restore/", views.file_restore),
    path("api/tickets/<str:ticket_id>/files/delete/", views.ticket_files_delete),
    path("api/tickets/<str:ticket_id>/files/restore/", views.ticket_files_restore),
]
