# syntax=docker/dockerfile:1
# portcullis image: compile in a Rust builder, ship only the binary on a minimal base with
# glibc and CA certificates, as the non-root user 65532.
#
#   docker build -t registry.example.com/portcullis:0.1.0 .
#   buildah bud --isolation chroot -t portcullis:0.1.0 .
#
# Base images are build arguments, for mirrors and air-gapped registries:
#   --build-arg RUST_IMAGE=mirror.example.com/rust:1.95-bookworm
#   --build-arg RUNTIME_IMAGE=mirror.example.com/distroless/cc-debian12:nonroot
# tests/image.rs replays this build stage's COPY and RUN steps in a scratch directory, so
# a file the build needs and the Dockerfile forgets fails the test suite; scripts/image.sh
# builds the image with buildah and runs it.
ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when the manifest, the lock
# file, the build script or the protos change, not on every source edit. The stubs stand
# in for the targets Cargo.toml declares.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && echo 'fn main() {}' > benches/check.rs \
 && cargo build --release --locked --bin portcullis \
 && rm -rf src benches
COPY src src
COPY benches benches
# The commit built, for `--version` and portcullis_build_info (no .git is copied).
ARG SOURCE_COMMIT=unknown
ENV SOURCE_COMMIT=${SOURCE_COMMIT}
# COPY keeps the files' times, which may be older than the stubs': touch them so Cargo
# rebuilds the crate itself.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin portcullis \
 && ./target/release/portcullis --version

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
ARG SOURCE_COMMIT=unknown
ARG SOURCE_URL=
LABEL org.opencontainers.image.title="portcullis" \
      org.opencontainers.image.description="Envoy external-authorization service: JWT access tokens and route scope/role policy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${SOURCE_COMMIT}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /src/target/release/portcullis /usr/local/bin/portcullis
USER 65532:65532
# 9001: ext_authz gRPC; 9090: /readyz, /livez, /metrics.
EXPOSE 9001 9090
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["serve", "--config", "/etc/portcullis/portcullis.yaml", "--log-format", "json"]
