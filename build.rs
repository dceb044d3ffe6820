//! Compiles the Envoy ext_authz protos under `proto/` with `protox` (pure Rust, so no
//! system `protoc` is needed) and generates the tonic server and client from them. The
//! encoded descriptor set is written beside the generated code so that gRPC server
//! reflection can describe every message (see `src/pb.rs`). The server portcullis runs
//! is generated from a manual description of the same service, whose Check answers with
//! `pb::Answer` (see `src/pb.rs`).

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/envoy/service/auth/v3/external_auth.proto",
    "proto/envoy/service/auth/v3/attribute_context.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::create_dir_all(out_dir.join("answering"))?;
    fs::write(
        out_dir.join("portcullis_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    // The same service and route, as portcullis serves it: Check answers with
    // `pb::Answer`, a CheckResponse that may have been encoded before (src/jwt/memo.rs).
    let check = tonic_build::manual::Method::builder()
        .name("check")
        .route_name("Check")
        .input_type("crate::pb::auth::CheckRequest")
        .output_type("crate::pb::Answer")
        .codec_path("tonic_prost::ProstCodec")
        .build();
    let service = tonic_build::manual::Service::builder()
        .name("Authorization")
        .package("envoy.service.auth.v3")
        .method(check)
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .out_dir(out_dir.join("answering"))
        .compile(&[service]);
    Ok(())
}
