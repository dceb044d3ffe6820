//! `RawConfig` -> `Config`: every check that makes a configuration trustworthy, each
//! problem recorded with its field path so that one run lists them all.

use std::{collections::HashSet, net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use super::{
    Config, DEFAULT_ADMIN_LISTEN, DEFAULT_GRPC_LISTEN, DEFAULT_IDENTITY_HEADERS,
    DEFAULT_MAX_ROUTE_LABELS, DEFAULT_REALM, DEFAULT_SHUTDOWN_GRACE, FieldProblem, HttpDialect,
    IssuerConfig, JwksSettings, MetadataFields, MetricsSettings, RequestBody, RouteConfig,
    RouteIndex, TlsFiles,
    headers::{check_header_name, header_mapping, header_mappings},
    issuers, limits,
    problems::Problems,
    raw::{RawConfig, RawIssuer, RawJwks, RawRoute, RawTls},
    routes, shadow,
};
use crate::upstream::Frameworks;

pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<FieldProblem>> {
    let mut problems = Problems::default();

    let grpc_listen = listen_address(
        &mut problems,
        "server.grpc_listen",
        raw.server
            .grpc_listen
            .as_deref()
            .unwrap_or(DEFAULT_GRPC_LISTEN),
    );
    let admin_listen = listen_address(
        &mut problems,
        "server.admin_listen",
        raw.server
            .admin_listen
            .as_deref()
            .unwrap_or(DEFAULT_ADMIN_LISTEN),
    );
    let tls = raw
        .server
        .tls
        .as_ref()
        .and_then(|t| tls_files("server.tls", t, &mut problems));
    let http_tls = raw
        .server
        .http_tls
        .as_ref()
        .and_then(|t| tls_files("server.http_tls", t, &mut problems));
    let http_dialect = match raw.server.http_dialect.as_deref() {
        None => HttpDialect::default(),
        Some(text) => HttpDialect::parse(text).unwrap_or_else(|| {
            problems.add(
                "server.http_dialect",
                format!("{text:?} is not one of envoy, nginx, forwarded"),
            );
            HttpDialect::default()
        }),
    };
    let grpc_socket = raw.server.grpc_socket.as_ref().map(PathBuf::from);
    let http_listen = raw
        .server
        .http_listen
        .as_deref()
        .map(|text| listen_address(&mut problems, "server.http_listen", text));
    if grpc_socket.as_ref().is_some_and(|p| !p.is_absolute()) {
        problems.add("server.grpc_socket", "must be an absolute path");
    }
    let realm = raw.server.realm.unwrap_or_else(|| DEFAULT_REALM.to_owned());
    if realm.is_empty()
        || !realm
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        problems.add(
            "server.realm",
            "must be non-empty printable ASCII without quotes or backslashes",
        );
    }

    let jwks = jwks_settings(&raw.jwks, &mut problems);
    let connections = limits::connection_settings(&raw.server.connections, &mut problems);
    let shutdown_grace = problems.duration(
        "server.shutdown_grace",
        raw.server.shutdown_grace.as_deref(),
        DEFAULT_SHUTDOWN_GRACE,
    );

    if raw.issuers.is_empty() {
        problems.add("issuers", "at least one issuer is required");
    }
    let issuers = validate_issuers("issuers", &raw.issuers, &mut problems);

    if raw.routes.is_empty() && raw.policy_dir.is_none() {
        problems.add(
            "routes",
            "at least one route is required (everything else is denied)",
        );
    }
    let routes = validate_routes("routes", &raw.routes, &mut problems);

    let identity_headers = match &raw.identity_headers {
        None => DEFAULT_IDENTITY_HEADERS
            .iter()
            .map(|(header, claim)| header_mapping(header, claim))
            .collect(),
        Some(map) => header_mappings("identity_headers", map, &mut problems),
    };
    let limits = limits::limits(&raw.limits, &mut problems);
    let payload_header = raw.payload_header.as_ref().and_then(|name| {
        let lower = name.to_ascii_lowercase();
        check_header_name(&mut problems, "payload_header", &lower).then_some(lower)
    });

    let dpop = super::binding::dpop_settings(&raw.dpop, &mut problems);
    let dynamic_metadata = match &raw.dynamic_metadata {
        None => MetadataFields::default(),
        Some(names) => names
            .iter()
            .enumerate()
            .fold(
                MetadataFields::NONE,
                |set, (i, name)| match MetadataFields::named(name) {
                    Some(field) => set.with(field),
                    None => {
                        problems.add(
                            format!("dynamic_metadata[{i}]"),
                            format!(
                                "{name:?} is not one of {}",
                                MetadataFields::NAMES.join(", ")
                            ),
                        );
                        set
                    }
                },
            ),
    };

    let upstream = raw.upstream.as_ref().map_or(Frameworks::ALL, |names| {
        routes::upstream("upstream", names, &mut problems)
    });

    let request_body = match raw.request_body.as_deref() {
        None => RequestBody::default(),
        Some(text) => RequestBody::parse(text).unwrap_or_else(|| {
            problems.add(
                "request_body",
                format!("{text:?} is not one of {}", RequestBody::NAMES.join(", ")),
            );
            RequestBody::default()
        }),
    };

    let signed_identity =
        super::identity::signed_identity(raw.signed_identity.as_ref(), &mut problems);
    if let Some(identity) = &signed_identity
        && (identity_headers.iter().any(|m| m.header == identity.header)
            || payload_header.as_ref() == Some(&identity.header))
    {
        problems.add(
            "signed_identity.header",
            format!(
                "{:?} is also an identity header or the payload header: give it a name of its own",
                identity.header
            ),
        );
    }
    if signed_identity.is_none() {
        for (i, route) in raw.routes.iter().enumerate() {
            if route.signed_identity == Some(true) {
                problems.add(
                    format!("routes[{i}].signed_identity"),
                    "needs a `signed_identity` section (its keys, audience and header)",
                );
            }
        }
    }

    problems.into_result()?;
    Ok(Config {
        grpc_listen,
        grpc_socket,
        http_listen,
        http_dialect,
        http_tls,
        admin_listen,
        tls,
        realm,
        jwks,
        issuers,
        routes,
        identity_headers,
        payload_header,
        strip_authorization: raw.strip_authorization,
        metadata_claims: raw.metadata_claims.unwrap_or(false),
        dynamic_metadata,
        limits,
        connections,
        shutdown_grace,
        dpop,
        upstream,
        request_body,
        policy_dir: raw.policy_dir.as_ref().map(PathBuf::from),
        sets: Vec::new(),
        policy_files: Vec::new(),
        metrics: MetricsSettings {
            preseed_routes: raw.metrics.preseed_routes,
            max_routes: raw.metrics.max_routes.unwrap_or(DEFAULT_MAX_ROUTE_LABELS),
        },
        signed_identity,
    })
}

/// The issuers of `raw` (under `field`), each `iss` once.
pub(super) fn validate_issuers(
    field: &str,
    raw: &[RawIssuer],
    problems: &mut Problems,
) -> Vec<IssuerConfig> {
    let mut seen_issuers = HashSet::new();
    let mut issuers: Vec<IssuerConfig> = Vec::new();
    for (i, raw_issuer) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        for issuer in issuers::validate_issuer(&field, raw_issuer, problems) {
            if !seen_issuers.insert(issuer.issuer.as_str().to_owned()) {
                problems.add(
                    format!("{field}.issuer"),
                    format!("{:?} is configured twice", issuer.issuer.as_str()),
                );
            }
            issuers.push(issuer);
        }
    }
    issuers
}

/// The routes of `raw` (under `field`): names unique, none that an earlier one makes
/// unreachable.
pub(super) fn validate_routes(
    field: &str,
    raw: &[RawRoute],
    problems: &mut Problems,
) -> Vec<RouteConfig> {
    let mut seen_routes = HashSet::new();
    let mut routes: Vec<RouteConfig> = Vec::new();
    // Only the earlier routes filed along a route's own literal segments can cover it.
    let mut index = RouteIndex::default();
    for (i, raw_route) in raw.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let Some(route) = routes::validate_route(&field, raw_route, problems) else {
            continue;
        };
        if !seen_routes.insert(route.name.clone()) {
            problems.add(
                format!("{field}.name"),
                format!("{:?} appears twice", route.name),
            );
        }
        if let Some(earlier) = index
            .covering_candidates(&route.path)
            .into_iter()
            .filter_map(|position| routes.get(position))
            .find(|earlier| shadow::covers(earlier, &route))
        {
            problems.add(
                field,
                format!(
                    "can never match: route {:?} before it matches every request it would",
                    earlier.name
                ),
            );
        }
        index.insert(routes.len(), &route.path);
        routes.push(route);
    }
    routes
}

/// TLS file paths: each must name a readable file (the PEM contents are checked when the
/// listener starts, with the error naming the file).
fn tls_files(section: &str, raw: &RawTls, problems: &mut Problems) -> Option<TlsFiles> {
    let mut file = |name: &str, value: &Option<String>, required: bool| -> Option<PathBuf> {
        let field = format!("{section}.{name}");
        match value {
            None if required => {
                problems.add(field, format!("is required with {section}"));
                None
            }
            None => None,
            Some(path) => match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() => Some(PathBuf::from(path)),
                _ => {
                    problems.add(field, format!("{path:?} is not a readable file"));
                    None
                }
            },
        }
    };
    let cert_file = file("cert_file", &raw.cert_file, true);
    let key_file = file("key_file", &raw.key_file, true);
    let client_ca_file = file("client_ca_file", &raw.client_ca_file, false);
    Some(TlsFiles {
        cert_file: cert_file?,
        key_file: key_file?,
        client_ca_file,
    })
}

fn listen_address(problems: &mut Problems, field: &str, text: &str) -> SocketAddr {
    parse_listen(text).unwrap_or_else(|message| {
        problems.add(field, message);
        SocketAddr::from(([0, 0, 0, 0], 0))
    })
}

/// A listen address: `IP:PORT`, or `:PORT` for every interface (as Envoy and Go write it).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_owned(),
    };
    SocketAddr::from_str(&full).map_err(|_| format!("{text:?} is not an IP:port or :port address"))
}

fn jwks_settings(raw: &RawJwks, problems: &mut Problems) -> JwksSettings {
    let defaults = JwksSettings::default();
    let mut duration = |name: &str, value: &Option<String>, default| {
        problems.duration(&format!("jwks.{name}"), value.as_deref(), default)
    };
    let settings = JwksSettings {
        refresh_interval: duration(
            "refresh_interval",
            &raw.refresh_interval,
            defaults.refresh_interval,
        ),
        min_refresh_interval: duration(
            "min_refresh_interval",
            &raw.min_refresh_interval,
            defaults.min_refresh_interval,
        ),
        max_refresh_interval: duration(
            "max_refresh_interval",
            &raw.max_refresh_interval,
            defaults.max_refresh_interval,
        ),
        unknown_kid_cooldown: duration(
            "unknown_kid_cooldown",
            &raw.unknown_kid_cooldown,
            defaults.unknown_kid_cooldown,
        ),
        fetch_timeout: duration("fetch_timeout", &raw.fetch_timeout, defaults.fetch_timeout),
        max_staleness: duration("max_staleness", &raw.max_staleness, defaults.max_staleness),
        max_document_bytes: raw
            .max_document_bytes
            .unwrap_or(defaults.max_document_bytes),
        max_keys: raw.max_keys.unwrap_or(defaults.max_keys),
    };
    if settings.max_document_bytes < 1024 {
        problems.add("jwks.max_document_bytes", "must be at least 1024");
    }
    if settings.max_keys == 0 {
        problems.add("jwks.max_keys", "must be at least 1");
    }
    if settings.min_refresh_interval < Duration::from_secs(1) {
        problems.add("jwks.min_refresh_interval", "must be at least 1s");
    }
    if settings.refresh_interval < settings.min_refresh_interval
        || settings.refresh_interval > settings.max_refresh_interval
    {
        problems.add(
            "jwks.refresh_interval",
            "must lie between min_refresh_interval and max_refresh_interval",
        );
    }
    if settings.max_staleness <= settings.refresh_interval {
        problems.add(
            "jwks.max_staleness",
            "must be longer than refresh_interval, or keys expire before they are refreshed",
        );
    }
    if settings.fetch_timeout.is_zero() {
        problems.add("jwks.fetch_timeout", "must be more than 0");
    }
    settings
}

#[cfg(test)]
mod tests;
