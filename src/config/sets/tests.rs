use super::*;

fn scope(yaml: &str) -> Scope {
    let text =
        format!("scope: {yaml}\nroutes: [{{name: r, path: {{prefix: /}}, anonymous: true}}]\n");
    parse_file(Path::new("t.yaml"), &text).unwrap().scope
}

#[test]
fn scopes_overlap_when_some_request_could_fall_in_both() {
    let orders = scope("{principals: ['spiffe://cluster.local/ns/orders/sa/api']}");
    let billing = scope("{principals: ['spiffe://cluster.local/ns/billing/*']}");
    let namespace = scope("{principals: ['spiffe://cluster.local/ns/orders/*']}");
    let context = scope("{context_extensions: {service: orders}}");
    let other_context = scope("{context_extensions: {service: billing}}");
    let host = scope("{hosts: [orders.example.com]}");
    let wildcard = scope("{hosts: ['*.example.com']}");
    assert!(!orders.overlaps(&billing));
    assert!(
        orders.overlaps(&namespace),
        "the namespace prefix takes the workload"
    );
    assert!(!namespace.overlaps(&billing));
    // A scope naming only context may meet one naming only a principal, but the
    // principal's governs such a request: they do not conflict.
    assert!(orders.overlaps(&context));
    assert!(!orders.conflicts_with(&context) && !context.conflicts_with(&host));
    assert!(orders.conflicts_with(&namespace) && host.conflicts_with(&wildcard));
    assert!(!context.overlaps(&other_context));
    assert!(host.overlaps(&wildcard));
    assert!(!host.overlaps(&scope("{hosts: [billing.example.com]}")));
    let both = scope(
        "{principals: ['spiffe://cluster.local/ns/orders/sa/api'], context_extensions: {service: orders}}",
    );
    assert!(!both.overlaps(&scope("{principals: ['spiffe://cluster.local/ns/orders/sa/api'], context_extensions: {service: admin}}")));
}

#[test]
fn a_policy_file_says_what_it_governs() {
    let problems = |text: &str| match parse_file(Path::new("team.yaml"), text) {
        Err(ConfigError::Invalid { problems, .. }) => problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{other:?}"),
    };
    let route = "routes: [{name: r, path: {prefix: /}, anonymous: true}]\n";
    assert!(problems(route).contains("scope: is required"));
    assert!(problems(&format!("scope: {{}}\n{route}")).contains("must name principals"));
    assert!(
        problems(&format!(
            "scope: {{baseline: true, hosts: [a.example.com]}}\n{route}"
        ))
        .contains("a baseline applies to every request")
    );
    assert!(
        problems(&format!(
            "scope: {{principals: ['spiffe://x/ns/a*']}}\n{route}"
        ))
        .contains("prefix ending in `/*`")
    );
    assert!(
        problems("scope: {hosts: [a.example.com]}\nroutes: []\n").contains("at least one route")
    );
    let set = parse_file(
        Path::new("dir/orders.yaml"),
        &format!("scope: {{hosts: [a.example.com]}}\naudiences: [api://orders]\n{route}"),
    )
    .unwrap();
    assert_eq!(set.name, "orders");
    assert_eq!(
        set.routes[0].name, "orders/r",
        "route names carry the file's"
    );
    assert_eq!(set.audiences, Some(vec!["api://orders".to_owned()]));
}

/// A directory in the test's own temporary place.
fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("portcullis-sets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const ORDERS: &str = "scope: {context_extensions: {service: orders}}\nroutes: [{name: read, path: {prefix: /orders}, require: {token: any}}]\n";
const BILLING: &str = "scope: {context_extensions: {service: billing}}\nroutes: [{name: read, path: {prefix: /billing}, require: {token: any}}]\n";

#[test]
fn a_broken_file_keeps_its_last_good_version_and_the_others_load() {
    let dir = dir("broken");
    std::fs::write(dir.join("orders.yaml"), ORDERS).unwrap();
    std::fs::write(dir.join("billing.yaml"), BILLING).unwrap();
    std::fs::write(dir.join(".hidden.yaml"), "not: [yaml").unwrap();
    std::fs::write(dir.join("README.md"), "ignored").unwrap();
    let (first, reports) = load_dir(&dir, &[], &[]).unwrap();
    assert_eq!(first.len(), 2);
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");

    // Billing breaks, orders changes: the new orders and the old billing serve.
    std::fs::write(dir.join("billing.yaml"), "scope: {context_extensions: {service: billing}}\nroutes: [{name: read, path: {prefx: /billing}}]\n").unwrap();
    std::fs::write(
        dir.join("orders.yaml"),
        ORDERS.replace("/orders", "/orders/v2"),
    )
    .unwrap();
    let (second, reports) = load_dir(&dir, &first, &[]).unwrap();
    let billing = second.iter().find(|s| s.name == "billing").unwrap();
    assert_eq!(
        billing.routes[0].path,
        crate::config::PathMatch::Prefix("/billing".into())
    );
    let orders = second.iter().find(|s| s.name == "orders").unwrap();
    assert_eq!(
        orders.routes[0].path,
        crate::config::PathMatch::Prefix("/orders/v2".into())
    );
    let refused: Vec<&FileReport> = reports.iter().filter(|r| r.problem.is_some()).collect();
    assert_eq!(refused.len(), 1);
    let problem = refused[0].problem.as_ref().unwrap();
    assert!(
        problem.contains("billing.yaml") && problem.contains("prefx"),
        "{problem}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overlapping_team_files_are_refused_naming_both() {
    let dir = dir("overlap");
    std::fs::write(dir.join("a-orders.yaml"), ORDERS).unwrap();
    std::fs::write(
        dir.join("b-orders-too.yaml"),
        ORDERS.replace("/orders", "/other"),
    )
    .unwrap();
    std::fs::write(dir.join("c-baseline.yaml"), "scope: {baseline: true}\nroutes: [{name: any, path: {prefix: /}, require: {token: any}}]\n").unwrap();
    let (sets, reports) = load_dir(&dir, &[], &[]).unwrap();
    let names: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["a-orders", "c-baseline"],
        "a baseline overlaps nobody"
    );
    let problem = reports.iter().find_map(|r| r.problem.clone()).unwrap();
    assert!(
        problem.contains("b-orders-too.yaml") && problem.contains("a-orders.yaml"),
        "{problem}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
