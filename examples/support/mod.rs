//! Helpers shared by the benchmark and soak drivers (examples/bench.rs, examples/soak.rs):
//! child processes that die with the driver, free loopback ports, /proc readings.

#![allow(dead_code)]

use std::process::Child;

/// A child process, killed and reaped when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// user + system CPU time of the process so far, in microseconds.
    pub fn cpu_us(&self) -> u64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
            .sum();
        ticks * 1_000_000 / 100 // USER_HZ is 100 on Linux
    }

    /// File descriptors the process has open (0 when unknown).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.0.id())).map_or(0, |d| d.count())
    }

    /// Resident set size in KiB (0 when unknown).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

/// How the drivers run Envoy: one worker (on the core the servers under test share), no
/// hot restart, errors only; the configuration file follows.
pub const ENVOY_ARGS: [&str; 6] = [
    "--disable-hot-restart",
    "--concurrency",
    "1",
    "--log-level",
    "error",
    "-c",
];

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (up to 30 s) until `port` on 127.0.0.1 accepts connections.
pub async fn wait_tcp(port: u16) -> Result<(), String> {
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("port {port} never opened"))
}

/// Waits (up to 30 s) until GET `url` answers 200.
pub async fn wait_ok(url: &str) -> Result<(), String> {
    for _ in 0..300 {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Err(format!("{url} never answered 200"))
}
