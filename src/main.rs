//! The `portcullis` command: parse flags and dispatch to the library — `serve`
//! ([`Server`]), `demo`, `validate`, `check` ([`explain`]). Nothing else lives here.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Parser, Subcommand};
use portcullis::{
    config::{Config, HttpDialect, TlsFiles},
    demo, explain,
    server::{Server, Watch, shutdown_signal},
    state::AppState,
    telemetry::{self, LogFormat},
};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Envoy ext_authz service: JWT access tokens and route scope/role policy"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Log level or filter (`debug`, `portcullis=debug,info`…); overrides RUST_LOG.
    #[arg(long, global = true, env = "PORTCULLIS_LOG_LEVEL")]
    log_level: Option<String>,
    /// Log one allowed Check in N at info (0: none; allows are logged at debug).
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_ALLOW_LOG_SAMPLE",
        default_value_t = 0
    )]
    allow_log_sample: u64,
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
    /// Markdown table of the README's "Security model".
    Readings,
    /// Explain the decision for one request: matched route, each condition, the answer.
    /// Exit status 0 when allowed, 3 when denied, 1 on error.
    #[command(visible_alias = "explain")]
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
    let cli = Cli::parse();
    if let Command::ConfigSchema { policy_file } = &cli.command {
        print!("{}", Config::json_schema(*policy_file));
        return ExitCode::SUCCESS;
    }
    if let Command::Readings = &cli.command {
        print!("{}", portcullis::upstream::markdown_table());
        return ExitCode::SUCCESS;
    }
    if let Command::Validate {
        config,
        policy_dir,
        files,
    } = &cli.command
    {
        let mut reports = Vec::new();
        if let Some(config) = config {
            match Config::load_with_sets(config, policy_dir.as_deref(), &[]) {
                Ok(loaded) => {
                    println!("{}: valid", config.display());
                    reports = loaded.policy_files;
                }
                Err(error) => {
                    eprintln!("{error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        reports.extend(portcullis::config::sets::check_paths(files));
        let mut valid = true;
        for report in reports {
            match report.problem {
                None => println!("{}: valid", report.path.display()),
                Some(problem) => {
                    valid = false;
                    eprintln!("{problem}");
                }
            }
        }
        return if valid {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
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
        let _telemetry = telemetry::init(
            cli.log_format,
            cli.log_level.as_deref(),
            cli.otlp_endpoint.as_deref(),
        )?;
        telemetry::set_allow_log_sample(cli.allow_log_sample);
        match cli.command {
            Command::Serve {
                config,
                policy_dir,
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
                let mut loaded = Config::load_with_sets(&config, policy_dir.as_deref(), &[])?;
                let listen_in_file = (loaded.grpc_listen, loaded.admin_listen);
                loaded.grpc_listen = grpc_listen.unwrap_or(loaded.grpc_listen);
                loaded.admin_listen = admin_listen.unwrap_or(loaded.admin_listen);
                loaded.grpc_socket = grpc_socket.or(loaded.grpc_socket);
                loaded.http_listen = http_listen.or(loaded.http_listen);
                loaded.http_dialect = http_dialect.unwrap_or(loaded.http_dialect);
                let tls = tls_cert.zip(tls_key).map(|(cert_file, key_file)| TlsFiles {
                    cert_file,
                    key_file,
                    client_ca_file: tls_client_ca,
                });
                loaded.tls = tls.or(loaded.tls);
                let watch = Watch {
                    path: config,
                    policy_dir,
                    interval: reload_interval,
                    listen_in_file,
                };
                let server = Server::start(loaded, Some(watch)).await?;
                server.run_until(shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
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
                let config = Config::load_with_sets(&config, None, &[])?;
                let state =
                    AppState::offline(&config).context("cannot build the HTTP client for JWKS")?;
                let report = explain::explain(&state.engine(), &request, credentials).await;
                print!("{}", report.text);
                Ok(if report.allowed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(3)
                })
            }
            Command::Demo {
                grpc_listen,
                admin_listen,
                issuer_port,
                envoy_url,
            } => {
                demo::run(grpc_listen, admin_listen, issuer_port, envoy_url.as_deref()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Validate { .. } | Command::ConfigSchema { .. } | Command::Readings => {
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            let error: anyhow::Error = error;
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
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

fn listen_arg(text: &str) -> Result<SocketAddr, String> {
    portcullis::config::parse_listen(text)
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
