#!/usr/bin/env bash
# The SBOM of what the binary is built from: CycloneDX 1.5 JSON, from Cargo.lock (runtime
# dependencies; build and development ones left out), written to
# target/sbom/portcullis.cdx.json. Needs cargo-cyclonedx (`cargo install cargo-cyclonedx
# --locked`); the release workflow attaches and attests it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p target/sbom
name="${SBOM_NAME:-portcullis-sbom-$$}"
cargo cyclonedx --format json --spec-version 1.5 --no-build-deps --override-filename "$name"
mv "$name.json" target/sbom/portcullis.cdx.json
echo "target/sbom/portcullis.cdx.json"
