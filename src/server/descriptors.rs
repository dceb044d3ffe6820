//! The file descriptors the process may open, shared out between its listeners so that a
//! flood of connections on one of them cannot leave none for the rest: a reserve is kept
//! for the admin port (`/livez`, `/readyz`, `/metrics`) and for what the process itself
//! opens (JWKS fetches, Redis, configuration and certificate files), and the Check
//! listeners share what is left. `server.connections.max_per_listener` is lowered to that
//! share when the open-files limit is lower than it allows.

use std::path::Path;

/// Connections each kind of listener may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Each Check listener (gRPC over TCP or a Unix socket, HTTP check).
    pub check: usize,
    /// The admin port.
    pub admin: usize,
}

/// Descriptors kept out of the Check listeners' share: an eighth of the limit, between 16
/// and 64.
fn reserve(limit: usize) -> usize {
    (limit / 8).clamp(16, 64)
}

/// The caps for `check_listeners` Check listeners under the process's open-files limit,
/// none above `configured`.
pub fn caps(configured: usize, check_listeners: usize) -> Caps {
    let limit = open_files_limit(Path::new("/proc/self/limits"));
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count());
    let caps = share(configured, check_listeners, limit, open);
    tracing::info!(
        open_files_limit = limit.map_or_else(|| "unknown".to_owned(), |l| l.to_string()),
        open_now = open,
        per_check_listener = caps.check,
        admin = caps.admin,
        "Connection caps"
    );
    if caps.check < configured {
        tracing::warn!(
            configured,
            cap = caps.check,
            "server.connections.max_per_listener lowered to what the open-files limit leaves; \
             raise the limit (ulimit -n) to accept more connections"
        );
    }
    caps
}

/// The caps, given the limit (`None`: unknown) and the descriptors open now.
fn share(configured: usize, check_listeners: usize, limit: Option<usize>, open: usize) -> Caps {
    let Some(limit) = limit else {
        return Caps {
            check: configured,
            admin: configured.min(64),
        };
    };
    let reserve = reserve(limit);
    let left = limit.saturating_sub(open + reserve);
    Caps {
        check: (left / check_listeners.max(1)).clamp(2, configured.max(2)),
        admin: (reserve / 2).clamp(2, configured.max(2)),
    }
}

/// The soft `Max open files` of `/proc/self/limits`; `None` when unlimited or unreadable.
fn open_files_limit(limits: &Path) -> Option<usize> {
    let text = std::fs::read_to_string(limits).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_listeners_share_what_the_reserve_leaves() {
        // 1024 descriptors, 20 open: a reserve of 64, 940 to share.
        assert_eq!(
            share(4096, 2, Some(1024), 20),
            Caps {
                check: 470,
                admin: 32
            }
        );
        // A generous limit leaves the configured cap.
        assert_eq!(share(4096, 1, Some(1 << 20), 20).check, 4096);
        // 64 descriptors: a reserve of 16.
        assert_eq!(
            share(4096, 1, Some(64), 15),
            Caps {
                check: 33,
                admin: 8
            }
        );
        // Nothing left still lets two in; no limit known keeps the configuration.
        assert_eq!(share(4096, 1, Some(20), 30).check, 2);
        assert_eq!(
            share(100, 1, None, 30),
            Caps {
                check: 100,
                admin: 64
            }
        );
    }

    #[test]
    fn the_limit_is_read_from_proc() {
        let dir = std::env::temp_dir().join(format!("portcullis-limits-{}", std::process::id()));
        std::fs::write(
            &dir,
            "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 524288               files\n",
        )
        .unwrap();
        assert_eq!(open_files_limit(&dir), Some(1024));
        std::fs::write(
            &dir,
            "Max open files            unlimited            unlimited            files\n",
        )
        .unwrap();
        assert_eq!(open_files_limit(&dir), None);
        let _ = std::fs::remove_file(&dir);
        assert!(open_files_limit(Path::new("/proc/self/limits")).is_some());
    }
}
