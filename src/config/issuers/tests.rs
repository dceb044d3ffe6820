use crate::config::{Config, ConfigError, IssuerName, JwksSource, TenantAllowList};

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";

fn config(issuers: &str) -> Result<Config, Vec<String>> {
    let yaml = format!(
        "issuers:\n{issuers}\nroutes: [{{name: r, path: {{prefix: /}}, anonymous: true}}]\n"
    );
    Config::from_yaml(&yaml, "t").map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    })
}

#[test]
fn entra_single_tenant_expands_to_v2_and_v1_issuers() {
    let c = config(&format!(
        "  - entra: {{ tenant: {TENANT}, client_id: {CLIENT} }}"
    ))
    .unwrap();
    assert_eq!(c.issuers.len(), 2);
    let v2 = &c.issuers[0];
    assert_eq!(
        v2.issuer,
        IssuerName::Exact(format!("https://login.microsoftonline.com/{TENANT}/v2.0"))
    );
    assert_eq!(
        v2.jwks,
        Some(JwksSource::Uri(
            format!("https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys")
                .parse()
                .unwrap()
        ))
    );
    assert_eq!(v2.audiences, [CLIENT.to_owned(), format!("api://{CLIENT}")]);
    let v1 = &c.issuers[1];
    assert_eq!(
        v1.issuer,
        IssuerName::Exact(format!("https://sts.windows.net/{TENANT}/"))
    );
    assert_eq!(
        v1.jwks,
        Some(JwksSource::Uri(
            format!("https://login.microsoftonline.com/{TENANT}/discovery/keys")
                .parse()
                .unwrap()
        ))
    );
}

#[test]
fn entra_multi_tenant_is_a_template_with_common_keys_and_needs_a_tenant_list() {
    let problems = config(&format!(
        "  - entra: {{ tenant: organizations, client_id: {CLIENT} }}"
    ))
    .unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("allowed_tenants: is required")),
        "{problems:?}"
    );
    let c = config(&format!(
            "  - entra: {{ tenant: organizations, client_id: {CLIENT}, token_versions: [v2] }}\n    allowed_tenants: [{TENANT}]"
        ))
        .unwrap();
    let v2 = &c.issuers[0];
    assert!(
        matches!(&v2.issuer, IssuerName::Template { prefix, suffix, .. }
            if prefix == "https://login.microsoftonline.com/" && suffix == "/v2.0")
    );
    assert_eq!(
        v2.jwks,
        Some(JwksSource::Uri(
            "https://login.microsoftonline.com/common/discovery/v2.0/keys"
                .parse()
                .unwrap()
        ))
    );
    assert_eq!(
        v2.allowed_tenants,
        Some(TenantAllowList::Only(vec![TENANT.to_owned()]))
    );
}

#[test]
fn entra_refuses_domain_names_and_conflicting_fields() {
    let problems = config(
            "  - entra: { tenant: contoso.onmicrosoft.com, client_id: my-api, token_versions: [v3] }\n    issuer: x\n    audiences: [y]"
        )
        .unwrap_err();
    for field in [
        "entra.tenant",
        "entra.client_id",
        "entra.token_versions[0]",
        "issuers[0].issuer",
        "issuers[0].audiences",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(field)),
            "{field} missing in {problems:?}"
        );
    }
}

#[test]
fn issuer_without_jwks_uri_uses_discovery() {
    let c =
        config("  - issuer: https://idp.example.com/realms/shop\n    audiences: [shop]").unwrap();
    assert_eq!(
        c.issuers[0].jwks,
        Some(JwksSource::Discovery(
            "https://idp.example.com/realms/shop/.well-known/openid-configuration"
                .parse()
                .unwrap()
        ))
    );
}

#[test]
fn templates_need_a_jwks_uri_and_a_tenant_list() {
    let problems =
        config("  - issuer: https://login.example.com/{tenantid}/v2.0\n    audiences: [a]")
            .unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("issuers[0].jwks_uri")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("issuers[0].allowed_tenants")),
        "{problems:?}"
    );
    let any = config(
            "  - issuer: https://login.example.com/{tenantid}/v2.0\n    jwks_uri: https://login.example.com/keys\n    audiences: [a]\n    allowed_tenants: ['*']",
        )
        .unwrap();
    assert_eq!(any.issuers[0].allowed_tenants, Some(TenantAllowList::Any));
}

#[test]
fn require_typ_is_normalised() {
    let c = config("  - issuer: https://idp/\n    jwks_uri: https://idp/k\n    audiences: [a]\n    require_typ: AT+JWT").unwrap();
    assert_eq!(c.issuers[0].require_typ, Some(vec!["at+jwt".to_owned()]));
    let c = config("  - issuer: https://idp/\n    jwks_uri: https://idp/k\n    audiences: [a]\n    require_typ: [application/AT+JWT, JWT]").unwrap();
    assert_eq!(
        c.issuers[0].require_typ,
        Some(vec!["at+jwt".to_owned(), "jwt".to_owned()])
    );
}

#[test]
fn binary_hmac_secrets_come_from_a_file_or_base64() {
    assert_eq!(
        crate::config::secrets::base64_secret("AP8A/w=="),
        Some(vec![0, 255, 0, 255])
    );
    assert_eq!(
        crate::config::secrets::base64_secret("AP8A_w"),
        Some(vec![0, 255, 0, 255])
    );
    assert_eq!(crate::config::secrets::base64_secret("not base64!"), None);
    let dir = std::env::temp_dir().join(format!("portcullis-hmac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("secret");
    let secret: Vec<u8> = (0u8..48).map(|b| b.wrapping_mul(151)).collect();
    std::fs::write(&file, &secret).unwrap();
    let yaml = format!(
        "  - issuer: https://idp/\n    audiences: [a]\n    algorithms: [HS256]\n    hmac_secret_file: {}",
        file.display()
    );
    let c = config(&yaml).unwrap();
    assert_eq!(c.issuers[0].hmac_secret.as_ref().unwrap().0, secret);
    std::fs::write(&file, b"short").unwrap();
    let problems = config(&yaml).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("fewer than 32 bytes")),
        "{problems:?}"
    );
    let both = format!("{yaml}\n    hmac_secret_env: X");
    let problems = config(&both).unwrap_err();
    assert!(
        problems.iter().any(|p| p.contains("one way only")),
        "{problems:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn entra_issuers_challenge_step_up_with_claims_unless_told_otherwise() {
    use crate::config::StepUpChallenge;
    let c = config(&format!(
        "  - entra: {{ tenant: {TENANT}, client_id: {CLIENT} }}"
    ))
    .unwrap();
    assert!(
        c.issuers
            .iter()
            .all(|i| i.step_up_challenge == StepUpChallenge::Claims)
    );
    let c = config(&format!(
        "  - entra: {{ tenant: {TENANT}, client_id: {CLIENT} }}\n    step_up_challenge: rfc9470"
    ))
    .unwrap();
    assert!(
        c.issuers
            .iter()
            .all(|i| i.step_up_challenge == StepUpChallenge::Rfc9470)
    );
}
