"""WSGI entry point (WSGI_APP=user_service.wsgi:application): Django behind shared_core's header guard."""

from shared_core.wsgi import get_wsgi_application

application = get_wsgi_application()
