//! The fronts and the process: [`Server::start`] binds every listener a configuration
//! names and serves on them — the ext_authz gRPC service ([`grpc`]) over TCP, TLS or a
//! Unix socket, the HTTP check listener ([`http`]) and the admin port ([`admin`]) — and
//! watches the configuration file ([`reload`]) and certificates ([`tls`]);
//! [`Server::run_until`] stops them all together. Each front calls the pipeline
//! ([`crate::check`]) and records one decision event per Check ([`record`]).

mod admin;
mod budget;
mod coalesce;
mod connection;
mod descriptors;
mod grpc;
mod http;
mod record;
mod reload;
mod tls;

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::{
    net::{TcpListener, UnixListener},
    sync::watch,
    task::JoinHandle,
};

pub use grpc::{AUTHORIZATION_SERVICE, LIVENESS_SERVICE};
pub use reload::DEFAULT_POLL_INTERVAL;

use crate::{
    check::{self, Authentication},
    config::Config,
    pb::{Answer, auth::CheckRequest},
    respond,
    state::AppState,
};
use connection::incoming;
use grpc::Health;
use tls::{Alpn, TlsState};

/// Re-reading the configuration file while serving.
#[derive(Debug, Clone)]
pub struct Watch {
    pub path: PathBuf,
    /// The policy directory given on the command line (else the file's `policy_dir`).
    pub policy_dir: Option<PathBuf>,
    /// How often the file is compared with what was loaded (SIGHUP reloads at once).
    pub interval: Duration,
    /// The gRPC and admin addresses as the file names them (flags may override them):
    /// a reload that changes them is reported, as they apply at the next restart only.
    pub listen_in_file: (SocketAddr, SocketAddr),
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot build the HTTP client for JWKS: {0}")]
    Client(#[from] reqwest::Error),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
    #[error("cannot set up TLS on the {listener} listener: {source}")]
    Tls {
        listener: &'static str,
        source: tls::TlsError,
    },
    #[error("the gRPC server failed: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("the {0} listener failed: {1}")]
    Http(&'static str, std::io::Error),
}

/// A running portcullis: every listener bound and served until [`Server::run_until`]'s
/// signal, or until it is dropped.
pub struct Server {
    state: AppState,
    health: Health,
    grpc: SocketAddr,
    admin: SocketAddr,
    http: Option<SocketAddr>,
    shutdown_grace: Duration,
    /// Stops the Check fronts (gRPC, HTTP check); `stop_admin` stops the admin port,
    /// last, so that `/livez`, `/readyz` and `/metrics` answer while Checks drain.
    stop: watch::Sender<bool>,
    stop_admin: watch::Sender<bool>,
    fronts: Vec<JoinHandle<Result<(), ServeError>>>,
    admin_front: Option<JoinHandle<Result<(), ServeError>>>,
    /// Readiness, config and certificate watchers: stopped, not awaited.
    watchers: Vec<JoinHandle<()>>,
}

// === impl Server ===

impl Server {
    /// Builds the state from `config` (starting every issuer's key refresh), binds the
    /// listeners and starts serving.
    pub async fn start(config: Config, watch: Option<Watch>) -> Result<Server, ServeError> {
        let state = AppState::new(&config)?;
        let health = Health::new().await;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };
        let (stop_admin, mut admin_stopped) = tokio::sync::watch::channel(false);
        let mut server = Server {
            state: state.clone(),
            health: health.clone(),
            grpc: config.grpc_listen,
            admin: config.admin_listen,
            http: None,
            shutdown_grace: config.shutdown_grace,
            stop,
            stop_admin,
            fronts: Vec::new(),
            admin_front: None,
            watchers: vec![tokio::spawn(health.clone().watch_readiness(state.clone()))],
        };
        if let Some(watch) = watch {
            server
                .watchers
                .push(tokio::spawn(reload::watch(state.clone(), watch)));
        }
        let settings = Arc::new(config.connections.clone());
        let metrics = state.metrics().clone();
        let check_listeners = 1
            + usize::from(config.http_listen.is_some())
            + usize::from(config.grpc_socket.is_some());
        let caps = descriptors::caps(settings.max_per_listener, check_listeners);
        let per_connection = config.limits.max_request_bytes_per_connection;
        let budget = budget::BudgetLayer::new(
            config.limits.max_request_bytes_in_flight,
            config.limits.overload_wait,
            settings.header_timeout,
        );

        let grpc_listener = bind(config.grpc_listen).await?;
        server.grpc = local(&grpc_listener, config.grpc_listen);
        let admin_listener = bind(config.admin_listen).await?;
        server.admin = local(&admin_listener, config.admin_listen);
        {
            let (state, settings) = (state.clone(), settings.clone());
            let connections = incoming(
                admin_listener,
                &settings,
                caps.admin,
                per_connection,
                metrics.clone(),
                "admin",
            );
            let stopped = async move {
                let _ = admin_stopped.wait_for(|stop| *stop).await;
            };
            server.admin_front = Some(tokio::spawn(async move {
                admin::serve(state, connections, &settings, stopped).await;
                Ok(())
            }));
        }

        if let Some(address) = config.http_listen {
            let listener = bind(address).await?;
            server.http = Some(local(&listener, address));
            let connections = incoming(
                listener,
                &settings,
                caps.check,
                per_connection,
                metrics.clone(),
                "http",
            );
            let tls = config
                .http_tls
                .as_ref()
                .map(|files| server.tls(files, Alpn::Http, "HTTP check"))
                .transpose()?;
            tracing::info!(
                http_listen = %address, tls = tls.is_some(), dialect = ?config.http_dialect,
                "Also serving HTTP checks"
            );
            let (state, settings, dialect) = (state.clone(), settings.clone(), config.http_dialect);
            let stopped = until_stopped();
            server.fronts.push(tokio::spawn(async move {
                match tls {
                    None => http::serve(state, connections, dialect, &settings, stopped).await,
                    Some(tls) => {
                        let connections = tls.incoming(connections, settings.tls_handshake_timeout);
                        http::serve(state, connections, dialect, &settings, stopped).await;
                    }
                }
                Ok(())
            }));
        }

        if let Some(path) = &config.grpc_socket {
            let connections = incoming(
                unix_listener(path)?,
                &settings,
                caps.check,
                per_connection,
                metrics.clone(),
                "grpc_socket",
            );
            let (state, settings, health, budget) = (
                state.clone(),
                settings.clone(),
                health.clone(),
                budget.clone(),
            );
            let stopped = until_stopped();
            server.fronts.push(tokio::spawn(async move {
                Ok(grpc::serve(state, connections, &health, &settings, budget, stopped).await?)
            }));
        }

        let connections = incoming(
            grpc_listener,
            &settings,
            caps.check,
            per_connection,
            metrics,
            "grpc",
        );
        let tls = config
            .tls
            .as_ref()
            .map(|files| server.tls(files, Alpn::H2, "gRPC"))
            .transpose()?;
        let stopped = until_stopped();
        server.fronts.push(tokio::spawn(async move {
            match tls {
                None => {
                    grpc::serve(state, connections, &health, &settings, budget, stopped).await?
                }
                Some(tls) => {
                    let connections = tls.incoming(connections, settings.tls_handshake_timeout);
                    grpc::serve(state, connections, &health, &settings, budget, stopped).await?;
                }
            }
            Ok(())
        }));
        tracing::info!(
            grpc_listen = %server.grpc, admin_listen = %server.admin,
            tls = config.tls.is_some(),
            mtls = config.tls.as_ref().is_some_and(|t| t.client_ca_file.is_some()),
            issuers = config.issuers.len(), routes = config.routes.len(),
            "portcullis serving"
        );
        Ok(server)
    }

    /// The TLS state of a listener, its certificate files watched.
    fn tls(
        &mut self,
        files: &crate::config::TlsFiles,
        alpn: Alpn,
        listener: &'static str,
    ) -> Result<Arc<TlsState>, ServeError> {
        let tls = TlsState::new(files.clone(), alpn)
            .map_err(|source| ServeError::Tls { listener, source })?;
        self.watchers.push(tokio::spawn(
            tls.clone().watch(reload::DEFAULT_POLL_INTERVAL),
        ));
        Ok(tls)
    }

    /// The gRPC listener's address (the port chosen when the configuration said 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// What every Check shares (configuration, keys, metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` completes, then stops: readiness goes NOT_SERVING, the
    /// listeners stop accepting, and the Checks in flight get at most `shutdown_grace`
    /// to finish; whatever is still open then (a stuck client) is closed.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> Result<(), ServeError> {
        signal.await;
        self.state.start_draining();
        self.health.draining().await;
        let _ = self.stop.send(true);
        let fronts = std::mem::take(&mut self.fronts);
        let aborts: Vec<_> = fronts.iter().map(JoinHandle::abort_handle).collect();
        let admin = self.admin_front.take();
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            let mut result = Ok(());
            for front in fronts {
                match front.await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => result = Err(error),
                    Err(join) => tracing::error!(error = %join, "A listener task failed"),
                }
            }
            result
        })
        .await;
        let result = match drained {
            Ok(result) => {
                tracing::info!("portcullis stopped: every Check in flight finished");
                result
            }
            Err(_) => {
                aborts.iter().for_each(|abort| abort.abort());
                tracing::warn!(
                    grace_s = self.shutdown_grace.as_secs_f64(),
                    "portcullis stopped: connections still open after the shutdown grace were closed"
                );
                Ok(())
            }
        };
        let _ = self.stop_admin.send(true);
        if let Some(admin) = admin {
            // The admin port's own connections (a scrape, a probe) are short.
            let _ = tokio::time::timeout(Duration::from_secs(1), admin).await;
        }
        result
    }
}

/// Dropping the server stops it: listeners close, watchers end.
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = self.stop_admin.send(true);
        self.fronts
            .iter()
            .chain(&self.admin_front)
            .for_each(JoinHandle::abort);
        self.watchers.iter().for_each(JoinHandle::abort);
    }
}

/// One Check decided and answered in process, as the gRPC front does it but without its
/// Check slots and decision event: what a Check costs without the transport (benchmarks).
pub async fn answer(state: &AppState, request: &CheckRequest) -> Answer {
    let engine = state.engine();
    let verdict = check::decide(&engine, request, Authentication::Bearer, None).await;
    respond::answer(&engine, &verdict, true)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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

async fn bind(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::Bind {
            address: address.to_string(),
            source,
        })
}

/// The address a listener got (the port chosen for port 0).
fn local(listener: &TcpListener, asked: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(asked)
}

/// Listens on the Unix socket `path`, replacing a stale socket file left by a previous run.
fn unix_listener(path: &std::path::Path) -> Result<UnixListener, ServeError> {
    use std::os::unix::fs::FileTypeExt;
    let bind_error = |source| ServeError::Bind {
        address: path.display().to_string(),
        source,
    };
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
        std::fs::remove_file(path).map_err(bind_error)?;
    }
    let listener = UnixListener::bind(path).map_err(bind_error)?;
    tracing::info!(socket = %path.display(), "Also serving gRPC on a Unix socket");
    Ok(listener)
}
