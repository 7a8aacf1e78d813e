"""A tiny JSON WSGI app for the client benchmark, served by gunicorn (gthread) on 127.0.0.1."""

BODY = b'{"id": "4e5af6ba-73c8-4610-9d3a-2525661fe817", "email": "ada@example.com", "name": "Ada"}'


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(BODY)))])
    return [BODY]
