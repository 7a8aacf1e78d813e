"""A scriptable upstream (WSGI, standard library only) that answers, fails, stalls or proxies on command.

Control endpoints (no auth; it only lives on the test network):
- ``POST /_script`` ``{"path": "/t/api/users/x/", "replies": [{...}, ...]}``: answer ``path`` with the
  replies in order, repeating the last. A reply has ``status``, ``headers``, ``body`` (JSON value),
  ``delay`` (seconds before answering) and ``proxy`` (a base URL: forward the request there, minus the
  first path segment, and answer with its response unless ``status`` is given).
- ``GET /_seen?path=...``: the requests received for ``path``: method, headers, body and time.
- ``POST /_reset``: forget scripts and history.
Unscripted paths answer 200 ``{"ok": true, "email": "chaos@example.com"}``.
"""

import json
import threading
import time
import urllib.error
import urllib.request

_lock = threading.Lock()
_scripts: dict[str, list[dict]] = {}
_seen: dict[str, list[dict]] = {}
_DEFAULT = {"status": 200, "body": {"ok": True, "email": "chaos@example.com"}}
_FORWARDED = ("Content-Type", "Idempotency-Key", "Authorization", "X-Request-Id", "X-Request-Deadline")


def _json(start_response, status, value, headers=()):
    body = json.dumps(value).encode()
    start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
    return [body]


def _forward(base, environ, path, body):
    target = base.rstrip("/") + "/" + path.lstrip("/").split("/", 1)[1]
    headers = {
        h: environ[f"HTTP_{h.upper().replace('-', '_')}"]
        for h in _FORWARDED
        if f"HTTP_{h.upper().replace('-', '_')}" in environ
    }
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    request = urllib.request.Request(target, data=body or None, headers=headers, method=environ["REQUEST_METHOD"])
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def application(environ, start_response):
    path = environ["PATH_INFO"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if path == "/healthz":
        return _json(start_response, 200, {"status": "ok"})
    if path == "/_reset":
        with _lock:
            _scripts.clear()
            _seen.clear()
        return _json(start_response, 200, {"reset": True})
    if path == "/_script":
        spec = json.loads(body)
        with _lock:
            _scripts[spec["path"]] = list(spec["replies"])
        return _json(start_response, 200, {"scripted": spec["path"]})
    if path == "/_seen":
        wanted = environ.get("QUERY_STRING", "").partition("path=")[2]
        with _lock:
            return _json(start_response, 200, _seen.get(urllib.request.unquote(wanted), []))

    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
    with _lock:
        _seen.setdefault(path, []).append(
            {
                "method": environ["REQUEST_METHOD"],
                "headers": headers,
                "body": body.decode(errors="replace"),
                "at": time.time(),
            }
        )
        script = _scripts.get(path)
        reply = (script.pop(0) if len(script) > 1 else script[0]) if script else _DEFAULT
    time.sleep(reply.get("delay", 0))
    if "proxy" in reply:
        status, payload = _forward(reply["proxy"], environ, path, body)
        if "status" not in reply:
            start_response(f"{status} X", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
    return _json(
        start_response, reply.get("status", 200), reply.get("body", {}), list(reply.get("headers", {}).items())
    )
