"""A small Flask application, as the framework documents it, for the end-to-end tests.

Served by Werkzeug's development server. Behind a proxy, Flask's documentation has the app
wrapped in Werkzeug's ProxyFix, which takes the host from X-Forwarded-Host (`x_host=1`).
Werkzeug decodes the path before routing (`%2F` is a separator), redirects a missing
trailing slash, and its routes are case-sensitive.

Usage: flask_app.py PORT LOG_FILE. Every request a view serves is appended to LOG_FILE as a
JSON line: the test's x-test-id, the resource (view) that served it, the method, the host
the app saw and the identity headers it received.
"""

import json
import logging
import sys

from flask import Flask, jsonify, request
from werkzeug.middleware.proxy_fix import ProxyFix

LOG = sys.argv[2] if len(sys.argv) > 2 else "/dev/null"

app = Flask(__name__)
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)


def serve(resource):
    if request.host.split(":")[0] == "admin.example.com":
        resource = "admin-host"
    record = {
        "test_id": request.headers.get("x-test-id", ""),
        "resource": resource,
        "method": request.method,
        "host": request.host,
        "identity": {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("x-auth-")},
        "authorization": request.headers.get("authorization"),
    }
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return jsonify(record)


@app.route("/admin", defaults={"rest": ""})
@app.route("/admin/<path:rest>")
def admin(rest):
    return serve("admin")


@app.route("/public", defaults={"rest": ""})
@app.route("/public/<path:rest>")
def public(rest):
    return serve("public")


@app.get("/api/orders/export")
def export():
    return serve("orders-export")


@app.get("/api/orders/<id>/history")
def history(id):
    return serve("orders-history")


@app.get("/api/orders/<id>")
def order(id):
    return serve("order")


@app.delete("/api/orders/<id>")
def delete_order(id):
    return serve("order-deleted")


@app.get("/api/orders")
def orders():
    return serve("orders-list")


@app.post("/api/orders")
def create_order():
    return serve("order-created")


@app.route("/", defaults={"rest": ""})
@app.route("/<path:rest>")
def anything(rest):
    if request.host.split(":")[0] == "admin.example.com":
        return serve("admin-host")
    return jsonify({"resource": None}), 404


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print("ready", flush=True)
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
