//! Soak: a mixed load through a real Envoy (`envoy/front-proxy.yaml`) to portcullis (the
//! release binary, a child process) for a set duration, through a key rotation and an
//! identity-provider outage, then a report — requests, unexpected answers, false allows
//! (must be 0), JWKS fetches (bounded), portcullis RSS and open file descriptors at start
//! and end (must stay flat), readiness during the outage, and p50/p99 latency per phase.
//! Run it with `scripts/soak.sh [SECONDS]`.
//!
//! The mix, by request number: the same valid token (cached: 200), a fresh ES256 token
//! (never seen: 200), a token signed by a stranger with the current `kid` (401), a random
//! `kid` (401, at most one JWKS fetch per cooldown), no token (401), and a token of the
//! key the provider retires (200 until its withdrawal is fetched, 401 after).
//!
//! The phases, as fractions of the run: `steady` (keys 1 sign), `rotation` at 25 % (keys 2
//! published and signing, keys 1 still published), `withdrawn` at 40 % (keys 1 removed;
//! refused at the latest one refresh interval later), `outage` at 60 % (the provider
//! answers 503: cached keys serve, readiness holds), `recovered` at 75 %.

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
use portcullis::demo::{self, Behaviour, DemoIssuer, Grant, SigningKey};

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

/// The phases of a run, in order, with the fraction of the run at which each begins.
const PHASES: [(&str, f64); 5] = [
    ("steady", 0.0),
    ("rotation", 0.25),
    ("withdrawn", 0.40),
    ("outage", 0.60),
    ("recovered", 0.75),
];
/// The soak's JWKS refresh interval: a withdrawn key is refused at the latest this long
/// (plus a fetch) after the provider stops publishing it.
const REFRESH: Duration = Duration::from_secs(60);
/// The demo configuration's `unknown_kid_cooldown` (the default).
const COOLDOWN: Duration = Duration::from_secs(2);

/// The tokens the workers send in the current phase.
struct Tokens {
    /// 0-based phase index.
    phase: usize,
    /// The same valid token every time (cached after the first).
    cached: String,
    /// The key fresh tokens are signed with.
    fresh: Arc<SigningKey>,
    /// Signed by a stranger, with the current `kid`.
    stranger: String,
    /// Signed by the key the provider retires.
    retired: String,
    /// Whether the retired key may still verify (its withdrawal not yet certainly fetched).
    retired_may_verify: bool,
    /// Until then a token of the new key may still be refused: the random-`kid` flood
    /// keeps the unknown-`kid` cooldown running, so the new key is fetched at the latest
    /// one cooldown after it first appears. A refusal later is an error.
    new_key_may_wait_until: Option<Instant>,
}

async fn run() -> Result<bool, String> {
    let args = args()?;
    let error = |e: &dyn std::fmt::Display| e.to_string();
    let rs1 = SigningKey::rsa("rs-1", Algorithm::RS256).map_err(|e| error(&e))?;
    let es1 = Arc::new(SigningKey::es256("es-1").map_err(|e| error(&e))?);
    let rs2 = SigningKey::rsa("rs-2", Algorithm::RS256).map_err(|e| error(&e))?;
    let es2 = Arc::new(SigningKey::es256("es-2").map_err(|e| error(&e))?);
    let issuer = DemoIssuer::start(0, &[&rs1, &es1])
        .await
        .map_err(|e| error(&e))?;
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
    let yaml = demo::demo_config_yaml(&issuer, grpc_addr).replace(
        "jwks:\n",
        &format!(
            "jwks:\n  refresh_interval: {}s\n  min_refresh_interval: 10s\n",
            REFRESH.as_secs()
        ),
    );
    std::fs::write(&config, yaml).map_err(|e| error(&e))?;
    let portcullis = Guard(
        Command::new(&args.portcullis)
            .args([
                "serve",
                "--admin-listen",
                &format!("127.0.0.1:{admin}"),
                "--config",
            ])
            .arg(&config)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args.portcullis))?,
    );
    let readyz = format!("http://127.0.0.1:{admin}/readyz");
    wait_ok(&readyz).await?;

    let listen = free_port().map_err(|e| error(&e))?;
    let envoy_admin = free_port().map_err(|e| error(&e))?;
    let shipped = std::fs::read_to_string("envoy/front-proxy.yaml").map_err(|e| error(&e))?;
    let envoy_yaml = demo::envoy_config(&shipped, [listen, grpc, upstream_port, envoy_admin], &[])
        .ok_or("envoy/front-proxy.yaml: unexpected ports")?;
    let envoy_config = dir.join("envoy.yaml");
    std::fs::write(&envoy_config, envoy_yaml).map_err(|e| error(&e))?;
    let _envoy = Guard(
        Command::new(&args.envoy)
            .args(support::ENVOY_ARGS)
            .arg(&envoy_config)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args.envoy))?,
    );
    let base = format!("http://127.0.0.1:{listen}");
    wait_ok(&format!("{base}/envoy-health")).await?;

    let iss = issuer.issuer().to_owned();
    let claims = |scopes: &str| demo::access_token_claims(&iss, Grant::Scopes(scopes), 7200);
    let sign = |key: &SigningKey| key.sign(&claims("Orders.Read")).map_err(|e| error(&e));
    let stranger_of = |kid: &str| -> Result<String, String> {
        let stranger = SigningKey::rsa(kid, Algorithm::RS256).map_err(|e| error(&e))?;
        sign(&stranger)
    };
    let retired = sign(&rs1)?;
    let tokens = Arc::new(std::sync::RwLock::new(Arc::new(Tokens {
        phase: 0,
        cached: sign(&rs1)?,
        fresh: es1.clone(),
        stranger: stranger_of("rs-1")?,
        retired: retired.clone(),
        retired_may_verify: true,
        new_key_may_wait_until: None,
    })));

    // Warm up, then measure.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .map_err(|e| error(&e))?;
    for _ in 0..200 {
        let _ = client
            .get(format!("{base}/api/orders"))
            .bearer_auth(&retired)
            .send()
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_start = portcullis.rss_kib();
    let fds_start = portcullis.open_fds();
    let fetches_start = issuer.jwks_fetches();
    let hits_start = upstream_hits.load(Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, base, tokens, stop, iss) = (
            client.clone(),
            base.clone(),
            tokens.clone(),
            stop.clone(),
            iss.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            let mut n = worker as u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let current = match tokens.read() {
                    Ok(current) => current.clone(),
                    Err(_) => break,
                };
                let kind = n % 6;
                let mut request = client.get(format!("{base}/api/orders/{n}"));
                request = match kind {
                    0 => request.bearer_auth(&current.cached),
                    1 => {
                        let mut claims =
                            demo::access_token_claims(&iss, Grant::Scopes("Orders.Read"), 600);
                        claims["jti"] = serde_json::json!(format!("{worker}-{n}"));
                        match current.fresh.sign(&claims) {
                            Ok(token) => request.bearer_auth(token),
                            Err(_) => continue,
                        }
                    }
                    2 => request.bearer_auth(&current.stranger),
                    3 => request.bearer_auth(random_kid(&current.cached, n)),
                    5 => request.bearer_auth(&current.retired),
                    _ => request,
                };
                let sent = Instant::now();
                let status = request.send().await.map(|r| r.status().as_u16());
                stats.latencies_us[current.phase].push(sent.elapsed().as_micros() as u64);
                let waiting = current
                    .new_key_may_wait_until
                    .is_some_and(|until| Instant::now() < until);
                match (kind, status) {
                    (0 | 1, Ok(200)) | (2..=4, Ok(401)) => stats.ok += 1,
                    (0 | 1, Ok(401)) if waiting => stats.rotation_waits += 1,
                    (5, Ok(200)) if current.retired_may_verify => stats.ok += 1,
                    (5, Ok(401)) => stats.ok += 1,
                    (2..=5, Ok(200)) => stats.false_allows += 1,
                    (kind, status) => {
                        stats.errors += 1;
                        let status = status.map_or(0, |s| s);
                        *stats.unexpected.entry((kind, status)).or_default() += 1;
                    }
                }
            }
            stats
        }));
    }

    // The provider's life: rotation, withdrawal, outage, recovery.
    let total = Duration::from_secs(args.seconds);
    let at = |fraction: f64| total.mul_f64(fraction);
    let mut ready_in_outage = true;
    let mut rss_by_phase = vec![rss_start];
    let mut withdrawn_at: Option<Instant> = None;
    for (index, (name, fraction)) in PHASES.iter().enumerate().skip(1) {
        while started.elapsed() < at(*fraction) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if index == 4 && !reqwest::get(&readyz).await.is_ok_and(|r| r.status() == 200) {
                ready_in_outage = false;
            }
            if let Some(when) = withdrawn_at
                && when.elapsed() > REFRESH + Duration::from_secs(10)
                && let Ok(mut current) = tokens.write()
                && current.retired_may_verify
            {
                let mut next = Tokens {
                    ..clone_tokens(&current)
                };
                next.retired_may_verify = false;
                *current = Arc::new(next);
            }
        }
        let mut next = tokens
            .read()
            .map(|t| clone_tokens(&t))
            .map_err(|_| "lock")?;
        next.phase = index;
        match *name {
            "rotation" => {
                issuer.publish(&[&rs1, &es1, &rs2, &es2]);
                next.cached = sign(&rs2)?;
                next.fresh = es2.clone();
                next.stranger = stranger_of("rs-2")?;
                next.new_key_may_wait_until =
                    Some(Instant::now() + COOLDOWN + Duration::from_secs(2));
            }
            "withdrawn" => {
                issuer.publish(&[&rs2, &es2]);
                withdrawn_at = Some(Instant::now());
            }
            "outage" => issuer.set_behaviour(Behaviour::Unavailable),
            _ => issuer.set_behaviour(Behaviour::Serve),
        }
        if let Ok(mut current) = tokens.write() {
            *current = Arc::new(next);
        }
        rss_by_phase.push(portcullis.rss_kib());
        println!(
            "soak: {:>5.0} s  phase {name}",
            started.elapsed().as_secs_f64()
        );
    }
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut all = Stats::default();
    for worker in workers {
        let stats = worker.await.map_err(|e| error(&e))?;
        all.ok += stats.ok;
        all.rotation_waits += stats.rotation_waits;
        all.errors += stats.errors;
        all.false_allows += stats.false_allows;
        for (key, count) in stats.unexpected {
            *all.unexpected.entry(key).or_default() += count;
        }
        for (phase, latencies) in stats.latencies_us.into_iter().enumerate() {
            all.latencies_us[phase].extend(latencies);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_end = portcullis.rss_kib();
    let fds_end = portcullis.open_fds();
    let fetches = issuer.jwks_fetches() - fetches_start;
    let upstream = upstream_hits.load(Ordering::Relaxed) - hits_start;
    let requests = all.ok + all.rotation_waits + all.errors + all.false_allows;
    // One random-kid fetch per cooldown, one refresh per interval, and the retries of the
    // outage (back-off from 0.5 s): a loose ceiling.
    let fetch_bound =
        (elapsed / COOLDOWN.as_secs_f64()).ceil() as usize + (elapsed / 10.0).ceil() as usize + 32;
    println!(
        "soak: {:.0} s, {} workers, through Envoy to portcullis",
        elapsed, args.concurrency
    );
    println!(
        "  requests           {requests} ({:.0}/s)",
        requests as f64 / elapsed
    );
    println!("  as expected        {}", all.ok);
    println!(
        "  rotation waits     {} (new-key tokens refused within one {} s cooldown of the rotation; later ones are errors)",
        all.rotation_waits,
        COOLDOWN.as_secs()
    );
    println!("  unexpected/errors  {} {:?}", all.errors, all.unexpected);
    println!("  false allows       {} (must be 0)", all.false_allows);
    println!(
        "  upstream reached   {upstream} (anonymous: {})",
        anonymous_hits.load(Ordering::Relaxed)
    );
    println!(
        "  portcullis RSS     {rss_start} KiB at start, {:?} KiB at each phase, {rss_end} KiB at the end",
        &rss_by_phase[1..]
    );
    println!("  open fds           {fds_start} -> {fds_end}");
    println!("  JWKS fetches       {fetches} (ceiling {fetch_bound})");
    println!("  ready in outage    {ready_in_outage}");
    for (phase, (name, _)) in PHASES.iter().enumerate() {
        let latencies = &mut all.latencies_us[phase];
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "  {name:<10} {:>8} requests  p50 {:>6} us  p99 {:>7} us",
            latencies.len(),
            pct(0.5),
            pct(0.99)
        );
    }
    // The verified-token cache fills to its bound in the first phase; from then on the
    // resident set must stay flat.
    let settled = rss_by_phase.get(1).copied().unwrap_or(rss_start);
    let rss_flat = rss_end <= settled + settled / 4 + 8192;
    let fds_flat = fds_end <= fds_start + 16;
    let healthy = all.false_allows == 0
        && anonymous_hits.load(Ordering::Relaxed) == 0
        && all.errors * 1000 <= requests
        && fetches <= fetch_bound
        && rss_flat
        && fds_flat
        && ready_in_outage;
    println!(
        "  verdict            {}",
        if healthy { "PASS" } else { "FAIL" }
    );
    Ok(healthy)
}

fn clone_tokens(tokens: &Tokens) -> Tokens {
    Tokens {
        phase: tokens.phase,
        cached: tokens.cached.clone(),
        fresh: tokens.fresh.clone(),
        stranger: tokens.stranger.clone(),
        retired: tokens.retired.clone(),
        retired_may_verify: tokens.retired_may_verify,
        new_key_may_wait_until: tokens.new_key_may_wait_until,
    }
}

#[derive(Default)]
struct Stats {
    ok: u64,
    /// New-key tokens refused while the unknown-kid cooldown ran (see `Tokens`).
    rotation_waits: u64,
    errors: u64,
    false_allows: u64,
    /// Per phase.
    latencies_us: [Vec<u64>; 5],
    /// Unexpected answers by (request kind, status; 0 for a failed request).
    unexpected: std::collections::BTreeMap<(u64, u16), u64>,
}

/// `token` re-headed with a `kid` nobody published.
fn random_kid(token: &str, n: u64) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"soak-{n}"}}"#);
    let rest = token.split_once('.').map_or("", |(_, rest)| rest);
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header))
}
