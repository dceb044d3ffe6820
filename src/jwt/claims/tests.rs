use super::*;
use serde_json::json;

fn claims(value: Value) -> Result<VerifiedClaims, DenyReason> {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::new("https://idp/".into(), map)
}

#[test]
fn scopes_come_from_scp_or_scope_in_string_or_array_form() {
    let c = claims(json!({"scp": "Orders.Read  Orders.Write"})).unwrap();
    assert_eq!(
        c.scopes().collect::<Vec<_>>(),
        ["Orders.Read", "Orders.Write"]
    );
    let c = claims(json!({"scope": ["a", "b"]})).unwrap();
    assert_eq!(c.scopes().collect::<Vec<_>>(), ["a", "b"]);
    let c = claims(json!({"roles": ["Orders.Read.All"]})).unwrap();
    assert!(c.has_role("Orders.Read.All") && c.scopes().next().is_none());
}

fn read(value: Value, rules: ClaimRules) -> Result<VerifiedClaims, DenyReason> {
    let Value::Object(map) = value else {
        unreachable!("test claims are objects")
    };
    VerifiedClaims::read("https://idp/".into(), map.into(), rules)
}

#[test]
fn a_second_scope_claim_never_widens_the_first() {
    let both = json!({"scp": "User.Read", "scope": "Orders.ReadFull"});
    // No claim named: which one the issuer meant is unknown, so neither is read.
    assert_eq!(claims(both.clone()), Err(DenyReason::MalformedToken));
    let scp = ClaimRules {
        scope_claim: Some("scp"),
        ..ClaimRules::default()
    };
    assert_eq!(
        read(both.clone(), scp)
            .unwrap()
            .scopes()
            .collect::<Vec<_>>(),
        ["User.Read"]
    );
    let scope = ClaimRules {
        scope_claim: Some("scope"),
        ..ClaimRules::default()
    };
    assert_eq!(
        read(both, scope).unwrap().scopes().collect::<Vec<_>>(),
        ["Orders.ReadFull"]
    );
    assert!(
        read(json!({"scope": "a"}), scp)
            .unwrap()
            .scopes()
            .next()
            .is_none()
    );
}

#[test]
fn an_entra_token_names_its_caller_in_its_version_s_claim() {
    let v2 = ClaimRules {
        scope_claim: Some("scp"),
        client_claim: Some("azp"),
        ..ClaimRules::default()
    };
    let v1 = ClaimRules {
        client_claim: Some("appid"),
        ..v2
    };
    assert_eq!(
        read(json!({"scp": "x", "azp": "app"}), v2)
            .unwrap()
            .client_id(),
        Some("app")
    );
    assert_eq!(
        read(json!({"scp": "x", "appid": "app"}), v2)
            .unwrap()
            .client_id(),
        None
    );
    assert_eq!(
        read(json!({"scp": "x", "appid": "app"}), v1)
            .unwrap()
            .client_id(),
        Some("app")
    );
    assert_eq!(
        read(json!({"scp": "x", "azp": "app"}), v1)
            .unwrap()
            .client_id(),
        None
    );
    // Several, disagreeing, are still malformed.
    assert_eq!(
        read(json!({"scp": "x", "azp": "a", "appid": "b"}), v2),
        Err(DenyReason::MalformedToken)
    );
}

#[test]
fn claim_shapes_are_read_as_issuers_mean_them() {
    // (claims, scopes, roles)
    let cases: &[(Value, &[&str], &[&str])] = &[
        (
            json!({"scp": "User.Read\tOrders.Read"}),
            &["User.Read\tOrders.Read"],
            &[],
        ),
        (
            json!({"scp": "User.Read\u{a0}Orders.Read"}),
            &["User.Read\u{a0}Orders.Read"],
            &[],
        ),
        (json!({"scope": " a  b "}), &["a", "b"], &[]),
        (
            json!({"roles": "Orders.Viewer Admin"}),
            &[],
            &["Orders.Viewer Admin"],
        ),
        (json!({"roles": ""}), &[], &[]),
        (json!({"roles": ["A B", "C"]}), &[], &["A B", "C"]),
    ];
    for (value, scopes, roles) in cases {
        let c = claims(value.clone()).unwrap();
        assert_eq!(c.scopes().collect::<Vec<_>>(), *scopes, "{value}");
        assert_eq!(c.roles().collect::<Vec<_>>(), *roles, "{value}");
    }
    let tabbed = claims(json!({"scp": "User.Read\tOrders.Read"})).unwrap();
    assert!(!tabbed.has_scope("Orders.Read") && !tabbed.has_scope("User.Read"));
    let split = claims(json!({"roles": "Orders.Viewer Admin"})).unwrap();
    assert!(!split.has_role("Admin"));
}

#[test]
fn id_refresh_and_logout_tokens_are_never_access_tokens() {
    let refused = [
        json!({"sub": "u", "nonce": "n", "aud": "client", "roles": ["Admin"]}),
        json!({"scp": "a", "at_hash": "h"}),
        json!({"scp": "a", "c_hash": "h"}),
        json!({"scope": "openid", "typ": "ID"}),
        json!({"scope": "openid", "typ": "Refresh"}),
        json!({"scope": "openid", "typ": "logout"}),
        json!({"scope": "openid", "typ": "Offline"}),
        json!({"scope": "openid", "s_hash": "h"}),
        json!({"scope": "x", "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}),
        json!({"scope": "openid", "token_use": "id"}),
    ];
    for value in refused {
        assert_eq!(
            claims(value.clone()),
            Err(DenyReason::NotAccessToken),
            "{value}"
        );
    }
    assert!(claims(json!({"scope": "openid", "typ": "Bearer"})).is_ok());
    assert!(claims(json!({"scope": "openid", "token_use": "access"})).is_ok());
}

#[test]
fn the_identity_provider_guide_lists_every_mark() {
    let readme = include_str!("../../../docs/src/guides/identity-providers.md");
    for mark in NOT_ACCESS_TOKEN_MARKS {
        assert!(
            readme.contains(&format!("| `{}` | {} |", mark.claim, mark.why)),
            "{}",
            mark.claim
        );
    }
}

#[test]
fn matching_is_exact() {
    let c = claims(json!({"scp": "Orders.ReadWrite", "roles": ["Admin"]})).unwrap();
    assert!(!c.has_scope("Orders.Read"));
    assert!(!c.has_scope("orders.readwrite"));
    assert!(!c.has_role("admin"));
    assert!(c.has_scope("Orders.ReadWrite"));
}

#[test]
fn id_tokens_and_malformed_permission_claims_are_refused() {
    assert_eq!(
        claims(json!({"sub": "u", "nonce": "n", "aud": "client"})),
        Err(DenyReason::NotAccessToken)
    );
    assert_eq!(claims(json!({"scp": 7})), Err(DenyReason::MalformedToken));
    assert_eq!(
        claims(json!({"roles": [1]})),
        Err(DenyReason::MalformedToken)
    );
}

#[test]
fn the_calling_app_has_one_name_whichever_claim_carries_it() {
    for claim in ["azp", "appid", "client_id", "cid"] {
        let c = claims(json!({"scp": "x", claim: "app-1"})).unwrap();
        assert_eq!(c.client_id(), Some("app-1"), "{claim}");
    }
    let agreeing = claims(json!({"scp": "x", "azp": "app", "appid": "app"})).unwrap();
    assert_eq!(agreeing.client_id(), Some("app"));
    for disagreeing in [
        json!({"scp": "x", "azp": "app-2", "appid": "app-1"}),
        json!({"scp": "x", "azp": "app-2", "client_id": "app-1"}),
        json!({"scp": "x", "azp": 7}),
    ] {
        assert_eq!(
            claims(disagreeing.clone()),
            Err(DenyReason::MalformedToken),
            "{disagreeing}"
        );
    }
}
