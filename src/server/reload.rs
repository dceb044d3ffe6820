//! Hot reload: the config file and the policy directory are polled for changes (which also
//! catches Kubernetes ConfigMap updates, whose symlink swap file-change notifications often
//! miss) and SIGHUP forces a reload. A new configuration is read, validated and swapped in
//! atomically ([`AppState::reload`]); so are the signed identity's key files (a rotated
//! Secret). An invalid main file is refused — logged, counted in
//! `portcullis_config_reloads_total{outcome="invalid"}` — and the running configuration
//! keeps serving. A broken policy file is refused on its own: its last good version serves
//! on beside the others' new ones (`sets::load_dir`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::Watch;
use crate::{
    config::{Config, PolicySetConfig},
    state::AppState,
};

/// How often the config file is compared with what was last loaded.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Reads, validates and applies `path` and the policy directory (`policy_dir`, else the
/// file's), policy files refused replaced by their version in `last_sets`, which is updated.
/// Listen addresses cannot change without a restart; a changed one is reported and
/// otherwise ignored.
fn reload(
    state: &AppState,
    path: &Path,
    policy_dir: Option<&Path>,
    last_sets: &mut Vec<PolicySetConfig>,
    listening: (SocketAddr, SocketAddr),
) -> bool {
    let applied = match Config::load_with_sets(path, policy_dir, last_sets) {
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
                        path = %path.display(), routes = config.all_routes().count(),
                        issuers = config.all_issuers().count(), policy_files = config.sets.len(),
                        "Configuration reloaded"
                    );
                    *last_sets = config.sets;
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
        policy_dir,
        interval,
        listen_in_file: listening,
    } = watch;
    let mut last_sets = state.engine().sets.clone();
    let read = || {
        let engine = state.engine();
        let dir = policy_dir.clone().or_else(|| engine.policy_dir.clone());
        let keys: Vec<Vec<u8>> = engine
            .forwarding
            .identity
            .iter()
            .flat_map(|minter| minter.key_files())
            .map(|file| std::fs::read(file).unwrap_or_default())
            .collect();
        std::fs::read(&path)
            .ok()
            .map(|file| (file, dir.as_deref().map(contents), keys))
    };
    let mut last = read();
    let mut hangup = hangup_signal();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let forced = tokio::select! {
            _ = ticker.tick() => false,
            _ = recv(&mut hangup) => true,
        };
        let current = read();
        if forced || (current.is_some() && current != last) {
            if forced {
                tracing::info!(path = %path.display(), "SIGHUP: reloading configuration");
            }
            reload(
                &state,
                &path,
                policy_dir.as_deref(),
                &mut last_sets,
                listening,
            );
            // Remember even a refused file, so that it is not re-tried (and re-logged)
            // every tick; the next edit is tried again.
            last = current;
        }
    }
}

/// The names and contents of a policy directory's files, to see that one changed.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file())
        .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
        .collect();
    files.sort();
    files
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
