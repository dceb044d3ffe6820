"""An upstream for trying portcullis: answers every request 200 with what it received —
method, path and the identity headers (x-auth-*) — as JSON.

Usage: echo_upstream.py PORT   (listens on 127.0.0.1 only)
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def answer(self):
        identity = {k.lower(): v for k, v in self.headers.items() if k.lower().startswith("x-auth-")}
        body = json.dumps({"method": self.command, "path": self.path, "identity": identity}, indent=2).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body + b"\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = answer

    def log_message(self, *_):
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
