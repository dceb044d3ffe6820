"""A small Django application, as the framework documents it, for the end-to-end tests.

Served by Django's own WSGI handler on Python's wsgiref server. Settings a real deployment
behind a proxy uses: USE_X_FORWARDED_HOST (the host comes from X-Forwarded-Host), and URL
patterns written with re_path and `$` anchors (which Python's `re` also matches before a
final newline) and one case-insensitive pattern (Unicode case rules: `ı` matches `i`).

Usage: django_app.py PORT LOG_FILE. Every request a view serves is appended to LOG_FILE as
a JSON line: the test's x-test-id, the resource (view) that served it, the method, the
host the app saw and the identity headers it received.
"""

import json
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

import django
from django.conf import settings
from django.http import JsonResponse
from django.urls import re_path

LOG = sys.argv[2] if len(sys.argv) > 2 else "/dev/null"

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    USE_X_FORWARDED_HOST=True,
    ROOT_URLCONF=__name__,
    SECRET_KEY="test-only",
    MIDDLEWARE=[],
    APPEND_SLASH=False,
)
django.setup()


def served(resource):
    def view(request, *_, **__):
        record = {
            "test_id": request.headers.get("x-test-id", ""),
            "resource": resource,
            "method": request.method,
            "host": request.get_host(),
            "identity": {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-auth-")},
            "authorization": request.headers.get("authorization"),
        }
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return JsonResponse(record)

    return view


def by_method(**views):
    def view(request, *args, **kwargs):
        chosen = views.get(request.method) or (views.get("GET") if request.method == "HEAD" else None)
        if chosen is None:
            return JsonResponse({"resource": None}, status=405)
        return chosen(request, *args, **kwargs)

    return view


def by_host(admin, other):
    def view(request, *args, **kwargs):
        if request.get_host().split(":")[0] == "admin.example.com":
            return admin(request, *args, **kwargs)
        return other(request, *args, **kwargs)

    return view


def host_or(view):
    return by_host(served("admin-host"), view)


urlpatterns = [
    re_path(r"(?i)^admin(?:/.*)?$", host_or(served("admin"))),
    re_path(r"^public(?:/.*)?$", host_or(served("public"))),
    re_path(r"^api/orders/export$", host_or(by_method(GET=served("orders-export")))),
    re_path(r"^api/orders/(?P<id>[^/]+)/history$", host_or(by_method(GET=served("orders-history")))),
    re_path(r"^api/orders/(?P<id>[^/]+)$", host_or(by_method(GET=served("order"), DELETE=served("order-deleted")))),
    re_path(r"^api/orders$", host_or(by_method(GET=served("orders-list"), POST=served("order-created")))),
    re_path(r"^", host_or(served(None))),
]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    from django.core.wsgi import get_wsgi_application

    with make_server("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), handler_class=Quiet) as server:
        print("ready", flush=True)
        server.serve_forever()
