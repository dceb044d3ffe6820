#!/usr/bin/env bash
# Soak through a real Envoy: scripts/soak.sh [SECONDS] [CONCURRENCY] (default 1800 s, 32)
# Builds the release binary and the soak driver (examples/soak.rs), then runs the mixed
# load through a key rotation, a key withdrawal and an identity-provider outage and
# recovery, and prints the report; exits non-zero on a false allow, an unexpected answer,
# a leak (RSS or file descriptors), unbounded JWKS fetches, or readiness lost in the
# outage. Needs Envoy in .venv (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin portcullis --example soak
exec target/release/examples/soak --seconds "${1:-1800}" --concurrency "${2:-32}" \
  --portcullis target/release/portcullis --envoy .venv/bin/envoy
