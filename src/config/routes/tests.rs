use crate::config::requirements::bare_scope;
use crate::config::{
    Access, Condition, Config, ConfigError, HostMatch, PathMatch, PathSegment, TokenKind,
};

fn routes(yaml: &str) -> Result<Config, Vec<String>> {
    let text = format!(
        "issuers: [{{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}}]\nroutes:\n{yaml}"
    );
    Config::from_yaml(&text, "t").map_err(|e| match e {
        ConfigError::Invalid { problems, .. } => problems.iter().map(ToString::to_string).collect(),
        other => vec![other.to_string()],
    })
}

#[test]
fn full_form_scopes_become_bare_names() {
    assert_eq!(
        bare_scope("api://6e74172b-be56-4843-9ff4-e66a39bb12e3/Orders.Read"),
        "Orders.Read"
    );
    assert_eq!(
        bare_scope("https://contoso.com/orders/Orders.Read"),
        "Orders.Read"
    );
    assert_eq!(bare_scope("Orders.Read"), "Orders.Read");
    let c = routes(
        "  - name: r\n    path: { prefix: / }\n    require: { scopes: ['api://x/Orders.Read'] }\n",
    )
    .unwrap();
    assert_eq!(
        c.routes[0].access,
        Access::Require {
            all: vec![Condition::Scopes(vec!["Orders.Read".into()])],
            any: vec![]
        }
    );
}

#[test]
fn hosts_templates_and_conditions_parse() {
    let c = routes(
            "  - name: r\n    hosts: [API.example.com, '*.example.org']\n    path: { template: '/files/{id}/**' }\n    audit: true\n    require:\n      token: delegated\n      tenants: [T1]\n      claims: [{ claim: groups, contains: admins }]\n    require_any:\n      - scopes_any: [A, B]\n      - roles: [R]\n",
        )
        .unwrap();
    let r = &c.routes[0];
    assert_eq!(
        r.hosts,
        Some(vec![
            HostMatch::Exact("api.example.com".into()),
            HostMatch::Suffix(".example.org".into())
        ])
    );
    assert_eq!(
        r.path,
        PathMatch::Template {
            pattern: "/files/{id}/**".into(),
            segments: vec![
                PathSegment::Literal("files".into()),
                PathSegment::One,
                PathSegment::Rest
            ],
        }
    );
    assert!(r.audit);
    let Access::Require { all, any } = &r.access else {
        panic!("not anonymous")
    };
    assert_eq!(all[0], Condition::Tenants(vec!["t1".into()]));
    assert!(all.contains(&Condition::Token(TokenKind::Delegated)));
    assert_eq!(any.len(), 2);
}

#[test]
fn bad_routes_are_refused_with_their_field() {
    let problems = routes(
            "  - name: a\n    path: { template: '/x/**/y' }\n    require: { scopes: [] }\n  - name: b\n    hosts: ['a.example.com:80']\n    path: { template: '/x/a{id}' }\n    require: { token: robots }\n  - name: c\n    path: { prefix: /c }\n  - name: d\n    path: { template: /plain }\n    require: { claims: [{ claim: x, equals: a, contains: b }] }\n",
        )
        .unwrap_err();
    for field in [
        "routes[0].path.template: `**` may only",
        "routes[0].require.scopes: must not be empty",
        "routes[1].hosts[0]",
        "routes[1].path.template: segment",
        "routes[1].require.token",
        "routes[2].require: a route needs",
        "routes[3].path.template: has no",
        "routes[3].require.claims[0]",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(field)),
            "{field} missing in {problems:#?}"
        );
    }
}

#[test]
fn an_ownership_condition_names_a_parameter_of_its_template() {
    let c = routes(
        "  - name: r\n    path: { template: '/users/{user}/orders/**' }\n    require: { claims: [{ claim: oid, equals_param: user }] }\n",
    )
    .unwrap();
    assert_eq!(
        c.routes[0].access,
        Access::Require {
            all: vec![Condition::ClaimEqualsParam {
                claim: "oid".into(),
                param: "user".into(),
                segment: 1,
                ignore_case: false,
            }],
            any: vec![]
        }
    );
    let problems = routes(
        "  - name: a\n    path: { template: '/users/{id}' }\n    require: { claims: [{ claim: oid, equals_param: user }] }\n  - name: b\n    path: { prefix: /users }\n    require_any: [{ claims: [{ claim: oid, equals_param: user }] }]\n  - name: c\n    path: { template: '/x/{id}' }\n    require: { claims: [{ claim: oid, equals: x, ignore_case: true }] }\n  - name: d\n    path: { template: '/y/{id}' }\n    require: { claims: [{ claim: oid, equals: x, equals_param: id }] }\n",
    )
    .unwrap_err()
    .join("\n");
    for expected in [
        "routes[0].require: `equals_param: user`: the route's path must be a template with a `{user}` segment",
        "routes[1].require: `equals_param: user`",
        "routes[2].require.claims[0].ignore_case: only applies to `equals_param`",
        "routes[3].require.claims[0]: needs exactly one of",
    ] {
        assert!(
            problems.contains(expected),
            "{expected:?} missing in\n{problems}"
        );
    }
}
