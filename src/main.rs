//! The `portcullis` command: parse flags, load configuration, start serving. All request
//! logic lives in the library; this file only wires it up.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis::{
    admin,
    config::{Config, HttpDialect, TlsFiles},
    demo::{self, DemoIssuer, Grant, SigningKey},
    explain, http_check, reload, server,
    state::AppState,
    telemetry::{self, LogFormat},
    tls::{Alpn, TlsState},
};
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Envoy ext_authz service: JWT access tokens and route scope/role policy"
)]
struct Cli {
    /// Log format on stderr (level from RUST_LOG, default info).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Export a span per Check over OTLP/gRPC to this collector (e.g. http://otel:4317).
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve Envoy's ext_authz gRPC API with the policy in a config file.
    Serve {
        /// YAML configuration file.
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// gRPC listen address; overrides `server.grpc_listen` (default 0.0.0.0:9001).
        #[arg(long, env = "PORTCULLIS_GRPC_LISTEN")]
        grpc_listen: Option<SocketAddr>,
        /// HTTP admin address (/readyz, /livez, /metrics); overrides `server.admin_listen`
        /// (default 0.0.0.0:9090).
        #[arg(long, env = "PORTCULLIS_ADMIN_LISTEN")]
        admin_listen: Option<SocketAddr>,
        /// Also serve gRPC on this Unix domain socket; overrides `server.grpc_socket`.
        #[arg(long, env = "PORTCULLIS_GRPC_SOCKET")]
        grpc_socket: Option<PathBuf>,
        /// Also serve HTTP checks here (Envoy's HTTP ext_authz mode, nginx auth_request,
        /// Caddy/Traefik forward auth); overrides `server.http_listen`.
        #[arg(long, env = "PORTCULLIS_HTTP_LISTEN")]
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
    },
    /// Check a config file and list every problem; exit status 1 when invalid.
    Validate {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Explain the decision for one request: matched route, each condition, the answer.
    /// Exit status 0 when allowed, 3 when denied, 1 on error.
    Check {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        #[arg(long, default_value = "GET")]
        method: String,
        /// Request path, query string included if you like.
        #[arg(long)]
        path: String,
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
    },
}

fn main() -> ExitCode {
    portcullis::jwt::crypto::install();
    let cli = Cli::parse();
    if let Command::Validate { config } = &cli.command {
        return match Config::load(config) {
            Ok(_) => {
                println!("{}: valid", config.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let _telemetry = telemetry::init(cli.log_format, cli.otlp_endpoint.as_deref())?;
        match cli.command {
            Command::Serve {
                config,
                grpc_listen,
                admin_listen,
                grpc_socket,
                http_listen,
                http_dialect,
                tls_cert,
                tls_key,
                tls_client_ca,
                reload_interval,
            } => {
                let tls = tls_cert.zip(tls_key).map(|(cert_file, key_file)| TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: tls_client_ca,
                });
                let listen = Listen {
                    grpc: grpc_listen,
                    admin: admin_listen,
                    socket: grpc_socket,
                    http: http_listen,
                    http_dialect,
                    tls,
                };
                serve(config, listen, reload_interval)
                    .await
                    .map(|()| ExitCode::SUCCESS)
            }
            Command::Check {
                config,
                method,
                path,
                host,
                token,
                no_verify,
                claims,
            } => {
                let credentials = credentials(token, no_verify, claims)?;
                let request = explain::Request {
                    method: &method,
                    host: &host,
                    path: &path,
                };
                let allowed = check(&config, &request, credentials).await?;
                if !allowed {
                    return Ok(ExitCode::from(3));
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Demo {
                grpc_listen,
                admin_listen,
                issuer_port,
            } => run_demo(grpc_listen, admin_listen, issuer_port)
                .await
                .map(|()| ExitCode::SUCCESS),
            Command::Validate { .. } => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where `serve` listens, from flags or environment; each overrides the config file.
struct Listen {
    grpc: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    socket: Option<PathBuf>,
    http: Option<SocketAddr>,
    http_dialect: Option<HttpDialect>,
    tls: Option<TlsFiles>,
}

async fn serve(
    config_path: PathBuf,
    listen: Listen,
    reload_interval: Duration,
) -> anyhow::Result<()> {
    let mut config = Config::load(&config_path)?;
    let in_file = (config.grpc_listen, config.admin_listen);
    config.grpc_listen = listen.grpc.unwrap_or(config.grpc_listen);
    config.admin_listen = listen.admin.unwrap_or(config.admin_listen);
    config.grpc_socket = listen.socket.or(config.grpc_socket);
    config.http_listen = listen.http.or(config.http_listen);
    config.http_dialect = listen.http_dialect.unwrap_or(config.http_dialect);
    config.tls = listen.tls.or(config.tls);
    run(config, Some((config_path, reload_interval, in_file))).await
}

/// `--token` (verified, or not with `--no-verify`) or `--claims` (never verified).
fn credentials(
    token: Option<String>,
    no_verify: bool,
    claims: Option<PathBuf>,
) -> anyhow::Result<explain::Credentials> {
    let object = |value: serde_json::Value| match value {
        serde_json::Value::Object(map) => Ok(map),
        _ => anyhow::bail!("claims must be a JSON object"),
    };
    Ok(match (token, claims) {
        (Some(token), _) if no_verify => {
            let claims =
                jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(&token)
                    .context("the token's payload is not a JSON object")?;
            explain::Credentials::Unverified(object(claims)?)
        }
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

async fn check(
    config_path: &std::path::Path,
    request: &explain::Request<'_>,
    credentials: explain::Credentials,
) -> anyhow::Result<bool> {
    let config = Config::load(config_path)?;
    let state = AppState::offline(&config).context("cannot build the HTTP client for JWKS")?;
    let report = explain::explain(&state.engine(), request, credentials).await;
    print!("{}", report.text);
    Ok(report.allowed)
}

fn dialect_arg(text: &str) -> Result<HttpDialect, String> {
    HttpDialect::parse(text).ok_or_else(|| "must be envoy, nginx or forwarded".to_owned())
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    portcullis::config::parse_duration(text).and_then(|d| {
        if d.is_zero() {
            Err("must be more than 0".to_owned())
        } else {
            Ok(d)
        }
    })
}

/// Serves `config` until SIGINT or SIGTERM, reloading it from `watch` (file, poll
/// interval, listen addresses in the file) when given.
async fn run(
    config: Config,
    watch: Option<(PathBuf, Duration, (SocketAddr, SocketAddr))>,
) -> anyhow::Result<()> {
    let state = AppState::new(&config).context("cannot build the HTTP client for JWKS")?;
    let watcher = watch.map(|(path, interval, listening)| {
        tokio::spawn(reload::watch(state.clone(), path, interval, listening))
    });
    let listener = TcpListener::bind(config.grpc_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.grpc_listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.admin_listen))?;
    tracing::info!(
        grpc_listen = %config.grpc_listen, admin_listen = %config.admin_listen,
        tls = config.tls.is_some(), mtls = config.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
        issuers = config.issuers.len(), routes = config.routes.len(),
        "portcullis serving"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let admin = tokio::spawn(admin::serve(
        state.clone(),
        admin_listener,
        wait(stopped.clone()),
    ));
    let http = match config.http_listen {
        None => None,
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            tracing::info!(http_listen = %addr, tls = config.http_tls.is_some(), "Also serving HTTP checks");
            let tls = match &config.http_tls {
                None => None,
                Some(files) => {
                    let tls = TlsState::new(files.clone(), Alpn::Http)
                        .context("cannot set up TLS on the HTTP check listener")?;
                    tokio::spawn(tls.clone().watch(reload::DEFAULT_POLL_INTERVAL));
                    Some(tls)
                }
            };
            Some(tokio::spawn(http_check::serve(
                state.clone(),
                listener,
                config.http_dialect,
                tls,
                wait(stopped.clone()),
            )))
        }
    };
    let socket = match &config.grpc_socket {
        None => None,
        Some(path) => {
            let incoming = unix_incoming(path)?;
            let serving = server::serve_incoming(state.clone(), incoming, wait(stopped.clone()));
            Some(tokio::spawn(serving))
        }
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    match &config.tls {
        None => server::serve(state, listener, wait(stopped)).await?,
        Some(files) => {
            let tls = TlsState::new(files.clone(), Alpn::H2)
                .context("cannot set up TLS on the gRPC listener")?;
            let certificates = tokio::spawn(tls.clone().watch(reload::DEFAULT_POLL_INTERVAL));
            let incoming = tls.incoming(listener);
            server::serve_incoming(state, incoming, wait(stopped)).await?;
            certificates.abort();
        }
    }
    admin.await.context("admin server task")??;
    if let Some(socket) = socket {
        socket.await.context("Unix socket server task")??;
    }
    if let Some(http) = http {
        http.await.context("HTTP check server task")??;
    }
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    tracing::info!("portcullis stopped");
    Ok(())
}

async fn run_demo(
    grpc_listen: SocketAddr,
    admin_listen: SocketAddr,
    issuer_port: u16,
) -> anyhow::Result<()> {
    let key = SigningKey::rsa("demo-rs256-1", jsonwebtoken::Algorithm::RS256)?;
    let issuer = DemoIssuer::start(issuer_port, &[&key])
        .await
        .context("cannot start the demo identity provider")?;
    let mut config = Config::from_yaml(
        &demo::demo_config_yaml(&issuer, grpc_listen),
        "built-in demo",
    )?;
    config.admin_listen = admin_listen;

    let iss = issuer.issuer();
    let reader = key.sign(&demo::access_token_claims(
        iss,
        Grant::Scopes("Orders.Read"),
        3600,
    ))?;
    let profile_only = key.sign(&demo::access_token_claims(
        iss,
        Grant::Scopes("Profile.Read"),
        3600,
    ))?;
    let daemon = key.sign(&demo::access_token_claims(
        iss,
        Grant::Roles(&["Orders.Read.All"]),
        3600,
    ))?;
    let tampered = demo::tamper(&reader, iss);

    println!("portcullis demo");
    println!("  identity provider: {iss} (JWKS {})", issuer.jwks_uri());
    println!("  ext_authz gRPC:    {grpc_listen}");
    println!("  admin HTTP:        http://{admin_listen}/readyz  /metrics");
    println!("  policy: GET /api/orders* needs scope Orders.Read or app role Orders.Read.All;");
    println!(
        "          writes need Orders.ReadWrite; /healthz is anonymous; all else is denied.\n"
    );
    let call = |label: &str, method: &str, path: &str, token: Option<&str>| {
        let headers = token
            .map(|t| format!(r#","headers":{{"authorization":"Bearer {t}"}}"#))
            .unwrap_or_default();
        println!("# {label}");
        println!(
            "grpcurl -plaintext -d '{{\"attributes\":{{\"request\":{{\"http\":{{\"method\":\"{method}\",\"host\":\"api.local\",\"path\":\"{path}\"{headers}}}}}}}}}' {grpc_listen} envoy.service.auth.v3.Authorization/Check\n"
        );
    };
    call(
        "ALLOW: user token with scope Orders.Read",
        "GET",
        "/api/orders/42",
        Some(&reader),
    );
    call(
        "ALLOW: daemon token with app role Orders.Read.All",
        "GET",
        "/api/orders",
        Some(&daemon),
    );
    call(
        "DENY 403 insufficient_scope: token lacks Orders.Read",
        "GET",
        "/api/orders/42",
        Some(&profile_only),
    );
    call(
        "DENY 403 insufficient_scope: reading is not writing",
        "DELETE",
        "/api/orders/42",
        Some(&reader),
    );
    call(
        "DENY 401 invalid_token: payload tampered after signing",
        "GET",
        "/api/orders/42",
        Some(&tampered),
    );
    call("DENY 401: no token", "GET", "/api/orders/42", None);
    println!("# List the services by reflection:\ngrpcurl -plaintext {grpc_listen} list\n");
    println!("Tokens are valid for one hour. Press Ctrl-C to stop.");

    run(config, None).await
}

/// Listens on the Unix socket `path`, replacing a stale socket file left by a previous run.
fn unix_incoming(
    path: &std::path::Path,
) -> anyhow::Result<tokio_stream::wrappers::UnixListenerStream> {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    tracing::info!(socket = %path.display(), "Also serving gRPC on a Unix socket");
    Ok(tokio_stream::wrappers::UnixListenerStream::new(listener))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(term) => term,
            Err(error) => {
                tracing::error!(error = %error, "Cannot watch SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("Shutdown signal received: draining in-flight Checks");
}
