#!/usr/bin/env bash
# Builds the container image for real with buildah (Debian's package) and runs it:
# `portcullis --version`, then the demo inside the image until /readyz answers 200.
#   scripts/image.sh            (as root; not part of the test command: ~15 min on 2 cores)
#
# Where the Dockerfile's default base images can be pulled, this is only
#   buildah bud --isolation chroot -t portcullis:0.1.0 .
# Where no public registry is reachable (this project's machines), the script first makes
# stand-in base images locally: the builder from Debian packages (mmdebstrap) plus the
# host's Rust toolchain (rustup's, as `rustup which cargo` finds it), the runtime from
# Debian's essential packages with libgcc and CA certificates. The CA bundle named by
# SSL_CERT_FILE, when set, is mounted into the build for Cargo's downloads, never copied
# into the image.
set -euo pipefail
cd "$(dirname "$0")/.."
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs} BUILDAH_ISOLATION=chroot
if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
  apt-get install -y -q --no-install-recommends buildah mmdebstrap \
    || { apt-get update -q && apt-get install -y -q --no-install-recommends buildah mmdebstrap; }
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

base() { # NAME TARFILE [EXTRA_DIR DEST]
  local ctr
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$2" / >/dev/null
  if [ $# -ge 4 ]; then
    buildah add "$ctr" "$3" "$4" >/dev/null
    buildah config --env PATH="$4/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      --env CARGO_HOME=/usr/local/cargo "$ctr"
  fi
  buildah commit -q "$ctr" "$1" >/dev/null
  buildah rm "$ctr" >/dev/null
}
if ! buildah inspect localhost/portcullis-rust-base:local >/dev/null 2>&1; then
  mmdebstrap --quiet --variant=apt --include=gcc,g++,make,libc6-dev,ca-certificates,pkg-config,perl \
    bookworm "$WORK/builder.tar"
  toolchain=$(dirname "$(dirname "$(rustup which cargo)")")
  base localhost/portcullis-rust-base:local "$WORK/builder.tar" "$toolchain" /usr/local/rust
fi
if ! buildah inspect localhost/portcullis-runtime-base:local >/dev/null 2>&1; then
  mmdebstrap --quiet --variant=essential --include=ca-certificates,libgcc-s1 bookworm "$WORK/runtime.tar"
  base localhost/portcullis-runtime-base:local "$WORK/runtime.tar"
fi

mounts=()
if [ -n "${SSL_CERT_FILE:-}" ]; then
  mounts=(-v "$SSL_CERT_FILE:/etc/ssl/certs/ca-certificates.crt:ro")
fi
time buildah bud --isolation chroot --layers "${mounts[@]}" \
  --build-arg RUST_IMAGE=localhost/portcullis-rust-base:local \
  --build-arg RUNTIME_IMAGE=localhost/portcullis-runtime-base:local \
  --build-arg SOURCE_COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  -t localhost/portcullis:0.1.0 .

buildah inspect --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Labels}}' localhost/portcullis:0.1.0; echo
ctr=$(buildah from localhost/portcullis:0.1.0)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
buildah run "$ctr" -- /usr/local/bin/portcullis --version

port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC=$(port) ADMIN=$(port)
buildah run "$ctr" -- /usr/local/bin/portcullis demo --grpc-listen "127.0.0.1:$GRPC" \
  --admin-listen "127.0.0.1:$ADMIN" >"$WORK/demo.out" 2>&1 &
DEMO=$!
for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$ADMIN/readyz"; then
    echo
    echo "the demo in the image is ready"
    kill "$DEMO" 2>/dev/null || true
    pkill -f "portcullis demo --grpc-listen 127.0.0.1:$GRPC" 2>/dev/null || true
    exit 0
  fi
  sleep 0.2
done
echo "the demo in the image never became ready:" >&2
cat "$WORK/demo.out" >&2
kill "$DEMO" 2>/dev/null || true
exit 1
