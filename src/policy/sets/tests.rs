use std::path::Path;

use super::*;
use crate::config::sets::parse_file;

/// A configuration with these policy files (name, scope) and no routes of its own.
fn policies(files: &[(&str, &str)]) -> Policies {
    let mut config = Config::from_yaml(
        "issuers: [{ issuer: https://idp.example.com, audiences: [api] }]\npolicy_dir: /p\n",
        "test",
    )
    .unwrap();
    config.sets = files
        .iter()
        .map(|(name, scope)| {
            let text = format!(
                "scope: {scope}\nroutes: [{{ name: r, path: {{ prefix: / }}, anonymous: true }}]\n"
            );
            parse_file(Path::new(&format!("/p/{name}.yaml")), &text).unwrap()
        })
        .collect();
    Policies::new(&config)
}

fn governing(
    policies: &Policies,
    principal: &str,
    context: &[(&str, &str)],
    host: &str,
) -> Option<String> {
    let context: HashMap<String, String> = context
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let scoped = Scoped {
        principal,
        context: Some(&context).filter(|c| !c.is_empty()),
        host,
    };
    policies
        .select(&scoped)
        .governing
        .map(|set| set.name.to_string())
}

#[test]
fn the_index_finds_the_set_whose_scope_the_request_falls_in() {
    let policies = policies(&[
        ("orders", "{ principals: ['spiffe://td/ns/orders/*'] }"),
        (
            "billing",
            "{ principals: ['spiffe://td/ns/billing/sa/api'], context_extensions: { tier: web } }",
        ),
        (
            "catalog",
            "{ context_extensions: { service: catalog }, hosts: [internal.example.com] }",
        ),
        (
            "shop",
            "{ hosts: ['*.shop.example.com', shop.example.com] }",
        ),
        ("platform", "{ baseline: true }"),
    ]);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str, Option<&'a str>);
    let cases: [Case<'_>; 12] = [
        ("spiffe://td/ns/orders/sa/api", &[], "x", Some("orders")),
        (
            "spiffe://td/ns/orders/sa/worker",
            &[("service", "catalog")],
            "x",
            Some("orders"),
        ),
        ("spiffe://td/ns/ordersx/sa/api", &[], "x", None),
        (
            "spiffe://td/ns/billing/sa/api",
            &[("tier", "web")],
            "x",
            Some("billing"),
        ),
        // Every dimension a scope names must hold.
        ("spiffe://td/ns/billing/sa/api", &[], "x", None),
        (
            "",
            &[("service", "catalog")],
            "internal.example.com",
            Some("catalog"),
        ),
        ("", &[("service", "catalog")], "other.example.com", None),
        ("", &[], "eu.shop.example.com", Some("shop")),
        ("", &[], "shop.example.com", Some("shop")),
        ("", &[], "evilshop.example.com", None),
        // In several scopes: the strongest kind governs (the workload, then the route's
        // context, then the host the client wrote).
        (
            "spiffe://td/ns/orders/sa/api",
            &[("service", "catalog")],
            "shop.example.com",
            Some("orders"),
        ),
        (
            "",
            &[("service", "catalog")],
            "internal.example.com",
            Some("catalog"),
        ),
    ];
    for (principal, context, host, expected) in cases {
        assert_eq!(
            governing(&policies, principal, context, host).as_deref(),
            expected,
            "{principal} {context:?} {host}"
        );
    }
    let scoped = Scoped::default();
    assert_eq!(
        policies.select(&scoped).baselines.len(),
        1,
        "a baseline judges every request"
    );
}

#[test]
fn a_set_takes_tokens_of_its_issuers_for_its_audiences_only() {
    let mut config = Config::from_yaml(
        "issuers: [{ issuer: https://idp.example.com, audiences: [orders, billing] }]\npolicy_dir: /p\n",
        "test",
    )
    .unwrap();
    let text = "scope: { hosts: [a.example.com] }\naudiences: [orders]\nroutes: [{ name: r, path: { prefix: / }, require: { token: any } }]\n";
    config.sets = vec![parse_file(Path::new("/p/orders.yaml"), text).unwrap()];
    let policies = Policies::new(&config);
    let set = policies
        .select(&Scoped {
            host: "a.example.com",
            ..Scoped::default()
        })
        .governing
        .unwrap();
    let claims = |issuer: &str, aud: serde_json::Value| {
        let serde_json::Value::Object(map) =
            serde_json::json!({ "aud": aud, "scp": "Orders.Read" })
        else {
            unreachable!()
        };
        VerifiedClaims::new(Arc::from(issuer), map).unwrap()
    };
    assert!(
        set.accepts(&claims("https://idp.example.com", "orders".into()))
            .is_ok()
    );
    assert!(
        set.accepts(&claims(
            "https://idp.example.com",
            serde_json::json!(["x", "orders"])
        ))
        .is_ok()
    );
    let reason = |result: Result<(), Deny>| result.err().map(|deny| deny.reason);
    assert_eq!(
        reason(set.accepts(&claims("https://idp.example.com", "billing".into()))),
        Some(DenyReason::WrongAudience)
    );
    assert_eq!(
        reason(set.accepts(&claims("https://other.example.com", "orders".into()))),
        Some(DenyReason::UnknownIssuer)
    );
}
