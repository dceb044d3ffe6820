"""An upstream that trusts no header: it verifies portcullis's signed identity with a
stock library (PyJWT) against portcullis's published keys, and answers with the verified
claims (200) or why it refused (401). What a service reachable other than through Envoy,
or passing the caller on, would do.

    python identity_verifier.py PORT JWKS_URL AUDIENCE HEADER

Prints "ready" once it listens on 127.0.0.1:PORT.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

PORT, JWKS_URL, AUDIENCE, HEADER = sys.argv[1:5]
# Keys are fetched once and again when a token names a kid not seen yet (a rotation).
KEYS = jwt.PyJWKClient(JWKS_URL, cache_keys=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        copies = self.headers.get_all(HEADER) or []
        try:
            if len(copies) != 1:
                raise jwt.InvalidTokenError(f"{len(copies)} identity headers")
            token = copies[0]
            key = KEYS.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["ES256", "EdDSA"],
                audience=AUDIENCE,
                issuer="portcullis",
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            self.answer(200, {"claims": claims, "kid": jwt.get_unverified_header(token)["kid"]})
        except jwt.PyJWTError as error:
            self.answer(401, {"error": str(error)})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(PORT)), Handler)
print("ready", flush=True)
server.serve_forever()
