use super::*;

#[test]
fn exposition_carries_observed_values_with_bounded_labels() {
    let metrics = Metrics::new();
    metrics.check(true, "none", Arc::from("orders"), 0.0002);
    metrics.check(false, "expired", Arc::from("orders"), 0.0001);
    metrics.check(false, "expired", Arc::from("orders"), 0.0001);
    metrics.jwks_fetch("https://idp/", "ok");
    metrics.jwks_keys("https://idp/", 2);
    metrics.jwks_age("https://idp/", None);
    metrics.config_reload(false);
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"portcullis_check_duration_seconds_count{decision="deny",reason="expired",route="orders"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"portcullis_jwks_fetches_total{issuer="https://idp/",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"portcullis_jwks_keys{issuer="https://idp/"} 2"#),
        "{text}"
    );
    assert!(
        !text.contains("portcullis_jwks_age_seconds{"),
        "no sentinel: {text}"
    );
    assert!(
        text.contains(r#"portcullis_config_reloads_total{outcome="invalid"} 1"#),
        "{text}"
    );
    for line in [
        r#"portcullis_config_reloads_total{outcome="ok"} 0"#,
        r#"portcullis_build_info{version=""#,
        r#"",commit=""#,
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_cpu_seconds_total ",
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
}

#[test]
fn alerting_series_exist_from_the_start() {
    let metrics = Metrics::new();
    metrics.prepare_routes(&[Arc::from("orders")]);
    metrics.prepare_issuers(["https://idp/"]);
    let text = metrics.encode();
    for line in [
        r#"portcullis_check_duration_seconds_count{decision="allow",reason="none",route="orders"} 0"#,
        r#"portcullis_check_duration_seconds_count{decision="deny",reason="missing_token",route="orders"} 0"#,
        r#"portcullis_check_duration_seconds_count{decision="deny",reason="no_route",route=""} 0"#,
        r#"portcullis_jwks_fetches_total{issuer="https://idp/",outcome="unreachable"} 0"#,
        r#"portcullis_connections_refused_total{listener="grpc",cause="over_capacity"} 0"#,
    ] {
        assert!(text.contains(line), "{line} missing in {text}");
    }
}
