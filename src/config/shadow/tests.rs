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

mod index {
    use proptest::prelude::*;

    use super::super::covers;
    use crate::config::{Config, RouteConfig, RouteIndex};

    /// The route of a generated pattern (exact, prefix, template; literals and
    /// wildcards) as the config file gives it; `None` when the file refuses it.
    fn route_of(kind: &str, segments: &[&str], slash: bool) -> Option<RouteConfig> {
        let mut path = format!("/{}", segments.join("/"));
        if slash && path != "/" {
            path.push('/');
        }
        let text = format!(
            "issuers: [{{issuer: i, jwks_uri: 'https://i/k', audiences: [a]}}]\nroutes: [{{ name: r, path: {{ {kind}: '{path}' }}, anonymous: true }}]"
        );
        Config::from_yaml(&text, "t")
            .ok()
            .map(|mut c| c.routes.remove(0))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The load-time check finds, through the index, the first earlier route that
        /// covers each route, as comparing every pair would.
        #[test]
        fn the_index_offers_every_route_that_could_cover(
            generated in prop::collection::vec(
                (
                    prop::sample::select(&["exact", "prefix", "template"][..]),
                    prop::collection::vec(prop::sample::select(&["a", "b", "{id}", "**"][..]), 0..4),
                    any::<bool>(),
                ),
                1..10,
            ),
        ) {
            let routes: Vec<RouteConfig> = generated
                .iter()
                .filter_map(|(kind, segments, slash)| route_of(kind, segments, *slash))
                .collect();
            let mut index = RouteIndex::default();
            for (position, route) in routes.iter().enumerate() {
                let scanned = routes[..position].iter().position(|e| covers(e, route));
                let indexed = index
                    .covering_candidates(&route.path)
                    .into_iter()
                    .find(|&e| covers(&routes[e], route));
                prop_assert_eq!(indexed, scanned, "{:?}", route.path);
                index.insert(position, &route.path);
            }
        }
    }
}
