//! Real processes for the end-to-end tests: Envoy on the shipped configurations and the
//! portcullis binary, each on free loopback ports and stopped when dropped.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use reqwest::StatusCode;

use super::{ChildGuard, free_port};

/// A running Envoy, stopped when dropped.
pub struct Envoy {
    _child: ChildGuard,
    /// `http://127.0.0.1:<listener port>`.
    pub base: String,
    pub port: u16,
    /// Envoy's stdout: the access log.
    pub log: std::path::PathBuf,
}

/// `envoy/<file>` — the file users copy — with free ports and the given paths (test
/// certificates, socket, extra ports) substituted.
pub fn envoy_config(file: &str, ports: [u16; 4], paths: &[(&str, &str)]) -> String {
    substituted(&shipped(file), ports, paths)
}

/// The text of `envoy/<file>`.
pub fn shipped(file: &str) -> String {
    let path = format!("{}/envoy/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

fn substituted(yaml: &str, ports: [u16; 4], paths: &[(&str, &str)]) -> String {
    portcullis::demo::envoy_config(yaml, ports, paths)
        .unwrap_or_else(|| panic!("each port must appear at most once"))
}

/// Starts Envoy on `envoy/<file>` with free ports and `paths` substituted.
pub async fn start_envoy(
    envoy: &std::path::Path,
    file: &str,
    authz_port: u16,
    upstream_port: u16,
    paths: &[(&str, &str)],
) -> Envoy {
    start_envoy_yaml(envoy, &shipped(file), authz_port, upstream_port, paths).await
}

/// Starts Envoy on the configuration `yaml` (written with the ports of the shipped files)
/// with free ports and `paths` substituted.
pub async fn start_envoy_yaml(
    envoy: &std::path::Path,
    yaml: &str,
    authz_port: u16,
    upstream_port: u16,
    paths: &[(&str, &str)],
) -> Envoy {
    let listen = free_port();
    let admin = free_port();
    let yaml = substituted(yaml, [listen, authz_port, upstream_port, admin], paths);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("envoy-{listen}"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("front-proxy.yaml");
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join("stdout.log");
    let child = Command::new(envoy)
        .args([
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "warn",
        ])
        // Access logs are flushed every 10 s by default; the test reads them sooner.
        .args(["--file-flush-interval-msec", "100", "-c"])
        .arg(&config)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let envoy = Envoy {
        _child: ChildGuard(child),
        base: format!("http://127.0.0.1:{listen}"),
        port: listen,
        log,
    };
    // Ready: the admin endpoint says so and the listener (plain or TLS) accepts.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .get(format!("http://127.0.0.1:{admin}/ready"))
            .send()
            .await;
        if matches!(up, Ok(r) if r.status() == StatusCode::OK)
            && std::net::TcpStream::connect(("127.0.0.1", listen)).is_ok()
        {
            break envoy;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Envoy did not start within 30s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The real portcullis binary serving `config` (YAML) with `args` added, once ready.
pub struct Portcullis {
    _child: ChildGuard,
    pub grpc: String,
    /// The admin port's address.
    pub admin: String,
}

pub async fn start_portcullis(
    dir: &std::path::Path,
    config: impl FnOnce(std::net::SocketAddr) -> String,
    args: &[&str],
) -> Portcullis {
    let grpc: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin = format!("127.0.0.1:{}", free_port());
    let path = dir.join("portcullis.yaml");
    std::fs::write(&path, config(grpc)).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--admin-listen", &admin])
        .args(args)
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Portcullis {
        _child: ChildGuard(child),
        grpc: grpc.to_string(),
        admin: admin.clone(),
    };
    super::wait_until_ok(&format!("http://{admin}/readyz")).await;
    server
}

/// A fresh directory under the test target directory.
pub fn test_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `front-proxy.yaml` with its protections switched off, as an Envoy configured otherwise
/// (Istio's defaults: `%2F` kept, underscores allowed, trailing dots kept, every header
/// sent to the authorizer and none removed before the upstream): portcullis itself must
/// still refuse.
pub fn lax(yaml: &str) -> String {
    let mut out = yaml.to_owned();
    for (from, to) in [
        (
            "path_with_escaped_slashes_action: REJECT_REQUEST",
            "path_with_escaped_slashes_action: KEEP_UNCHANGED",
        ),
        (
            "headers_with_underscores_action: REJECT_REQUEST",
            "headers_with_underscores_action: ALLOW",
        ),
        (
            "strip_trailing_host_dot: true",
            "strip_trailing_host_dot: false",
        ),
        ("merge_slashes: true", "merge_slashes: false"),
    ] {
        assert!(out.contains(from), "front-proxy.yaml changed: {from}");
        out = out.replace(from, to);
    }
    let cut = |text: &str, start: &str, end: &str| -> String {
        let at = text.find(start).unwrap_or_else(|| panic!("no {start}"));
        let stop = at + text[at..].find(end).unwrap_or_else(|| panic!("no {end}"));
        format!("{}{}", &text[..at], &text[stop..])
    };
    out = cut(
        &out,
        "                  request_headers_to_remove:",
        "                  virtual_hosts:",
    );
    out = cut(
        &out,
        "                      allowed_headers:",
        "                      with_request_body:",
    );
    out
}
