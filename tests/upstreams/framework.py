"""A test upstream that reads requests as lenient web frameworks do, on a real WSGI server.

Served by Python's wsgiref (as Django and Flask apps are under WSGI): PATH_INFO arrives
percent-decoded, so `%2F` is a separator here, and a header `x_auth_roles` arrives as
HTTP_X_AUTH_ROLES, exactly like `x-auth-roles`. On top of that the app routes like the
most lenient frameworks: the path from X-Original-URL or X-Rewrite-URL when present (IIS
URL Rewrite, old Symfony), decoded a second time (IIS double escaping), `;params` dropped
from segments (Tomcat, Spring), `\\` taken as `/`, trailing dots and spaces dropped from
segments (IIS), case-insensitive with Unicode rules (`ı` is `i`: .NET, Python re.I), a
format suffix dropped from the last segment (Rails, Spring), a trailing slash ignored
(Express), HEAD served by the GET handler, and method overrides honoured
(X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override headers, a `_method` query
parameter or form or JSON body field on POST). For the host it accepts every reading some
framework takes: each comma-separated value of Host, X-Forwarded-Host, X-Original-Host,
X-Host and Forwarded's host=, the part after `@`, port and trailing dot dropped,
percent-decoded, any case. The history endpoint is also a regex route ending in `$`, which
matches before a final newline.

Usage: framework.py PORT LOG_FILE. Every request served is appended to LOG_FILE as a JSON
line with the test's `x-test-id`, the resource the app served, and the identity headers it
read, so the test can check what reached the protected resources (HEAD answers included).
"""

import json
import re
import sys
import urllib.parse
from wsgiref.simple_server import WSGIRequestHandler, make_server

OVERRIDE_HEADERS = ("HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE")


UNICODE_PAIRS = {"\u0131": "i", "\u0130": "i", "\u017f": "s", "\u212a": "k"}


def path_info(environ):
    for header in ("HTTP_X_ORIGINAL_URL", "HTTP_X_REWRITE_URL"):
        if environ.get(header):
            return urllib.parse.unquote(environ[header].split("?", 1)[0])
    return environ.get("PATH_INFO", "")


def segments(path_info):
    out = []
    path_info = urllib.parse.unquote(path_info)
    # WSGI hands the path over as Latin-1 text of its bytes: read it as UTF-8, as Django does.
    path_info = path_info.encode("latin-1", "replace").decode("utf-8", "replace")
    for pair, letter in UNICODE_PAIRS.items():
        path_info = path_info.replace(pair, letter)
    for segment in path_info.replace("\\", "/").split("/"):
        segment = segment.split(";", 1)[0].lower()
        trimmed = segment.rstrip(". ")
        segment = ".." if not trimmed and segment.count(".") >= 2 else trimmed
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    if out and "." in out[-1][1:]:
        out[-1] = out[-1][: out[-1].index(".", 1)]
    return out


def hosts(environ):
    readings = set()
    values = []
    for header in ("HTTP_HOST", "HTTP_X_FORWARDED_HOST", "HTTP_X_ORIGINAL_HOST", "HTTP_X_HOST"):
        values += environ.get(header, "").split(",")
    for element in environ.get("HTTP_FORWARDED", "").replace(",", ";").split(";"):
        key, _, value = element.partition("=")
        if key.strip().lower() == "host":
            values.append(value.strip().strip('"'))
    for value in values:
        value = urllib.parse.unquote(value.strip()).rsplit("@", 1)[-1]
        if not value.startswith("["):
            value = value.split(":", 1)[0]
        readings.add(value.rstrip(".").lower())
    return readings


def body_override(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    body = environ["wsgi.input"].read(length) if length else b""
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type in ("", "application/x-www-form-urlencoded"):
        found = urllib.parse.parse_qs(body.decode("latin-1")).get("_method")
        return found[0] if found else None
    if "json" in content_type:
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value.get("_method") if isinstance(value, dict) else None
    return None


def method(environ):
    method = environ["REQUEST_METHOD"].upper()
    for header in OVERRIDE_HEADERS:
        if environ.get(header):
            return environ[header].upper()
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if method == "POST" and query.get("_method"):
        return query["_method"][0].upper()
    if method == "POST":
        overridden = body_override(environ)
        if isinstance(overridden, str):
            return overridden.upper()
    return "GET" if method == "HEAD" else method


def resource(environ):
    if "admin.example.com" in hosts(environ):
        return "admin-host"
    path, verb = segments(path_info(environ)), method(environ)
    # A regex route ending in `$`, which Python's re.match also matches before a final newline.
    if re.match(r"^/api/orders/[^/]+/history$", path_info(environ)) and verb == "GET":
        return "orders-history"
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
