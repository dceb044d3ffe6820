use crate::config::{Config, ConfigError};

fn problems(routes: &str) -> Vec<String> {
    let text = format!(
        "issuers: [{{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}}]\nroutes:\n{routes}"
    );
    match Config::from_yaml(&text, "t") {
        Ok(_) => Vec::new(),
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => vec![other.to_string()],
    }
}

fn route(name: &str, matcher: &str) -> String {
    format!("  - {{ name: {name}, {matcher}, anonymous: true }}\n")
}

#[test]
fn unreachable_routes_are_refused() {
    let shadowed = [
        ("path: { prefix: /api }", "path: { exact: /api/orders }"),
        ("path: { prefix: /api }", "path: { template: '/api/{id}' }"),
        (
            "path: { prefix: / }",
            "methods: [GET], path: { prefix: /x }",
        ),
        (
            "path: { template: '/files/**' }",
            "path: { prefix: /files/a }",
        ),
        ("path: { template: '/o/{id}' }", "path: { exact: /o/7 }"),
        (
            "methods: [GET, POST], path: { exact: /a }",
            "methods: [GET], path: { exact: /a }",
        ),
        (
            "hosts: ['*.example.com'], path: { prefix: / }",
            "hosts: [a.example.com], path: { prefix: /x }",
        ),
    ];
    for (first, second) in shadowed {
        let p = problems(&format!(
            "{}{}",
            route("first", first),
            route("second", second)
        ));
        assert!(
            p.iter()
                .any(|p| p.starts_with("routes[1]: can never match: route \"first\"")),
            "{first} / {second}: {p:?}"
        );
    }
}

#[test]
fn reachable_routes_are_accepted() {
    let fine = [
        ("path: { exact: /api/orders }", "path: { prefix: /api }"),
        (
            "path: { prefix: /api/orders }",
            "path: { prefix: /api/ordersX }",
        ),
        (
            "methods: [GET], path: { prefix: / }",
            "path: { prefix: /x }",
        ),
        (
            "hosts: [a.example.com], path: { prefix: / }",
            "hosts: ['*.example.com'], path: { prefix: / }",
        ),
        (
            "path: { template: '/o/{id}' }",
            "path: { exact: /o/7/lines }",
        ),
        (
            "path: { template: '/o/{id}/x' }",
            "path: { template: '/o/{id}/**' }",
        ),
    ];
    for (first, second) in fine {
        let p = problems(&format!(
            "{}{}",
            route("first", first),
            route("second", second)
        ));
        assert!(p.is_empty(), "{first} / {second}: {p:?}");
    }
}
