//! Test upstreams that behave like real applications: the framework-like WSGI app of
//! `tests/upstreams/framework.py`, on a free loopback port, stopped when dropped.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

use super::{ChildGuard, free_port};

/// The framework upstream: what it served is appended to `log`, one JSON line each.
pub struct Framework {
    pub port: u16,
    pub log: PathBuf,
    _child: ChildGuard,
}

impl Framework {
    /// Starts the app with its log in `dir`, once it accepts connections.
    pub async fn start(dir: &Path) -> Framework {
        let port = free_port();
        let log = dir.join(format!("framework-{port}.jsonl"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstreams/framework.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(&log)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs the framework upstream");
        let framework = Framework {
            port,
            log,
            _child: ChildGuard(child),
        };
        super::wait_for_port(port).await;
        framework
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
