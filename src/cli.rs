//! The `portcullis` command line (the binary's, not the library's): every subcommand
//! and flag, described for `--help`, and the parsers of flag values.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use portcullis::{config::HttpDialect, explain, telemetry::LogFormat};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("PORTCULLIS_COMMIT"), ")"),
    about = "Envoy ext_authz service: JWT access tokens and route scope/role policy"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
    /// Log level or filter (`debug`, `portcullis=debug,info`…); overrides RUST_LOG.
    #[arg(long, global = true, env = "PORTCULLIS_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log one allowed Check in N at info (0: none; allows are logged at debug).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ALLOW_LOG_SAMPLE",
        default_value_t = 0
    )]
    pub allow_log_sample: u64,
    /// Export a span per Check over OTLP/gRPC to this collector (e.g. http://otel:4317).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve Envoy's ext_authz gRPC API with the policy in a config file.
    Serve {
        /// YAML configuration file.
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Directory of scoped policy files; overrides `policy_dir`.
        #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// gRPC listen address; overrides `server.grpc_listen` (default 0.0.0.0:9001).
        #[arg(long, env = "PORTCULLIS_GRPC_LISTEN", value_parser = listen_arg)]
        grpc_listen: Option<SocketAddr>,
        /// HTTP admin address (/readyz, /livez, /metrics); overrides `server.admin_listen`
        /// (default 0.0.0.0:9090).
        #[arg(long, env = "PORTCULLIS_ADMIN_LISTEN", value_parser = listen_arg)]
        admin_listen: Option<SocketAddr>,
        /// Also serve gRPC on this Unix domain socket; overrides `server.grpc_socket`.
        #[arg(long, env = "PORTCULLIS_GRPC_SOCKET")]
        grpc_socket: Option<PathBuf>,
        /// Also serve HTTP checks here (Envoy's HTTP ext_authz mode, nginx auth_request,
        /// Caddy/Traefik forward auth); overrides `server.http_listen`.
        #[arg(long, env = "PORTCULLIS_HTTP_LISTEN", value_parser = listen_arg)]
        http_listen: Option<SocketAddr>,
        /// How the HTTP check listener reads the original request: envoy, nginx or
        /// forwarded; overrides `server.http_dialect`.
        #[arg(long, env = "PORTCULLIS_HTTP_DIALECT", value_parser = dialect_arg)]
        http_dialect: Option<HttpDialect>,
        /// PEM server certificate (chain) for TLS on the gRPC port; overrides `server.tls`.
        #[arg(long, env = "PORTCULLIS_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of `--tls-cert`.
        #[arg(long, env = "PORTCULLIS_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// PEM CA certificates: clients must present a certificate they issued (mTLS).
        #[arg(long, env = "PORTCULLIS_TLS_CLIENT_CA", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// How often the config file is checked for changes (SIGHUP reloads at once).
        #[arg(long, env = "PORTCULLIS_RELOAD_INTERVAL", default_value = "2s", value_parser = duration_arg)]
        reload_interval: Duration,
    },
    /// Run with a built-in identity provider and policy on loopback, and print grpcurl
    /// commands that show allow and deny.
    Demo {
        /// gRPC listen address of the demo service.
        #[arg(long, default_value = "127.0.0.1:9001")]
        grpc_listen: SocketAddr,
        /// HTTP admin address of the demo service (/readyz, /livez, /metrics).
        #[arg(long, default_value = "127.0.0.1:9090")]
        admin_listen: SocketAddr,
        /// Port of the demo identity provider on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        issuer_port: u16,
        /// URL of an Envoy in front of the demo (envoy/front-proxy.yaml): also print curl
        /// commands through it. scripts/try.sh starts one.
        #[arg(long)]
        envoy_url: Option<String>,
    },
    /// Check a config file and its policy directory, listing every problem with its file;
    /// exit status 1 when anything is invalid.
    /// Policy files (or directories of them) given alone are checked on their own, as a
    /// team's CI does before the platform's config is at hand.
    Validate {
        #[arg(
            long,
            short,
            env = "PORTCULLIS_CONFIG",
            required_unless_present = "files"
        )]
        config: Option<PathBuf>,
        /// Directory of scoped policy files; overrides `policy_dir`.
        #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// Policy files or directories to check on their own.
        files: Vec<PathBuf>,
    },
    /// Print the JSON Schema of the config file (for editors and linters).
    ConfigSchema {
        /// The schema of a policy directory's files instead.
        #[arg(long)]
        policy_file: bool,
    },
    /// Print the catalogue of upstream readings every request is judged under, as the
    /// Markdown table of the docs' security model (docs/src/security-model.md).
    Readings,
    /// Explain the decision for one request: matched route, each condition, the answer.
    /// Exit status 0 when allowed, 3 when denied, 1 on error.
    #[command(visible_alias = "explain")]
    Check {
        /// YAML configuration file (its policy directory is read too).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Directory of scoped policy files; overrides `policy_dir`.
        #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// HTTP method of the request.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Request path, query string included if you like.
        #[arg(long)]
        path: String,
        /// Host (authority) of the request, as routes' `hosts` and policy files' scopes
        /// match it; empty for none.
        #[arg(long, default_value = "")]
        host: String,
        /// Bearer token, verified for real (its issuer's JWKS is fetched).
        #[arg(long, conflicts_with = "claims")]
        token: Option<String>,
        /// Take the token's claims without checking its signature or validity.
        #[arg(long, requires = "token")]
        no_verify: bool,
        /// JSON file (`-` for stdin) of claims to use unverified instead of a token.
        #[arg(long)]
        claims: Option<PathBuf>,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
    },
    /// Run policy test suites: each case a request, its caller (claims, or a token minted
    /// for it and verified for real) and the decision expected. Exit status 0 when every
    /// case passes, 1 otherwise. Routes no case reaches are listed as untested.
    Test {
        /// YAML configuration file (its policy directory is read too).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Directory of scoped policy files; overrides `policy_dir`.
        #[arg(long, env = "PORTCULLIS_POLICY_DIR")]
        policy_dir: Option<PathBuf>,
        /// Suite files, or directories of `*.test.yaml` files.
        #[arg(required = true)]
        suites: Vec<PathBuf>,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Also write a JUnit XML report here, for CI test reporters.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
}

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// `--token` (verified, or not with `--no-verify`) or `--claims` (never verified).
pub fn credentials(
    token: Option<String>,
    no_verify: bool,
    claims: Option<PathBuf>,
) -> anyhow::Result<explain::Credentials> {
    let object = |value: serde_json::Value| match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => anyhow::bail!("claims must be a JSON object"),
    };
    Ok(match (token, claims) {
        (Some(token), _) if no_verify => explain::Credentials::UnverifiedToken(token),
        (Some(token), _) => explain::Credentials::Token(token),
        (None, Some(path)) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            };
            explain::Credentials::Unverified(object(
                serde_json::from_str(&text).context("claims are not JSON")?,
            )?)
        }
        (None, None) => explain::Credentials::None,
    })
}

pub fn listen_arg(text: &str) -> Result<SocketAddr, String> {
    portcullis::config::parse_listen(text)
}

pub fn dialect_arg(text: &str) -> Result<HttpDialect, String> {
    HttpDialect::parse(text).ok_or_else(|| "must be envoy, nginx or forwarded".to_owned())
}

pub fn duration_arg(text: &str) -> Result<Duration, String> {
    portcullis::config::parse_duration(text).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0".to_owned())
        } else {
            Ok(d)
        }
    })
}
