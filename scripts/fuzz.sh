#!/usr/bin/env bash
# Runs every fuzz target (cargo-fuzz, libFuzzer, nightly toolchain) for SECONDS each
# (default 60), starting from the committed seeds in fuzz/seeds/<target>; the growing
# corpus goes to fuzz/corpus/<target> (not committed). A crash leaves its input in
# fuzz/artifacts/<target>/: turn it into a regression test beside the code it broke.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bearer token route config jwks check dpop)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "== $target: ${seconds}s"
  # A target without committed seeds starts from its corpus alone.
  inputs=("fuzz/corpus/$target")
  [ -d "fuzz/seeds/$target" ] && inputs+=("fuzz/seeds/$target")
  # -s none: no ASan (safe Rust; the C crypto is not fuzzed here), which also builds
  # faster; -rss_limit_mb bounds memory.
  cargo +nightly fuzz run -s none "$target" "${inputs[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10
done
