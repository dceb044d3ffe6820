"""A test upstream that reads requests as lenient web frameworks do, on a real WSGI server.

Served by Python's wsgiref (as Django and Flask apps are under WSGI): PATH_INFO arrives
percent-decoded, so `%2F` is a separator here, and a header `x_auth_roles` arrives as
HTTP_X_AUTH_ROLES, exactly like `x-auth-roles`. On top of that the app routes like the
most lenient frameworks: `;params` dropped from segments (Tomcat, Spring), `\\` taken as
`/`, case-insensitive (ASP.NET Core), a trailing slash ignored (Express), HEAD served by
the GET handler, and method overrides honoured (X-HTTP-Method-Override, X-HTTP-Method,
X-Method-Override headers, `_method` query parameter on POST). For the host it accepts
every reading some framework takes: each comma-separated value, the part after `@`, port
and trailing dot dropped, percent-decoded, any case.

Usage: framework.py PORT LOG_FILE. Every request served is appended to LOG_FILE as a JSON
line with the test's `x-test-id`, the resource the app served, and the identity headers it
read, so the test can check what reached the protected resources (HEAD answers included).
"""

import json
import sys
import urllib.parse
from wsgiref.simple_server import WSGIRequestHandler, make_server

OVERRIDE_HEADERS = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")


def segments(path_info):
    out = []
    for segment in path_info.replace("\\", "/").split("/"):
        segment = segment.split(";", 1)[0].lower()
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    return out


def hosts(environ):
    readings = set()
    for value in environ.get("HTTP_HOST", "").split(","):
        value = urllib.parse.unquote(value.strip()).rsplit("@", 1)[-1]
        if not value.startswith("["):
            value = value.split(":", 1)[0]
        readings.add(value.rstrip(".").lower())
    return readings


def method(environ):
    method = environ["REQUEST_METHOD"].upper()
    for header in OVERRIDE_HEADERS:
        if environ.get(header):
            return environ[header].upper()
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if method == "POST" and query.get("_method"):
        return query["_method"][0].upper()
    return "GET" if method == "HEAD" else method


def resource(environ):
    if "admin.example.com" in hosts(environ):
        return "admin-host"
    path, verb = segments(environ.get("PATH_INFO", "")), method(environ)
    if path[:1] == ["admin"]:
        return "admin"
    if path[:1] == ["public"]:
        return "public"
    if path[:2] == ["api", "orders"]:
        rest = path[2:]
        if len(rest) == 2 and rest[1] == "history" and verb == "GET":
            return "orders-history"
        if len(rest) == 1:
            return {"GET": "order", "DELETE": "order-deleted", "PUT": "order-updated"}.get(verb)
        if not rest:
            return {"GET": "orders-list", "POST": "order-created", "DELETE": "orders-deleted"}.get(verb)
    return None


def app(log):
    def serve(environ, start_response):
        served = resource(environ)
        record = {
            "test_id": environ.get("HTTP_X_TEST_ID", ""),
            "resource": served,
            "method": environ["REQUEST_METHOD"],
            "identity": {k: v for k, v in environ.items() if k.startswith("HTTP_X_AUTH_")},
            "authorization": environ.get("HTTP_AUTHORIZATION"),
            "jwt_payload": environ.get("HTTP_X_JWT_PAYLOAD"),
        }
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        body = json.dumps(record).encode()
        status = "200 OK" if served else "404 Not Found"
        start_response(status, [("content-type", "application/json"), ("content-length", str(len(body)))])
        return [body]

    return serve


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, log = int(sys.argv[1]), sys.argv[2]
    with make_server("127.0.0.1", port, app(log), handler_class=Quiet) as server:
        print("ready", flush=True)
        server.serve_forever()
