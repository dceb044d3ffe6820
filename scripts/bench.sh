#!/usr/bin/env bash
# The benchmark suite: scripts/bench.sh [SECONDS] [ROUNDS]
#  1. in-process (criterion): the Check path for a cached token, uncached RS256 and
#     ES256, and a deny, beside bare jsonwebtoken verification of the same tokens;
#  2. over gRPC and through a real Envoy (examples/bench.rs): portcullis against a
#     zero-work ext_authz server and Envoy's own jwt_authn + RBAC, servers pinned to
#     CPU 0, load on CPU 1. Table on stdout, JSON in target/bench/results.json;
#  3. instructions per Check (examples/instructions.rs, valgrind's callgrind): portcullis
#     against both floors, then Envoy's instructions per request behind each answer —
#     the figures that do not move with the machine's load.
# Needs Envoy in .venv (scripts/test.sh installs it), taskset (util-linux) and valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin portcullis --example zero_authz --example bench \
  --example instructions
taskset -c 1 target/release/examples/bench --seconds "${1:-10}" --rounds "${2:-2}"
cargo bench --locked --bench check -- --warm-up-time 1 --measurement-time 3
target/release/examples/instructions
envoy_binary=$(ls .venv/lib/python3*/site-packages/envoy/_bin/envoy | head -n 1)
target/release/examples/instructions --envoy "$envoy_binary"
