//! How much memory portcullis holds after seeing many distinct valid tokens: starts the
//! release binary, sends `--tokens N` Checks, each with a freshly signed (ES256, cheap to
//! sign) token, and prints the RSS before and after, and the token-cache size reported on
//! `/metrics`. `cargo build --release --bin portcullis --example cache_rss &&
//! target/release/examples/cache_rss --tokens 1000000`

mod support;

use std::{
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{authorization_client::AuthorizationClient, check_response::HttpResponse},
};
use serde_json::json;
use support::{Guard, free_port, wait_ok};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut tokens: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--tokens", Some(n)) => tokens = n.parse()?,
            _ => return Err(format!("usage: cache_rss [--tokens N] (got {flag})").into()),
        }
    }
    let key = Arc::new(SigningKey::es256("es")?);
    let issuer = DemoIssuer::start(0, &[&key]).await?;
    let (grpc, admin) = (free_port()?, free_port()?);
    let config = std::env::temp_dir().join(format!("portcullis-cache-rss-{grpc}.yaml"));
    std::fs::write(
        &config,
        demo::demo_config_yaml(&issuer, format!("127.0.0.1:{grpc}").parse()?),
    )?;
    let server = Guard(
        Command::new("target/release/portcullis")
            .args([
                "serve",
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--config",
            ])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_ok(&format!("http://127.0.0.1:{admin}/readyz")).await?;
    let before = server.rss_kib();
    let client = AuthorizationClient::connect(format!("http://127.0.0.1:{grpc}")).await?;
    let next = Arc::new(AtomicU64::new(0));
    let allowed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (mut client, next, allowed, key) =
            (client.clone(), next.clone(), allowed.clone(), key.clone());
        let mut claims =
            demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 7200);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= tokens {
                    return Ok::<(), Error>(());
                }
                claims["jti"] = json!(n);
                let bearer = format!("Bearer {}", key.sign(&claims)?);
                let request = demo::check_request(
                    "GET",
                    "api.local",
                    "/api/orders",
                    &[("authorization", &bearer)],
                );
                let response = client.check(request).await?.into_inner();
                if matches!(response.http_response, Some(HttpResponse::OkResponse(_))) {
                    allowed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let after = server.rss_kib();
    let metrics = reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
        .await?
        .text()
        .await?;
    let entries = metrics
        .lines()
        .find(|l| l.starts_with("portcullis_token_cache_entries "))
        .unwrap_or("portcullis_token_cache_entries ?");
    println!(
        "{tokens} distinct tokens ({} allowed) in {:.0} s; portcullis RSS {before} KiB -> {after} KiB; {entries}",
        allowed.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
