//! Resource bounds: what each listener allows a client connection, and the limits on
//! tokens, headers, concurrent Checks, request sizes, the token cache and fetched
//! documents — their defaults, and their validation from `limits` and
//! `server.connections`.

use std::time::Duration;

use super::{
    problems::Problems,
    raw::{RawConnections, RawLimits},
};

/// What every listener (gRPC over TCP, TLS or a Unix socket, HTTP check, admin) allows a
/// client connection, so that idle, slow or abandoned connections cannot hold the
/// service: Envoy's own connections are long-lived and busy, and unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Connections open at once per listener; more are accepted and closed at once.
    pub max_per_listener: usize,
    /// Time for a new connection's first bytes (the HTTP/2 preface, an HTTP/1 request
    /// head) to arrive.
    pub header_timeout: Duration,
    /// A connection the client sends nothing on for this long is closed.
    pub idle_timeout: Duration,
    /// Time for a TLS handshake to complete.
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 PING interval on quiet connections (detects dead peers); `None`: no pings.
    pub http2_keepalive_interval: Option<Duration>,
    /// How long a PING may go unanswered before the connection is closed.
    pub http2_keepalive_timeout: Duration,
    /// HTTP/2 streams (requests) open at once on one connection; Envoy opens another
    /// connection when it needs more.
    pub max_streams_per_connection: u32,
}

/// Envoy opens a few long-lived HTTP/2 connections per worker: thousands cover a large
/// fleet, and the cap bounds the file descriptors a flood can take. At start it is lowered
/// to what the process's open-files limit leaves (see `server`).
pub const DEFAULT_MAX_CONNECTIONS_PER_LISTENER: usize = 4096;
/// gRPC's usual per-connection stream limit: Envoy's pool opens another connection past it,
/// and one client connection cannot have a thousand requests decoded at once.
pub const DEFAULT_MAX_STREAMS_PER_CONNECTION: u32 = 100;
/// Generous for any real client on a network, short for a connection that says nothing.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Envoy's pooled connections carry Checks, or answer keepalive PINGs, well within it.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// gRPC's own guidance: PING a quiet connection every minute, give up after 20 s.
pub const DEFAULT_HTTP2_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
pub const DEFAULT_HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Well under Kubernetes' 30 s termination grace (which also covers the preStop sleep):
/// Checks take milliseconds, so what is still open after this is stuck.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_per_listener: DEFAULT_MAX_CONNECTIONS_PER_LISTENER,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            http2_keepalive_interval: Some(DEFAULT_HTTP2_KEEPALIVE_INTERVAL),
            http2_keepalive_timeout: DEFAULT_HTTP2_KEEPALIVE_TIMEOUT,
            max_streams_per_connection: DEFAULT_MAX_STREAMS_PER_CONNECTION,
        }
    }
}

/// Resource limits on what a request or an identity provider can make portcullis do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longer bearer tokens are refused unparsed (`token_too_large`).
    pub max_token_bytes: usize,
    /// A CheckRequest with more raw headers than this is refused (`invalid_request`).
    pub max_headers: usize,
    /// Checks decided at once; more wait up to `overload_wait`, then get 503 `overloaded`.
    pub max_concurrent_checks: usize,
    pub overload_wait: Duration,
    /// Verified tokens remembered (0 disables the cache).
    pub token_cache_entries: usize,
    /// Largest CheckRequest decoded (gRPC); at least what Envoy may send, so that every
    /// request Envoy can send gets a CheckResponse.
    pub max_check_request_bytes: usize,
    /// CheckRequest bytes held at once, over every connection (the process's memory
    /// budget for request bodies).
    pub max_request_bytes_in_flight: usize,
    /// CheckRequest bytes one connection may have held at once.
    pub max_request_bytes_per_connection: usize,
}

/// Access tokens are a few KiB; 16 KiB leaves room for large group claims while keeping
/// the work an attacker can force per request small.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Envoy itself allows 100 request headers by default.
pub const DEFAULT_MAX_HEADERS: usize = 256;
/// Enough for a busy replica; past it, waiting requests are answered quickly instead of
/// queueing without bound.
pub const DEFAULT_MAX_CONCURRENT_CHECKS: usize = 1024;
pub const DEFAULT_OVERLOAD_WAIT: Duration = Duration::from_millis(100);
/// Verified tokens remembered: an entry is about 1.8 KiB with a 563-byte token (the token,
/// its claims and map overhead, measured), so at most about 18 MiB however many distinct
/// tokens arrive.
pub const DEFAULT_TOKEN_CACHE_ENTRIES: usize = 10_000;
/// Envoy accepts request headers up to 8 MiB (`max_request_headers_kb`) and sends them
/// all in a CheckRequest; 16 MiB also leaves room for a buffered body.
pub const DEFAULT_MAX_CHECK_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// Real CheckRequests are kilobytes (with a 64 KiB body, under 100 KiB): 64 MiB is
/// hundreds of them at once, and bounds what clients can make the process hold.
pub const DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT: usize = 64 * 1024 * 1024;
/// One largest CheckRequest and room for ordinary ones beside it.
pub const DEFAULT_MAX_REQUEST_BYTES_PER_CONNECTION: usize = 20 * 1024 * 1024;
/// Largest JWKS or discovery document accepted; real ones are a few KiB.
pub const DEFAULT_MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Most keys one JWKS may contribute; real ones hold a handful.
pub const DEFAULT_MAX_KEYS: usize = 100;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            max_headers: DEFAULT_MAX_HEADERS,
            max_concurrent_checks: DEFAULT_MAX_CONCURRENT_CHECKS,
            overload_wait: DEFAULT_OVERLOAD_WAIT,
            token_cache_entries: DEFAULT_TOKEN_CACHE_ENTRIES,
            max_check_request_bytes: DEFAULT_MAX_CHECK_REQUEST_BYTES,
            max_request_bytes_in_flight: DEFAULT_MAX_REQUEST_BYTES_IN_FLIGHT,
            max_request_bytes_per_connection: DEFAULT_MAX_REQUEST_BYTES_PER_CONNECTION,
        }
    }
}

pub(super) fn limits(raw: &RawLimits, problems: &mut Problems) -> Limits {
    let defaults = Limits::default();
    let limits = Limits {
        max_token_bytes: raw.max_token_bytes.unwrap_or(defaults.max_token_bytes),
        max_headers: raw.max_headers.unwrap_or(defaults.max_headers),
        max_concurrent_checks: raw
            .max_concurrent_checks
            .unwrap_or(defaults.max_concurrent_checks),
        overload_wait: problems.duration(
            "limits.overload_wait",
            raw.overload_wait.as_deref(),
            defaults.overload_wait,
        ),
        token_cache_entries: raw
            .token_cache_entries
            .unwrap_or(defaults.token_cache_entries),
        max_check_request_bytes: raw
            .max_check_request_bytes
            .unwrap_or(defaults.max_check_request_bytes),
        max_request_bytes_in_flight: raw
            .max_request_bytes_in_flight
            .unwrap_or(defaults.max_request_bytes_in_flight),
        max_request_bytes_per_connection: raw
            .max_request_bytes_per_connection
            .unwrap_or(defaults.max_request_bytes_per_connection),
    };
    for (field, value, minimum) in [
        ("limits.max_token_bytes", limits.max_token_bytes, 512),
        ("limits.max_headers", limits.max_headers, 8),
        (
            "limits.max_concurrent_checks",
            limits.max_concurrent_checks,
            1,
        ),
        (
            "limits.max_check_request_bytes",
            limits.max_check_request_bytes,
            64 * 1024,
        ),
    ] {
        if value < minimum {
            problems.add(field, format!("must be at least {minimum}"));
        }
    }
    // A largest CheckRequest (and its five-byte gRPC prefix) must fit each budget.
    if limits.max_request_bytes_per_connection < limits.max_check_request_bytes + 5 {
        problems.add(
            "limits.max_request_bytes_per_connection",
            "must be more than max_check_request_bytes, or the largest CheckRequest is never decoded",
        );
    }
    if limits.max_request_bytes_in_flight < limits.max_request_bytes_per_connection {
        problems.add(
            "limits.max_request_bytes_in_flight",
            "must be at least max_request_bytes_per_connection",
        );
    }
    limits
}

pub(super) fn connection_settings(
    raw: &RawConnections,
    problems: &mut Problems,
) -> ConnectionSettings {
    let defaults = ConnectionSettings::default();
    let mut duration = |name: &str, value: &Option<String>, default: Duration| {
        let field = format!("server.connections.{name}");
        let d = problems.duration(&field, value.as_deref(), default);
        if d.is_zero() && name != "http2_keepalive_interval" {
            problems.add(field, "must be more than 0");
        }
        d
    };
    let settings = ConnectionSettings {
        max_per_listener: raw.max_per_listener.unwrap_or(defaults.max_per_listener),
        header_timeout: duration(
            "header_timeout",
            &raw.header_timeout,
            defaults.header_timeout,
        ),
        idle_timeout: duration("idle_timeout", &raw.idle_timeout, defaults.idle_timeout),
        tls_handshake_timeout: duration(
            "tls_handshake_timeout",
            &raw.tls_handshake_timeout,
            defaults.tls_handshake_timeout,
        ),
        // 0s turns the PINGs off.
        http2_keepalive_interval: Some(duration(
            "http2_keepalive_interval",
            &raw.http2_keepalive_interval,
            DEFAULT_HTTP2_KEEPALIVE_INTERVAL,
        ))
        .filter(|d| !d.is_zero()),
        http2_keepalive_timeout: duration(
            "http2_keepalive_timeout",
            &raw.http2_keepalive_timeout,
            defaults.http2_keepalive_timeout,
        ),
        max_streams_per_connection: raw
            .max_streams_per_connection
            .unwrap_or(defaults.max_streams_per_connection),
    };
    if settings.max_per_listener < 2 {
        problems.add("server.connections.max_per_listener", "must be at least 2");
    }
    if settings.max_streams_per_connection == 0 {
        problems.add(
            "server.connections.max_streams_per_connection",
            "must be at least 1",
        );
    }
    settings
}
