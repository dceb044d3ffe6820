//! A real gRPC tool (grpcurl 1.8.6 from PyPI, which speaks only reflection v1alpha) finds
//! and calls the service with no proto files on its side.

mod common;

use std::{path::Path, process::Command};

use common::{World, external_tool};
use portcullis::demo::Grant;
use serde_json::{Value, json};

async fn grpcurl(bin: &Path, args: Vec<String>) -> String {
    let bin = bin.to_path_buf();
    let output = tokio::task::spawn_blocking(move || Command::new(bin).args(&args).output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "grpcurl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn call(addr: &str, method: &str, body: &Value) -> Vec<String> {
    ["-plaintext", "-d", &body.to_string(), addr, method]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn check_body(path: &str, token: Option<&str>) -> Value {
    let mut http = json!({"method": "GET", "host": "api.local", "path": path});
    if let Some(token) = token {
        http["headers"] = json!({"authorization": format!("Bearer {token}")});
    }
    json!({"attributes": {"request": {"http": http}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_and_calls_check_by_reflection() {
    let Some(bin) = external_tool("grpcurl") else {
        return;
    };
    let world = World::start().await.ready().await;
    let addr = world.addr.to_string();
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let services = grpcurl(&bin, args(&["-plaintext", &addr, "list"])).await;
    for service in [
        "envoy.service.auth.v3.Authorization",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.lines().any(|l| l == service),
            "{service} missing in:\n{services}"
        );
    }
    let described = grpcurl(
        &bin,
        args(&[
            "-plaintext",
            &addr,
            "describe",
            "envoy.service.auth.v3.CheckResponse",
        ]),
    )
    .await;
    assert!(
        described.contains("ok_response") && described.contains("denied_response"),
        "{described}"
    );

    for service in [
        "",
        "envoy.service.auth.v3.Authorization",
        "portcullis.liveness",
    ] {
        let health = json!({ "service": service });
        let status = grpcurl(&bin, call(&addr, "grpc.health.v1.Health/Check", &health)).await;
        assert!(status.contains("\"SERVING\""), "{service}: {status}");
    }

    let method = "envoy.service.auth.v3.Authorization/Check";
    let token = world.token(Grant::Scopes("Orders.Read"));
    let allow: Value = serde_json::from_str(
        &grpcurl(
            &bin,
            call(&addr, method, &check_body("/api/orders/1", Some(&token))),
        )
        .await,
    )
    .unwrap();
    let headers = allow["okResponse"]["headers"].as_array().unwrap();
    assert!(
        headers
            .iter()
            .any(|h| h["header"]["key"] == "x-auth-subject"
                && h["header"]["value"] == "demo-subject-AAbbCC"),
        "{allow}"
    );

    let deny: Value = serde_json::from_str(
        &grpcurl(
            &bin,
            call(&addr, method, &check_body("/api/orders/1", None)),
        )
        .await,
    )
    .unwrap();
    assert_eq!(
        deny["deniedResponse"]["status"]["code"], "Unauthorized",
        "{deny}"
    );
    assert_eq!(deny["status"]["code"], 16, "UNAUTHENTICATED");
}
