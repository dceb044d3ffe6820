//! The standard `process_*` metrics (CPU seconds, resident memory, open descriptors) of
//! this process, read from `/proc` at each scrape in the kernel's own units.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

/// The standard `process_*` metrics of this process, read from `/proc` at each scrape.
#[derive(Debug)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        // utime and stime in clock ticks, rss in pages: both sizes asked of the kernel
        // (ticks are 1/100 s on most Linux; pages are 4 KiB, or 16 or 64 KiB on arm64).
        let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
        if let (Some(user), Some(system)) = (field(11), field(12)) {
            let cpu = ConstCounter::new((user + system) as f64 / ticks);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                None,
                cpu.metric_type(),
            )?;
            cpu.encode(metric)?;
        }
        if let Some(pages) = field(21) {
            let page = rustix::param::page_size() as u64;
            let rss = ConstGauge::new(pages.saturating_mul(page) as i64);
            let metric = encoder.encode_descriptor(
                "process_resident_memory_bytes",
                "Resident memory size, in bytes",
                None,
                rss.metric_type(),
            )?;
            rss.encode(metric)?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = ConstGauge::new(fds.count() as i64);
            let metric = encoder.encode_descriptor(
                "process_open_fds",
                "Open file descriptors",
                None,
                open.metric_type(),
            )?;
            open.encode(metric)?;
        }
        Ok(())
    }
}
