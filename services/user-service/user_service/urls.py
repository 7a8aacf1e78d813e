from django.urls import path

from shared_core.api import healthz, readyz
from user_service import views

handler400 = "shared_core.api.handler400"
handler403 = "shared_core.api.handler403"
handler404 = "shared_core.api.handler404"
handler500 = "shared_core.api.handler500"

urlpatterns = [
    path("healthz", healthz),
    path("readyz", readyz),
    path("api/departments/", views.departments),
    path("api/users/", views.users),
    path("api/users/<str:user_id>/", views.user_detail),
    path("api/users/<str:user_id>/restore/", views.user_restore),
]
