//! Hot reload: the config file is polled for changes (which also catches Kubernetes
//! ConfigMap updates, whose symlink swap file-change notifications often miss) and SIGHUP
//! forces a reload. A new file is read, validated and swapped in atomically
//! ([`AppState::reload`]); an invalid one is refused — logged, counted in
//! `portcullis_config_reloads_total{outcome="invalid"}` — and the running configuration
//! keeps serving.

use std::{net::SocketAddr, path::Path, time::Duration};

use super::Watch;
use crate::{config::Config, state::AppState};

/// How often the config file is compared with what was last loaded.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Reads, validates and applies `path`. Listen addresses cannot change without a restart;
/// a changed one is reported and otherwise ignored.
fn reload(state: &AppState, path: &Path, listening: (SocketAddr, SocketAddr)) -> bool {
    let applied = match Config::load(path) {
        Err(error) => {
            tracing::error!(
                path = %path.display(), error = %error,
                "Configuration refused; the previous one keeps serving"
            );
            false
        }
        Ok(config) => {
            if (config.grpc_listen, config.admin_listen) != listening {
                tracing::warn!(
                    path = %path.display(),
                    "Listen addresses changed in the config file: they apply at the next restart"
                );
            }
            match state.reload(&config) {
                Ok(()) => {
                    tracing::info!(
                        path = %path.display(), routes = config.routes.len(),
                        issuers = config.issuers.len(), "Configuration reloaded"
                    );
                    true
                }
                Err(error) => {
                    tracing::error!(path = %path.display(), error = %error, "Configuration not applied");
                    false
                }
            }
        }
    };
    state.metrics().config_reload(applied);
    applied
}

/// Watches the file until the task is dropped: reloads when its content changes (checked
/// every `interval`) and on SIGHUP.
pub async fn watch(state: AppState, watch: Watch) {
    let Watch {
        path,
        interval,
        listen_in_file: listening,
    } = watch;
    let mut last = std::fs::read(&path).ok();
    let mut hangup = hangup_signal();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let forced = tokio::select! {
            _ = ticker.tick() => false,
            _ = recv(&mut hangup) => true,
        };
        let current = std::fs::read(&path).ok();
        if forced || (current.is_some() && current != last) {
            if forced {
                tracing::info!(path = %path.display(), "SIGHUP: reloading configuration");
            }
            reload(&state, &path, listening);
            // Remember even a refused file, so that it is not re-tried (and re-logged)
            // every tick; the next edit is tried again.
            last = current;
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .map_err(|error| tracing::warn!(error = %error, "Cannot watch SIGHUP; polling only"))
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {
    None
}

#[cfg(unix)]
async fn recv(signal: &mut Hangup) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn recv(_: &mut Hangup) {
    std::future::pending().await
}
