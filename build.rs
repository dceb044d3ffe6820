//! Compiles the Envoy ext_authz protos under `proto/` with `protox` (pure Rust, so no
//! system `protoc` is needed) and generates the tonic server and client from them. The
//! encoded descriptor set is written beside the generated code so that gRPC server
//! reflection can describe every message (see `src/pb.rs`). The server portcullis runs
//! is generated from a manual description of the same service, whose Check answers with
//! `pb::Answer` (see `src/pb.rs`). It also names the commit built, for `--version` and
//! `portcullis_build_info`.

use std::{env, fs, path::PathBuf, process::Command};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/envoy/service/auth/v3/external_auth.proto",
    "proto/envoy/service/auth/v3/attribute_context.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    commit();
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

/// The commit built, as `PORTCULLIS_COMMIT`: `SOURCE_COMMIT` when set (the image build,
/// which copies no `.git`), else what git says, else `unknown`. Rebuilt when HEAD moves.
fn commit() {
    println!("cargo:rerun-if-env-changed=SOURCE_COMMIT");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    for watched in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", watched])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = env::var("SOURCE_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=PORTCULLIS_COMMIT={commit}");
}
