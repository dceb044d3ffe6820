//! Hostile connections against the real binary on loopback: idle and slow-header floods
//! while a legitimate client keeps getting answers, an exhausted descriptor table that
//! must not make the accept loop spin, SIGTERM with a stuck client (a bounded drain that
//! exits 0), and an 8 MiB CheckRequest (a deny, never a gRPC error).

mod common;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{ChildGuard, free_port, wait_until_ok};
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{
        CheckResponse, authorization_client::AuthorizationClient, check_response::HttpResponse,
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tonic::transport::Channel;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

struct Running {
    child: ChildGuard,
    grpc: u16,
    admin: u16,
    issuer: DemoIssuer,
    key: SigningKey,
}

/// The binary with the demo policy plus `server_extra` under `server:`, started through
/// `shell` (e.g. `ulimit -n 64`) when given; once ready.
async fn start(name: &str, server_extra: &str, shell: Option<&str>) -> Running {
    let key = SigningKey::rsa("key-1", Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let (grpc, admin) = (free_port(), free_port());
    let dir = common::envoy::test_dir(name);
    let config = dir.join("portcullis.yaml");
    let yaml = demo::demo_config_yaml(&issuer, format!("127.0.0.1:{grpc}").parse().unwrap())
        .replace("server:\n", &format!("server:\n{server_extra}"));
    std::fs::write(&config, yaml).unwrap();
    let admin_listen = format!("127.0.0.1:{admin}");
    let mut command = match shell {
        None => Command::new(BIN),
        Some(prefix) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", &format!("{prefix} && exec \"$0\" \"$@\""), BIN]);
            sh
        }
    };
    let child = command
        .args(["serve", "--admin-listen", &admin_listen, "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        child: ChildGuard(child),
        grpc,
        admin,
        issuer,
        key,
    };
    wait_until_ok(&format!("http://127.0.0.1:{admin}/readyz")).await;
    running
}

impl Running {
    async fn client(&self) -> AuthorizationClient<Channel> {
        AuthorizationClient::connect(format!("http://127.0.0.1:{}", self.grpc))
            .await
            .unwrap()
            .max_encoding_message_size(64 * 1024 * 1024)
    }

    fn bearer(&self) -> String {
        let claims =
            demo::access_token_claims(self.issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
        format!("Bearer {}", self.key.sign(&claims).unwrap())
    }

    /// CPU time (user + system) the process has used so far.
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.0.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }
}

async fn allowed(client: &mut AuthorizationClient<Channel>, bearer: &str) -> bool {
    let request = common::check_request("GET", "/api/orders", &[("authorization", bearer)]);
    let response: CheckResponse = client
        .check(request)
        .await
        .expect("a CheckResponse")
        .into_inner();
    matches!(response.http_response, Some(HttpResponse::OkResponse(_)))
}

/// Whether the server has closed `stream` (EOF or reset), waiting up to `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A GOAWAY or SETTINGS frame: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_floods_never_starve_a_connected_client() {
    let server = start(
        "flood",
        "  connections: { max_per_listener: 150, header_timeout: 1s, idle_timeout: 4s }\n",
        None,
    )
    .await;
    let mut client = server.client().await;
    let bearer = server.bearer();
    assert!(allowed(&mut client, &bearer).await);

    // 300 connections that say nothing (past the cap of 150), 40 that trickle the preface.
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", server.grpc)).await {
            idle.push(stream);
        }
    }
    let mut slow = Vec::new();
    for _ in 0..40 {
        slow.push(
            TcpStream::connect(("127.0.0.1", server.grpc))
                .await
                .unwrap(),
        );
    }
    let trickle = async {
        for byte in b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" {
            for stream in &mut slow {
                let _ = stream.write_all(&[*byte]).await;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let checks = async {
        let mut answered = 0;
        for _ in 0..40 {
            assert!(
                allowed(&mut client, &bearer).await,
                "the connected client is served"
            );
            answered += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        answered
    };
    let ((), answered) = tokio::join!(trickle, checks);
    assert_eq!(answered, 40);
    for stream in idle.iter_mut().take(20).chain(slow.iter_mut().take(20)) {
        assert!(
            closed_by_server(stream, Duration::from_secs(5)).await,
            "an idle or slow connection is closed after the header timeout"
        );
    }
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", server.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"portcullis_connections_refused_total{listener="grpc",cause="over_capacity"}"#
        ),
        "{metrics}"
    );
    // A new client gets in once the flood is gone, and the old one idles out later only.
    drop((idle, slow));
    let mut fresh = server.client().await;
    assert!(allowed(&mut fresh, &bearer).await);
    assert!(allowed(&mut client, &bearer).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_descriptor_table_backs_off_instead_of_spinning() {
    let server = start("emfile", "", Some("ulimit -n 64")).await;
    let mut client = server.client().await;
    let bearer = server.bearer();
    assert!(allowed(&mut client, &bearer).await);
    // More connections than descriptors: accept fails with EMFILE.
    let mut flood = Vec::new();
    for _ in 0..120 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", server.grpc)).await {
            flood.push(stream);
        }
    }
    let before = server.cpu();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = server.cpu() - before;
    let wall = started.elapsed();
    assert!(
        spent < wall / 4,
        "accept loop busy: {spent:?} of CPU in {wall:?} while out of descriptors"
    );
    assert!(
        allowed(&mut client, &bearer).await,
        "the connected client is still served"
    );
    drop(flood);
    // Descriptors free: new connections are accepted again (after at most a second's back-off).
    common::wait_for_async(|| async {
        match AuthorizationClient::connect(format!("http://127.0.0.1:{}", server.grpc)).await {
            Ok(mut fresh) => allowed(&mut fresh, &bearer).await,
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stuck_client_drains_within_the_grace_and_exits_0() {
    let mut server = start("drain", "  shutdown_grace: 2s\n", None).await;
    // A client that opened an HTTP/2 connection and then sends nothing, ever.
    let mut stuck = TcpStream::connect(("127.0.0.1", server.grpc))
        .await
        .unwrap();
    stuck
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    stuck.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap(); // empty SETTINGS
    let started = Instant::now();
    common::sigterm(&server.child.0);
    // Draining: readiness says no while the admin port still answers.
    common::wait_for_async(|| async {
        match reqwest::get(format!("http://127.0.0.1:{}/readyz", server.admin)).await {
            Ok(response) => {
                response.status() == 503
                    && response
                        .text()
                        .await
                        .is_ok_and(|t| t.contains("\"draining\":true"))
            }
            Err(_) => false,
        }
    })
    .await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.child.0.wait().unwrap();
        (status, started.elapsed())
    })
    .await
    .unwrap();
    assert!(status.0.success(), "exit status {:?}", status.0);
    assert!(
        status.1 < Duration::from_secs(8),
        "stopped {:?} after SIGTERM with a 2 s grace",
        status.1
    );
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_8_mib_check_request_gets_a_deny_not_a_transport_error() {
    let server = start("large", "", None).await;
    let mut client = server.client().await;
    let huge_token = format!("Bearer {}", "a".repeat(8 * 1024 * 1024));
    let request = common::check_request("GET", "/api/orders", &[("authorization", &huge_token)]);
    let response = client
        .check(request)
        .await
        .expect("a CheckResponse")
        .into_inner();
    let denied = common::denied(&response);
    assert_eq!(
        (denied.status, denied.reason.as_str()),
        (401, "token_too_large")
    );
    let junk = "x".repeat(8 * 1024 * 1024);
    let request = common::check_request("GET", "/api/orders", &[("x-junk", &junk)]);
    let response = client
        .check(request)
        .await
        .expect("a CheckResponse")
        .into_inner();
    assert_eq!(common::denied(&response).reason, "missing_token");
}

/// The resident set size of the process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kib * 1024
}

/// An HTTP/2 connection to the gRPC port, driven in the background (its PINGs answered).
async fn h2_connection(
    port: u16,
) -> (
    h2::client::SendRequest<bytes::Bytes>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    (send, driver)
}

fn check_head() -> http::Request<()> {
    http::Request::post("http://127.0.0.1/envoy.service.auth.v3.Authorization/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// The attack of the issue: streams that each announce a 15 MiB CheckRequest and send
/// 12 MiB of it, never the rest, on one connection and then on several. Each connection
/// gets one message's worth of budget, the process 64 MiB: the other streams fail with
/// RESOURCE_EXHAUSTED before they are buffered, and memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_announcing_huge_check_requests_cannot_exhaust_memory() {
    let server = start("memory", "", None).await;
    let pid = server.child.0.id();
    let before = rss(pid);
    let announce = |stream: &mut h2::SendStream<bytes::Bytes>| {
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&(15u32 * 1024 * 1024).to_be_bytes());
        stream.send_data(prefix.into(), false).unwrap();
    };
    let mut streams = Vec::new();
    let mut drivers = Vec::new();
    for _ in 0..3 {
        let (mut send, driver) = h2_connection(server.grpc).await;
        drivers.push(driver);
        for _ in 0..6 {
            send = send.ready().await.unwrap();
            let (response, mut stream) = send.send_request(check_head(), false).unwrap();
            announce(&mut stream);
            streams.push((response, stream));
        }
    }
    // Push 12 MiB into each stream as far as flow control lets it, for a while.
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let pushing = async {
        for (_, stream) in &mut streams {
            stream.reserve_capacity(12 * 1024 * 1024);
        }
        for _ in 0..40 {
            for (_, stream) in &mut streams {
                let room = stream.capacity().min(chunk.len());
                if room > 0 {
                    let _ = stream.send_data(chunk.slice(..room), false);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    pushing.await;
    let grown = rss(pid).saturating_sub(before);
    eprintln!(
        "RSS {} MiB before, grew by {} MiB",
        before >> 20,
        grown >> 20
    );
    // Three connections each hold at most one 15 MiB message (in the decoder's buffer).
    assert!(
        grown < 64 * 1024 * 1024,
        "RSS grew by {} MiB",
        grown / (1024 * 1024)
    );
    // The streams past each connection's budget were refused.
    let mut exhausted = 0;
    for (response, _) in streams {
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(2), response).await {
            let grpc_status = response
                .headers()
                .get("grpc-status")
                .map(|v| v.as_bytes().to_vec());
            if grpc_status.as_deref() == Some(b"8") {
                exhausted += 1;
            }
        }
    }
    assert!(
        exhausted >= 15,
        "{exhausted} of 18 streams refused RESOURCE_EXHAUSTED"
    );
    // And a real Check still gets its answer.
    let mut client = server.client().await;
    assert!(allowed(&mut client, &server.bearer()).await);
    drivers.iter().for_each(tokio::task::JoinHandle::abort);
}

/// An HTTP/2 client that completes the preface and answers PINGs but never sends a
/// request is closed after the header timeout; one that sent a request and then only
/// answers PINGs is closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answering_pings_does_not_keep_a_connection_open() {
    let server = start(
        "pings",
        "  connections: { header_timeout: 1s, idle_timeout: 2s, http2_keepalive_interval: 300ms }\n",
        None,
    )
    .await;
    let (_send, silent) = h2_connection(server.grpc).await;
    let closed = tokio::time::timeout(Duration::from_secs(10), silent).await;
    assert!(
        closed.is_ok(),
        "a connection without a request is still open"
    );

    let tcp = TcpStream::connect(("127.0.0.1", server.grpc))
        .await
        .unwrap();
    let (send, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut send = send.ready().await.unwrap();
    let (response, _stream) = send.send_request(check_head(), true).unwrap();
    let _ = response.await;
    let closed = tokio::time::timeout(Duration::from_secs(10), driver).await;
    assert!(
        closed.is_ok(),
        "an idle connection answering PINGs is still open"
    );
}

/// Under a low open-files limit, idle connections flooding the gRPC port leave the admin
/// port its reserve (`/livez` answers) and cannot keep a new client out: connections that
/// never asked anything give way to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_new_clients_get_in_under_a_descriptor_flood() {
    let server = start(
        "reserve",
        "  connections: { header_timeout: 30s }\n",
        Some("ulimit -n 64"),
    )
    .await;
    let bearer = server.bearer();
    let mut flood = Vec::new();
    for _ in 0..200 {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", server.grpc)).await {
            flood.push(stream);
        }
    }
    for _ in 0..5 {
        let livez = reqwest::get(format!("http://127.0.0.1:{}/livez", server.admin))
            .await
            .map(|r| r.status().as_u16());
        assert_eq!(livez.ok(), Some(200), "/livez answers under the flood");
    }
    let mut fresh = server.client().await;
    assert!(
        allowed(&mut fresh, &bearer).await,
        "a new client is served under the flood"
    );
    drop(flood);
}
