//! Instructions per Check, counted by valgrind's callgrind: a measure that does not swing
//! with what else the machine is doing, for steering changes that timing cannot see.
//! Each server runs under `valgrind --tool=callgrind` twice, answering N1 and then N2
//! identical-shaped requests sent one at a time over one gRPC connection; the difference
//! of the two totals over N2 − N1 is the cost of one Check, start-up, key fetches, the
//! connection and shut-down cancelled out. Servers: portcullis (release binary), the
//! zero-work ext_authz server and the naive verifying server (`examples/zero_authz.rs`).
//!
//! `cargo build --release --bin portcullis --example zero_authz --example instructions &&
//! target/release/examples/instructions [--n1 200 --n2 1200] [--only TEXT] [--keep]`
//! (`--only`: the rows whose "stream / server" contains TEXT; `--keep`: keep the
//! callgrind files, for `callgrind_annotate`).

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
    let (mut only, mut keep) = (None, false);
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
            _ => {
                return Err(format!(
                    "usage: instructions [--n1 N --n2 N] [--only TEXT] [--keep] (got {flag})"
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
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()?;
    if !status.success() {
        return Err("kill failed".into());
    }
    let mut child = child;
    child.0.wait()?;
    let text = std::fs::read_to_string(&out)?;
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
        let _ = std::fs::remove_file(&out);
    }
    Ok(total)
}
