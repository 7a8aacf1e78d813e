"""WSGI entry point (WSGI_APP=ticket_service.wsgi:application)."""

from django.core.wsgi import get_wsgi_application

application = get_wsgi_application()
