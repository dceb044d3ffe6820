//! Compiles the Envoy ext_authz protos under `proto/` with `protox` (pure Rust, so no
//! system `protoc` is needed) and generates the tonic server and client from them. The
//! encoded descriptor set is written beside the generated code so that gRPC server
//! reflection can describe every message (see `src/pb.rs`).

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
    fs::write(
        out_dir.join("portcullis_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
