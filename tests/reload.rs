//! Hot reload of the real binary (`portcullis serve`): the config file is rewritten —
//! valid, invalid, valid again, plus SIGHUP — while a client keeps calling Check; no
//! Check may fail, the invalid file must be refused and counted, and the valid ones
//! applied.

mod common;

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use common::{ChildGuard, check_request, free_port};
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{authorization_client::AuthorizationClient, check_response::HttpResponse},
};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn config(issuer: &DemoIssuer, extra_route: &str) -> String {
    format!(
        "issuers:\n  - issuer: \"{}\"\n    jwks_uri: \"{}\"\n    audiences: [\"{}\"]\nroutes:\n  - name: orders\n    path: {{ prefix: /api/orders }}\n    require: {{ scopes: [Orders.Read] }}\n{extra_route}",
        issuer.issuer(),
        issuer.jwks_uri(),
        demo::DEMO_AUDIENCE
    )
}

async fn allowed(
    client: &mut AuthorizationClient<tonic::transport::Channel>,
    path: &str,
    token: &str,
) -> bool {
    let request = check_request(
        "GET",
        path,
        &[("authorization", &format!("Bearer {token}"))],
    );
    match client.check(request).await {
        Ok(response) => matches!(
            response.into_inner().http_response,
            Some(HttpResponse::OkResponse(_))
        ),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_changes_apply_without_a_failed_check_and_invalid_ones_are_refused() {
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let token = key
        .sign(&demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        ))
        .unwrap();
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("reload-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config(&issuer, "")).unwrap();

    let grpc = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .args([
            "serve",
            "--grpc-listen",
            &grpc,
            "--admin-listen",
            &admin,
            "--reload-interval",
            "100ms",
            "--config",
        ])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = ChildGuard(child);
    let ready_url = format!("http://{admin}/readyz");
    common::wait_until_ok(&ready_url).await;
    let mut client = AuthorizationClient::connect(format!("http://{grpc}"))
        .await
        .unwrap();
    assert!(allowed(&mut client, "/api/orders", &token).await);
    assert!(
        !allowed(&mut client, "/api/reports", &token).await,
        "no reports route yet"
    );

    // A client hammers a route present in every valid version while files change.
    let stop = Arc::new(AtomicBool::new(false));
    let (checks, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, checks, failures, token) = (
            stop.clone(),
            checks.clone(),
            failures.clone(),
            token.clone(),
        );
        let mut client = client.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if !allowed(&mut client, "/api/orders/1", &token).await {
                    failures.fetch_add(1, Ordering::SeqCst);
                }
                checks.fetch_add(1, Ordering::SeqCst);
            }
        })
    };

    // Lets the load make progress, so that Checks overlap every swap.
    let progress = || {
        let target = checks.load(Ordering::SeqCst) + 25;
        let checks = checks.clone();
        common::wait_for(move || checks.load(Ordering::SeqCst) >= target)
    };
    progress().await;
    let reports = "  - name: reports\n    path: { prefix: /api/reports }\n    require: { scopes: [Orders.Read] }\n";
    std::fs::write(&path, config(&issuer, reports)).unwrap();
    progress().await;
    let reports_allowed = || {
        let (mut client, token) = (client.clone(), token.clone());
        async move { allowed(&mut client, "/api/reports", &token).await }
    };
    common::wait_for_async(reports_allowed).await;

    std::fs::write(&path, "routes: [ this is : not valid").unwrap();
    progress().await;
    let metrics_url = format!("http://{admin}/metrics");
    common::wait_for_text(
        &metrics_url,
        "portcullis_config_reloads_total{outcome=\"invalid\"} 1",
    )
    .await;
    assert!(
        allowed(&mut client, "/api/reports", &token).await,
        "the previous config keeps serving"
    );

    // An edited file reloads; SIGHUP reloads at once even without a change.
    std::fs::write(&path, config(&issuer, "")).unwrap();
    progress().await;
    common::wait_for_async(|| async {
        !allowed(&mut client.clone(), "/api/reports", &token).await
    })
    .await;
    let pid = server.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    common::wait_for_text(
        &metrics_url,
        "portcullis_config_reloads_total{outcome=\"ok\"} 3",
    )
    .await;
    progress().await;

    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "no Check failed while configs were swapped"
    );
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "reloads keep the key cache of an unchanged issuer"
    );
}
