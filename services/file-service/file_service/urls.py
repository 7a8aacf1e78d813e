from django.urls import path

from file_service import views
from shared_core.api import handler400, handler403, handler404, handler500, health_urls

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]

urlpatterns = [
    *health_urls,
    path("api/files/", views.files),
    path("api/files/<str:file_id>/", views.file_detail),
    path("api/files/<str:file_id>/content", views.file_content),
    path("api/files/<str:file_id>/restore/", views.file_restore),
    path("api/tickets/<str:ticket_id>/files/delete/", views.ticket_files_delete),
    path("api/tickets/<str:ticket_id>/files/restore/", views.ticket_files_restore),
]
