//! Validation of the `issuers` section: plain issuers (exact or `{tenantid}` template
//! issuer, JWKS URL or OIDC discovery) and the `entra:` preset, which expands to the
//! Microsoft Entra ID v2.0 and v1.0 issuers of one app registration.

use std::str::FromStr;

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use super::{
    DEFAULT_ALGORITHMS, DEFAULT_LEEWAY, EntraToken, EntraVersion, IssuerConfig, IssuerName,
    JwksSource, MAX_LEEWAY, ScopeClaim, StepUpChallenge, TENANT_PLACEHOLDER, TenantAllowList,
    problems::Problems,
    raw::{RawEntra, RawIssuer},
};

/// Where Entra ID (public cloud) issues v2.0 tokens and publishes keys.
pub const ENTRA_INSTANCE: &str = "https://login.microsoftonline.com/";
/// The host in the `iss` of Entra ID v1.0 tokens (public cloud).
pub const ENTRA_V1_INSTANCE: &str = "https://sts.windows.net/";
/// Entra tenant values that mean "any organisation": a multi-tenant API.
const ENTRA_MULTI_TENANT: &[&str] = &["organizations", "common"];

/// Validates one `issuers[i]` entry; an `entra:` entry yields one issuer per token version.
pub(super) fn validate_issuer(
    field: &str,
    raw: &RawIssuer,
    problems: &mut Problems,
) -> Vec<IssuerConfig> {
    let algorithms = algorithms(field, raw, problems);
    let hmac_secret = super::secrets::hmac_secret(field, raw, &algorithms, problems);
    let leeway = problems.duration(
        &format!("{field}.leeway"),
        raw.leeway.as_deref(),
        DEFAULT_LEEWAY,
    );
    if leeway > MAX_LEEWAY {
        problems.add(format!("{field}.leeway"), "must be at most 5m");
    }
    let allowed_clients = raw.allowed_clients.clone();
    if allowed_clients.as_ref().is_some_and(Vec::is_empty) {
        problems.add(
            format!("{field}.allowed_clients"),
            "must not be empty (omit it to accept every client)",
        );
    }
    let require_typ = raw.require_typ.as_ref().map(|list| {
        let list = list.to_vec();
        if list.is_empty() {
            problems.add(format!("{field}.require_typ"), "must not be empty");
        }
        list.iter()
            .enumerate()
            .map(|(j, typ)| {
                let typ = media_type(typ);
                if typ.is_empty() {
                    problems.add(format!("{field}.require_typ[{j}]"), "must not be empty");
                }
                typ
            })
            .collect::<Vec<_>>()
    });
    let base = IssuerConfig {
        issuer: IssuerName::Exact(String::new()),
        jwks: None,
        audiences: Vec::new(),
        algorithms,
        leeway,
        hmac_secret,
        require_typ,
        allowed_tenants: None,
        allowed_clients,
        insecure_http: raw.insecure_http,
        sender_constraint: super::binding::sender_constraint(
            field,
            raw.sender_constraint.as_deref(),
            problems,
        ),
        scope_claim: match raw.scope_claim.as_deref() {
            None => None,
            Some("scp") => Some(ScopeClaim::Scp),
            Some("scope") => Some(ScopeClaim::Scope),
            Some(other) => {
                problems.add(
                    format!("{field}.scope_claim"),
                    format!("{other:?} is not scp or scope"),
                );
                None
            }
        },
        entra: None,
        step_up_challenge: super::step_up::challenge(
            field,
            raw.step_up_challenge.as_deref(),
            StepUpChallenge::Rfc9470,
            problems,
        ),
    };

    let Some(entra) = &raw.entra else {
        return plain_issuer(field, raw, base, problems)
            .into_iter()
            .collect();
    };
    for (name, set) in [
        ("issuer", raw.issuer.is_some()),
        ("jwks_uri", raw.jwks_uri.is_some()),
        ("audiences", raw.audiences.is_some()),
        ("hmac_secret_env", raw.hmac_secret_env.is_some()),
        (
            "hmac_secret_base64_env",
            raw.hmac_secret_base64_env.is_some(),
        ),
        ("hmac_secret_file", raw.hmac_secret_file.is_some()),
    ] {
        if set {
            problems.add(
                format!("{field}.{name}"),
                "is derived from `entra` and may not be given with it",
            );
        }
    }
    entra_issuers(&format!("{field}.entra"), entra, raw, base, problems)
}

fn plain_issuer(
    field: &str,
    raw: &RawIssuer,
    mut issuer: IssuerConfig,
    problems: &mut Problems,
) -> Option<IssuerConfig> {
    let name = match raw.issuer.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => {
            problems.add(
                format!("{field}.issuer"),
                "is required (the exact `iss` of tokens)",
            );
            return None;
        }
    };
    issuer.issuer = issuer_name(&format!("{field}.issuer"), name, problems)?;
    let uses_keys = issuer
        .algorithms
        .iter()
        .any(|a| a.family() != AlgorithmFamily::Hmac);
    issuer.jwks = match (&raw.jwks_uri, &issuer.issuer) {
        (Some(text), _) => super::urls::http_url(
            raw.insecure_http,
            &format!("{field}.jwks_uri"),
            text,
            problems,
        )
        .map(JwksSource::Uri),
        (None, _) if !uses_keys => None,
        (None, IssuerName::Template { .. }) => {
            problems.add(
                format!("{field}.jwks_uri"),
                "is required for a {tenantid} template issuer (discovery needs one tenant)",
            );
            None
        }
        (None, IssuerName::Exact(name)) => {
            let discovery = format!(
                "{}/.well-known/openid-configuration",
                name.trim_end_matches('/')
            );
            super::urls::http_url(
                raw.insecure_http,
                &format!("{field}.issuer"),
                &discovery,
                problems,
            )
            .map(JwksSource::Discovery)
        }
    };
    issuer.audiences = audiences(
        field,
        raw.audiences.as_deref().unwrap_or_default(),
        problems,
    );
    issuer.allowed_tenants = tenants(
        field,
        raw.allowed_tenants.as_deref(),
        &issuer.issuer,
        problems,
    );
    Some(issuer)
}

fn entra_issuers(
    field: &str,
    entra: &RawEntra,
    raw: &RawIssuer,
    base: IssuerConfig,
    problems: &mut Problems,
) -> Vec<IssuerConfig> {
    let tenant = entra
        .tenant
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let multi_tenant = ENTRA_MULTI_TENANT.contains(&tenant.as_str());
    if !multi_tenant && !is_guid(&tenant) {
        problems.add(
            format!("{field}.tenant"),
            "must be the directory (tenant) id, a GUID, or `organizations` for a multi-tenant API \
             (tokens carry the id, never a domain name)",
        );
    }
    let client_id = entra
        .client_id
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if !is_guid(&client_id) {
        problems.add(
            format!("{field}.client_id"),
            "must be the API's application (client) id, a GUID",
        );
    }
    let app_id_uri = entra
        .app_id_uri
        .clone()
        .unwrap_or_else(|| format!("api://{client_id}"));
    let instance = instance_url(
        raw.insecure_http,
        &format!("{field}.instance"),
        entra.instance.as_deref(),
        ENTRA_INSTANCE,
        problems,
    );
    let v1_instance = instance_url(
        raw.insecure_http,
        &format!("{field}.v1_instance"),
        entra.v1_instance.as_deref(),
        ENTRA_V1_INSTANCE,
        problems,
    );
    let versions = entra
        .token_versions
        .clone()
        .unwrap_or_else(|| vec!["v2".into(), "v1".into()]);
    if versions.is_empty() {
        problems.add(
            format!("{field}.token_versions"),
            "must name v1, v2 or both",
        );
    }
    // Multi-tenant: the issuer names the caller's tenant, keys come from the common endpoint.
    let (iss_tenant, key_tenant) = if multi_tenant {
        (TENANT_PLACEHOLDER, "common")
    } else {
        (tenant.as_str(), tenant.as_str())
    };
    let mut issuers = Vec::new();
    for (j, version) in versions.iter().enumerate() {
        let (iss, jwks, version) = match version.as_str() {
            "v2" => (
                format!("{instance}{iss_tenant}/v2.0"),
                format!("{instance}{key_tenant}/discovery/v2.0/keys"),
                EntraVersion::V2,
            ),
            "v1" => (
                format!("{v1_instance}{iss_tenant}/"),
                format!("{instance}{key_tenant}/discovery/keys"),
                EntraVersion::V1,
            ),
            other => {
                problems.add(
                    format!("{field}.token_versions[{j}]"),
                    format!("{other:?} is not v1 or v2"),
                );
                continue;
            }
        };
        let mut issuer = base.clone();
        let Some(name) = issuer_name(&format!("{field}.tenant"), &iss, problems) else {
            continue;
        };
        issuer.issuer = name;
        issuer.jwks = super::urls::http_url(
            raw.insecure_http,
            &format!("{field}.instance"),
            &jwks,
            problems,
        )
        .map(JwksSource::Uri);
        issuer.audiences = vec![client_id.clone(), app_id_uri.clone()];
        issuer.scope_claim = issuer.scope_claim.or(Some(ScopeClaim::Scp));
        if raw.step_up_challenge.is_none() {
            issuer.step_up_challenge = StepUpChallenge::Claims;
        }
        issuer.entra = Some(EntraToken {
            version,
            tenant: (!multi_tenant).then(|| tenant.clone()),
        });
        issuer.allowed_tenants = tenants(
            field,
            raw.allowed_tenants.as_deref(),
            &issuer.issuer,
            problems,
        );
        issuers.push(issuer);
    }
    issuers
}

fn instance_url(
    insecure_http: bool,
    field: &str,
    given: Option<&str>,
    default: &str,
    problems: &mut Problems,
) -> String {
    let text = given.unwrap_or(default);
    let with_slash = if text.ends_with('/') {
        text.to_owned()
    } else {
        format!("{text}/")
    };
    super::urls::http_url(insecure_http, field, &with_slash, problems);
    with_slash
}

fn issuer_name(field: &str, name: &str, problems: &mut Problems) -> Option<IssuerName> {
    match name.matches(TENANT_PLACEHOLDER).count() {
        0 => Some(IssuerName::Exact(name.to_owned())),
        1 => {
            let (prefix, suffix) = name.split_once(TENANT_PLACEHOLDER)?;
            Some(IssuerName::Template {
                template: name.to_owned(),
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            })
        }
        _ => {
            problems.add(field, format!("may contain {TENANT_PLACEHOLDER} once"));
            None
        }
    }
}

fn tenants(
    field: &str,
    list: Option<&[String]>,
    issuer: &IssuerName,
    problems: &mut Problems,
) -> Option<TenantAllowList> {
    let allowed = match list {
        None => None,
        Some([]) => {
            problems.add(
                format!("{field}.allowed_tenants"),
                "must not be empty (use [\"*\"] to accept every tenant)",
            );
            None
        }
        Some(list) if list.iter().any(|t| t == "*") => Some(TenantAllowList::Any),
        Some(list) => Some(TenantAllowList::Only(
            list.iter().map(|t| t.trim().to_ascii_lowercase()).collect(),
        )),
    };
    if matches!(issuer, IssuerName::Template { .. }) && allowed.is_none() {
        problems.add(
            format!("{field}.allowed_tenants"),
            "is required for a multi-tenant issuer: list the tenant ids to accept, or [\"*\"] to accept every tenant",
        );
    }
    allowed
}

fn audiences(field: &str, list: &[String], problems: &mut Problems) -> Vec<String> {
    if list.is_empty() {
        problems.add(
            format!("{field}.audiences"),
            "at least one accepted audience is required (tokens for other APIs must be refused)",
        );
    }
    for (j, aud) in list.iter().enumerate() {
        if aud.trim().is_empty() {
            problems.add(format!("{field}.audiences[{j}]"), "must not be empty");
        }
    }
    list.to_vec()
}

fn algorithms(field: &str, raw: &RawIssuer, problems: &mut Problems) -> Vec<Algorithm> {
    match &raw.algorithms {
        None => DEFAULT_ALGORITHMS.to_vec(),
        Some(list) if list.is_empty() => {
            problems.add(format!("{field}.algorithms"), "must not be empty");
            Vec::new()
        }
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(j, name)| {
                let at = format!("{field}.algorithms[{j}]");
                if name.eq_ignore_ascii_case("none") {
                    problems.add(at, "\"none\" (unsigned tokens) is never allowed");
                    return None;
                }
                Algorithm::from_str(name)
                    .map_err(|_| {
                        problems.add(
                            at,
                            format!(
                                "unknown algorithm {name:?} (RS256/384/512, PS256/384/512, \
                                 ES256/384, EdDSA, or HS256/384/512 with hmac_secret_env)"
                            ),
                        )
                    })
                    .ok()
            })
            .collect(),
    }
}

/// A JOSE `typ` as compared: lower case, without the optional `application/` (RFC 7515
/// §4.1.9).
pub(crate) fn media_type(typ: &str) -> String {
    let typ = typ.trim().to_ascii_lowercase();
    match typ.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => typ,
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits.
fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
