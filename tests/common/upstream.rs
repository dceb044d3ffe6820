//! Test upstreams that behave like real applications — the framework-like WSGI app of
//! `tests/upstreams/framework.py`, and small applications on the real frameworks (Django,
//! Flask, Express, Rails, Symfony, Laravel) in `tests/upstreams/` — each on a free loopback
//! port, stopped when dropped; and raw HTTP/1.1 requests that nothing normalises on the way.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ChildGuard, external_tool, free_port};

/// An application the tests send requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// `framework.py`: every lenient reading at once, on wsgiref.
    Lenient,
    Django,
    Flask,
    Express,
    Rails,
    Symfony,
    Laravel,
}

impl App {
    pub const FRAMEWORKS: [App; 6] = [
        App::Django,
        App::Flask,
        App::Express,
        App::Rails,
        App::Symfony,
        App::Laravel,
    ];

    fn script(self) -> PathBuf {
        let file = match self {
            App::Lenient => "framework.py",
            App::Django => "django_app.py",
            App::Flask => "flask_app.py",
            App::Express => "express/app.js",
            App::Rails => "rails/app.rb",
            App::Symfony => "php/symfony.php",
            App::Laravel => "php/laravel.php",
        };
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/upstreams")
            .join(file)
    }

    /// The interpreter, or `None` (test skipped) when it is not installed.
    fn interpreter(self) -> Option<PathBuf> {
        match self {
            App::Lenient | App::Django | App::Flask => Some("python3".into()),
            App::Express => external_tool("node"),
            App::Rails => external_tool("ruby"),
            App::Symfony | App::Laravel => external_tool("php"),
        }
    }
}

/// A running application: what it served is appended to `log`, one JSON line each.
pub struct Framework {
    pub app: App,
    pub port: u16,
    pub log: PathBuf,
    _child: ChildGuard,
}

impl Framework {
    /// The lenient WSGI app, with its log in `dir`.
    pub async fn start(dir: &Path) -> Framework {
        Framework::start_app(App::Lenient, dir)
            .await
            .expect("python3 runs the framework upstream")
    }

    /// `app` with its log in `dir`, once it accepts connections; `None` when its
    /// interpreter is missing (and `PORTCULLIS_REQUIRE_E2E` is unset).
    pub async fn start_app(app: App, dir: &Path) -> Option<Framework> {
        let interpreter = app.interpreter()?;
        let port = free_port();
        let log = dir.join(format!("{app:?}-{port}.jsonl").to_lowercase());
        let mut command = Command::new(interpreter);
        match app {
            App::Symfony | App::Laravel => {
                command
                    .args(["-S", &format!("127.0.0.1:{port}")])
                    .arg(app.script())
                    .env("PORTCULLIS_TEST_LOG", &log)
                    .stderr(Stdio::null());
            }
            _ => {
                command.arg(app.script()).arg(port.to_string()).arg(&log);
            }
        }
        let child = command
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{app:?} starts: {e}"));
        let framework = Framework {
            app,
            port,
            log,
            _child: ChildGuard(child),
        };
        // Rails boots in seconds: wait longer than for the other servers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{app:?} did not listen within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(framework)
    }

    /// What it served, by the requests' `x-test-id`.
    pub fn served(&self) -> HashMap<String, Vec<Value>> {
        let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
        for line in std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
        {
            let record: Value = serde_json::from_str(line).unwrap();
            by_id
                .entry(record["test_id"].as_str().unwrap_or("").to_owned())
                .or_default()
                .push(record);
        }
        by_id
    }

    /// The requests it served, in order.
    pub fn hits(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .map(|log| log.lines().count())
            .unwrap_or(0)
    }
}

/// An HTTP answer as it came back.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Sends one raw HTTP/1.1 request (so that nothing normalises it on the way out); a `host`
/// header is added unless given, and `content-length` when there is a body.
pub async fn send(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut request = format!("{method} {target} HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str("host: api.example.com\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        request.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    request.push_str("connection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).await.unwrap();
    // Read the head, then Content-Length bytes: Envoy delays closing after a local reply.
    let read = async {
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())
                            .flatten()
                    })
                    .unwrap_or(0);
                if method == "HEAD" || body.len() >= length {
                    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
                    let body = if method == "HEAD" { "" } else { body };
                    return Reply {
                        status: status.unwrap_or(0),
                        body: body.to_owned(),
                    };
                }
            }
            let n = stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return Reply {
                    status: 0,
                    body: text,
                };
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("Envoy answers within 10 s")
}
