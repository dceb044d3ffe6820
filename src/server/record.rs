//! The one decision event per Check, recorded from its [`Verdict`]: the log line, the
//! metrics and the fields of the Check's span. Nothing else logs a decision. Denies are
//! logged at `info` (a key outage at `warn`); allows at `debug`, and one in
//! [`telemetry::allow_log_sample`] at `info` when sampling is on — a busy replica's log
//! is its denies.

use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    check::Verdict,
    deny::{DenyReason, Fault},
    metrics::Metrics,
    telemetry,
};

/// The route label of a decision that names no route.
static NO_ROUTE: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from(""));
/// Allows seen, for sampling.
static ALLOWS: AtomicU64 = AtomicU64::new(0);

/// Logs, counts and traces `verdict`, decided in `elapsed`.
pub fn record(metrics: &Metrics, verdict: &Verdict<'_>, elapsed: Duration) {
    let route = verdict.route.map_or("", |r| &*r.name);
    let claims = verdict.verified();
    let issuer = claims.map_or("", |c| &*c.issuer);
    let request_id = verdict.request_id;
    let latency_us = elapsed.as_micros() as u64;
    let reason = verdict
        .outcome
        .as_ref()
        .err()
        .map_or("none", |d| d.reason.code());
    let allowed = verdict.outcome.is_ok();
    let route_label = verdict.route.map_or_else(
        || NO_ROUTE.clone(),
        |r| {
            r.metric_label
                .get_or_init(|| metrics.route_label(&r.name))
                .clone()
        },
    );
    metrics.check(allowed, reason, route_label.clone(), elapsed.as_secs_f64());
    let span = &verdict.span;
    span.record("route", route);
    span.record("decision", if allowed { "allow" } else { "deny" });
    span.record("reason", reason);
    if let Ok(Some(would)) = &verdict.outcome {
        metrics.audit_would_deny(&route_label, would.code());
    }
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let plain_allow = matches!(verdict.outcome, Ok(None));
    let sampled = plain_allow && {
        let every = telemetry::allow_log_sample();
        every > 0 && ALLOWS.fetch_add(1, Ordering::Relaxed).is_multiple_of(every)
    };
    if plain_allow && !sampled && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let subject_hash = claims
        .and_then(|c| c.claims.get("sub"))
        .and_then(crate::jwt::Claim::as_str)
        .map(telemetry::subject_hash)
        .unwrap_or_default();
    let subject_hash = subject_hash.as_str();
    // One allow event, at a level chosen by sampling (tracing wants it constant).
    macro_rules! allowed {
        ($level:expr) => {
            tracing::event!(
                $level,
                decision = "allow",
                route,
                issuer,
                subject_hash,
                request_id,
                latency_us,
                sampled_one_in = telemetry::allow_log_sample(),
                "Check allowed"
            )
        };
    }
    match &verdict.outcome {
        Ok(Some(would)) => tracing::warn!(
            decision = "allow",
            audit_would_deny = would.code(),
            route,
            issuer,
            subject_hash,
            request_id,
            latency_us,
            "Check allowed by an audit-mode route that would deny it"
        ),
        Ok(None) if sampled => allowed!(tracing::Level::INFO),
        Ok(None) => allowed!(tracing::Level::DEBUG),
        // A client's bad token is routine (info); a dependency we cannot reach is ours to
        // fix (warn), named in the message.
        Err(deny) if deny.reason.fault() == Fault::Upstream => {
            macro_rules! unavailable {
                ($what:literal) => {
                    tracing::warn!(
                        decision = "deny",
                        reason,
                        status = deny.reason.http_status(),
                        route,
                        issuer,
                        request_id,
                        latency_us,
                        $what
                    )
                };
            }
            if deny.reason == DenyReason::ReplayStoreUnavailable {
                unavailable!("Check denied: DPoP replay store unavailable")
            } else {
                unavailable!("Check denied: identity provider keys unavailable")
            }
        }
        Err(deny) => tracing::info!(
            decision = "deny",
            reason,
            status = deny.reason.http_status(),
            route,
            issuer,
            subject_hash,
            request_id,
            latency_us,
            "Check denied"
        ),
    }
}
