#!/usr/bin/env bash
# Soak and flood through a real Envoy: scripts/soak.sh [SECONDS] [CONCURRENCY]
# Builds the release binary and the soak driver (examples/soak.rs), then runs the mixed
# load and prints the report; exits non-zero on a false allow, a leak, or unbounded
# JWKS fetches. Needs Envoy in .venv (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin portcullis --example soak
exec target/release/examples/soak --seconds "${1:-60}" --concurrency "${2:-32}" \
  --portcullis target/release/portcullis --envoy .venv/bin/envoy
