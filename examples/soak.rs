//! Soak and flood: a mixed load through a real Envoy (`envoy/front-proxy.yaml`) to
//! portcullis (the release binary, a child process) for a set duration, then a report —
//! requests served, unexpected answers, false allows (must be 0), portcullis RSS at start
//! and end (must stay flat), JWKS fetches the identity provider saw (bounded by the
//! cooldown), and latency percentiles. Run it with `scripts/soak.sh [SECONDS]`.
//!
//! The mix, by request number: a valid token (expect 200), a token signed by a stranger
//! (401), a random `kid` (401, at most one JWKS fetch per cooldown), an oversized token
//! (401, or 431 when Envoy refuses the header first), and no token (401).

use std::{
    process::{Command, ExitCode, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, http::HeaderMap};
use jsonwebtoken::Algorithm;
use portcullis::demo::{self, DemoIssuer, Grant, SigningKey};

struct Args {
    seconds: u64,
    concurrency: usize,
    portcullis: String,
    envoy: String,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        seconds: 60,
        concurrency: 32,
        portcullis: "target/release/portcullis".into(),
        envoy: ".venv/bin/envoy".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => args.seconds = value.parse().map_err(|_| "--seconds: a number")?,
            "--concurrency" => {
                args.concurrency = value.parse().map_err(|_| "--concurrency: a number")?
            }
            "--portcullis" => args.portcullis = value,
            "--envoy" => args.envoy = value,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

mod support;

use support::{Guard, free_port, wait_ok};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("soak: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool, String> {
    let args = args()?;
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let key = SigningKey::rsa("key-1", Algorithm::RS256).map_err(|e| error(&e))?;
    let issuer = DemoIssuer::start(0, &[&key]).await.map_err(|e| error(&e))?;
    let dir = std::env::temp_dir().join(format!("portcullis-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| error(&e))?;

    // The upstream counts what reaches it, and with which identity.
    let upstream_hits = Arc::new(AtomicU64::new(0));
    let anonymous_hits = Arc::new(AtomicU64::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| error(&e))?;
    let upstream_port = listener.local_addr().map_err(|e| error(&e))?.port();
    let (hits, anonymous) = (upstream_hits.clone(), anonymous_hits.clone());
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let (hits, anonymous) = (hits.clone(), anonymous.clone());
        async move {
            hits.fetch_add(1, Ordering::Relaxed);
            if !headers.contains_key("x-auth-subject") {
                anonymous.fetch_add(1, Ordering::Relaxed);
            }
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let grpc = free_port().map_err(|e| error(&e))?;
    let admin = free_port().map_err(|e| error(&e))?;
    let config = dir.join("portcullis.yaml");
    let grpc_addr = format!("127.0.0.1:{grpc}").parse().map_err(|e| error(&e))?;
    std::fs::write(&config, demo::demo_config_yaml(&issuer, grpc_addr)).map_err(|e| error(&e))?;
    let portcullis = Guard(
        Command::new(&args.portcullis)
            .args([
                "serve",
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--config",
            ])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args.portcullis))?,
    );
    wait_ok(&format!("http://127.0.0.1:{admin}/readyz")).await?;

    let listen = free_port().map_err(|e| error(&e))?;
    let envoy_admin = free_port().map_err(|e| error(&e))?;
    let shipped = std::fs::read_to_string("envoy/front-proxy.yaml").map_err(|e| error(&e))?;
    let envoy_yaml = demo::envoy_config(&shipped, [listen, grpc, upstream_port, envoy_admin], &[])
        .ok_or("envoy/front-proxy.yaml: unexpected ports")?;
    let envoy_config = dir.join("envoy.yaml");
    std::fs::write(&envoy_config, envoy_yaml).map_err(|e| error(&e))?;
    let _envoy = Guard(
        Command::new(&args.envoy)
            .args([
                "--disable-hot-restart",
                "--concurrency",
                "1",
                "--log-level",
                "error",
                "-c",
            ])
            .arg(&envoy_config)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args.envoy))?,
    );
    let base = format!("http://127.0.0.1:{listen}");
    wait_ok(&format!("{base}/envoy-health")).await?;

    let iss = issuer.issuer();
    let valid = key
        .sign(&demo::access_token_claims(
            iss,
            Grant::Scopes("Orders.Read"),
            3600,
        ))
        .map_err(|e| error(&e))?;
    let stranger = SigningKey::rsa("key-1", Algorithm::RS256).map_err(|e| error(&e))?;
    let forged = stranger
        .sign(&demo::access_token_claims(
            iss,
            Grant::Scopes("Orders.Read"),
            3600,
        ))
        .map_err(|e| error(&e))?;
    let mut padded = demo::access_token_claims(iss, Grant::Scopes("Orders.Read"), 3600);
    padded["padding"] = serde_json::json!("x".repeat(40_000));
    let oversized = key.sign(&padded).map_err(|e| error(&e))?;
    let tokens = Arc::new((valid, forged, oversized));

    // Warm up, then measure.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| error(&e))?;
    for _ in 0..200 {
        let _ = client
            .get(format!("{base}/api/orders"))
            .bearer_auth(&tokens.0)
            .send()
            .await;
    }
    let rss_start = portcullis.rss_kib();
    let fetches_start = issuer.jwks_fetches();
    let hits_start = upstream_hits.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, base, tokens, stop) =
            (client.clone(), base.clone(), tokens.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut n = worker as u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let kind = n % 5;
                let mut request = client.get(format!("{base}/api/orders/{n}"));
                request = match kind {
                    0 => request.bearer_auth(&tokens.0),
                    1 => request.bearer_auth(&tokens.1),
                    2 => request.bearer_auth(random_kid(&tokens.0, n)),
                    3 => request.bearer_auth(&tokens.2),
                    _ => request,
                };
                let sent = Instant::now();
                let status = request.send().await.map(|r| r.status().as_u16());
                stats.latencies_us.push(sent.elapsed().as_micros() as u64);
                match (kind, status) {
                    (0, Ok(200)) | (1 | 2 | 4, Ok(401)) | (3, Ok(401 | 431)) => stats.ok += 1,
                    (1..=4, Ok(200)) => stats.false_allows += 1,
                    _ => stats.errors += 1,
                }
            }
            stats
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Stats::default();
    for worker in workers {
        let stats = worker.await.map_err(|e| error(&e))?;
        total.ok += stats.ok;
        total.errors += stats.errors;
        total.false_allows += stats.false_allows;
        total.latencies_us.extend(stats.latencies_us);
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_end = portcullis.rss_kib();
    let fetches = issuer.jwks_fetches() - fetches_start;
    let upstream = upstream_hits.load(Ordering::Relaxed) - hits_start;
    total.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let v = &total.latencies_us;
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let requests = total.ok + total.errors + total.false_allows;
    // A cooldown of 5 s (the demo config) allows one random-kid fetch per 5 s.
    let fetch_bound = (elapsed / 5.0).ceil() as usize + 1;
    println!(
        "soak: {:.0} s, {} workers, through Envoy to portcullis",
        elapsed, args.concurrency
    );
    println!(
        "  requests           {requests} ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!("  as expected        {}", total.ok);
    println!("  unexpected/errors  {}", total.errors);
    println!("  false allows       {} (must be 0)", total.false_allows);
    println!(
        "  upstream reached   {upstream} (anonymous: {})",
        anonymous_hits.load(Ordering::Relaxed)
    );
    println!("  portcullis RSS     {} KiB -> {} KiB", rss_start, rss_end);
    println!("  JWKS fetches       {fetches} (bound {fetch_bound}: one per 5 s cooldown)");
    println!(
        "  latency us         p50 {} p99 {} p99.9 {} max {}",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    let rss_flat = rss_end <= rss_start + rss_start / 2 + 4096;
    let healthy = total.false_allows == 0
        && anonymous_hits.load(Ordering::Relaxed) == 0
        && total.errors * 1000 <= requests
        && fetches <= fetch_bound
        && rss_flat;
    println!(
        "  verdict            {}",
        if healthy { "PASS" } else { "FAIL" }
    );
    Ok(healthy)
}

#[derive(Default)]
struct Stats {
    ok: u64,
    errors: u64,
    false_allows: u64,
    latencies_us: Vec<u64>,
}

/// `token` re-headed with a `kid` nobody published.
fn random_kid(token: &str, n: u64) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"soak-{n}"}}"#);
    let rest = token.split_once('.').map_or("", |(_, rest)| rest);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}
