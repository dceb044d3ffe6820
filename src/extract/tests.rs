use super::*;
use crate::pb::{
    auth::{
        AttributeContext,
        attribute_context::{HttpRequest, Request},
    },
    core::{HeaderMap, HeaderValue},
};
use crate::upstream::{Frameworks, Reading};

fn request(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(http),
            }),
            ..Default::default()
        }),
    }
}

fn with_headers(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    check_request("GET", "api.example.com", path, headers)
}

#[test]
fn reads_method_host_path_and_header_map_form() {
    let mut http = HttpRequest {
        method: "GET".into(),
        host: "API.example.com:8443".into(),
        path: "/api/orders?x=1".into(),
        id: "req-1".into(),
        ..Default::default()
    };
    http.headers
        .insert("authorization".into(), "Bearer abc".into());
    let req = request(http.clone());
    let view = extract(&req, 100, RequestBody::NotSent).unwrap();
    assert_eq!(view.method, "GET");
    assert_eq!(view.host, "api.example.com");
    assert_eq!(view.path, "/api/orders");
    assert_eq!(view.credential.map(|c| c.token), Ok("abc"));
    assert_eq!(view.authority, "API.example.com:8443");
    assert_eq!(view.request_id, "req-1");

    http.headers.clear();
    http.header_map = Some(HeaderMap {
        headers: vec![
            HeaderValue {
                key: "x-latin1".into(),
                value: String::new(),
                raw_value: vec![0xe9],
            },
            HeaderValue {
                key: "authorization".into(),
                value: String::new(),
                raw_value: b"Bearer raw".to_vec(),
            },
        ],
    });
    let req = request(http);
    assert_eq!(
        extract(&req, 100, RequestBody::NotSent)
            .unwrap()
            .credential
            .map(|c| c.token),
        Ok("raw"),
        "a header the view does not read may be any bytes"
    );
}

#[test]
fn two_raw_authorization_headers_are_malformed() {
    let header = HeaderValue {
        key: "Authorization".into(),
        value: "Bearer a".into(),
        raw_value: Vec::new(),
    };
    let req = request(HttpRequest {
        header_map: Some(HeaderMap {
            headers: vec![header.clone(), header],
        }),
        ..Default::default()
    });
    assert_eq!(
        extract(&req, 100, RequestBody::NotSent).unwrap().credential,
        Err(DenyReason::MalformedAuthorization)
    );
}

#[test]
fn the_trace_context_is_read_in_the_same_visit() {
    let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let req = with_headers("/", &[("traceparent", tp), ("tracestate", "a=b")]);
    let view = extract(&req, 100, RequestBody::NotSent).unwrap();
    assert_eq!((view.traceparent, view.tracestate), (Some(tp), Some("a=b")));
}

#[test]
fn too_many_headers_are_an_invalid_request() {
    let mut http = HttpRequest::default();
    for i in 0..11 {
        http.headers.insert(format!("x-{i}"), "v".into());
    }
    let req = request(http);
    assert_eq!(
        extract(&req, 10, RequestBody::NotSent),
        Err(DenyReason::InvalidRequest)
    );
    assert!(extract(&req, 11, RequestBody::NotSent).is_ok());
}

#[test]
fn missing_http_attributes_are_an_invalid_request() {
    assert_eq!(
        extract(&CheckRequest::default(), 100, RequestBody::NotSent),
        Err(DenyReason::InvalidRequest)
    );
}

#[test]
fn hosts_are_canonical_or_refused() {
    let ok = [
        ("api.example.com", "api.example.com"),
        ("API.Example.COM", "api.example.com"),
        ("api.example.com.", "api.example.com"),
        ("api.example.com:443", "api.example.com"),
        ("api.example.com.:8443", "api.example.com"),
        ("internal_host", "internal_host"),
        ("10.0.0.1:80", "10.0.0.1"),
        ("[::1]:9001", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("", ""),
    ];
    for (authority, host) in ok {
        assert_eq!(
            canonical_host(authority).as_deref(),
            Ok(host),
            "{authority}"
        );
    }
    for bad in [
        "admin.example.com..",
        "www.example.com:80@admin.example.com",
        "admin%2eexample.com",
        "a.example.com,b.example.com",
        "host:80:80",
        "host:",
        "host:123456",
        "host:70000",
        "host:+80",
        "[::1",
        "[::1]80",
        "[not-v6]",
        ".example.com",
        "a..b",
        "exa mple.com",
        "example.com/admin",
        "ex\u{e4}mple.com",
    ] {
        assert_eq!(
            canonical_host(bad),
            Err(DenyReason::InvalidRequest),
            "{bad:?}"
        );
    }
}

/// The overrides a request carries, as (method, frameworks) pairs.
fn overrides(req: &CheckRequest) -> Vec<(Option<String>, Frameworks)> {
    extract(req, 100, RequestBody::NotSent)
        .unwrap()
        .overrides
        .into_iter()
        .map(|o| (o.method.map(|m| m.into_owned()), o.by))
        .collect()
}

fn by(reading: Reading) -> Frameworks {
    reading.entry().frameworks
}

#[test]
fn method_overrides_are_found_in_headers_and_the_query() {
    assert_eq!(overrides(&with_headers("/api/orders", &[])), []);
    for name in METHOD_OVERRIDE_HEADERS {
        let req = with_headers("/api/orders", &[(name, " DELETE ")]);
        assert_eq!(
            overrides(&req),
            [(Some("DELETE".into()), by(Reading::OverrideHeaders))],
            "{name}"
        );
    }
    for query in [
        "_method=DELETE",
        "a=1&_method=DELETE",
        "%5Fmethod=DELETE",
        "a=1;_METHOD=DELETE",
    ] {
        let req = with_headers(&format!("/api/orders?{query}"), &[]);
        assert_eq!(
            overrides(&req),
            [(Some("DELETE".into()), by(Reading::OverrideQuery))],
            "{query}"
        );
    }
    // Names PHP rewrites to `_method`: Laravel and Symfony only.
    let php = by(Reading::OverrideQuery).intersection(by(Reading::PhpParameterNames));
    for query in [
        ".method=GET",
        "+_method=GET",
        "%20_method=GET",
        " .method=GET",
    ] {
        let req = with_headers(&format!("/api/orders?{query}"), &[]);
        assert_eq!(overrides(&req), [(Some("GET".into()), php)], "{query}");
    }
    // An array's method is not one string: unknown, for every reader.
    let req = with_headers("/api/orders?_method[]=GET", &[]);
    assert_eq!(overrides(&req), [(None, by(Reading::OverrideQuery))]);
    for query in [
        "payment_method=card",
        "method=GET",
        "_method_x=GET",
        "x._method=GET",
    ] {
        let req = with_headers(&format!("/api/orders?{query}"), &[]);
        assert_eq!(overrides(&req), [], "{query}");
    }
    // Several are all kept; the policy refuses them when they disagree.
    let both = with_headers(
        "/api/orders?_method=GET",
        &[("x-http-method-override", "DELETE")],
    );
    assert_eq!(overrides(&both).len(), 2);
}

#[test]
fn forwarded_hosts_and_rewrites_are_read_as_upstreams_read_them() {
    let view = |headers: &[(&str, &str)]| {
        let req = with_headers("/public/x", headers);
        extract(&req, 100, RequestBody::NotSent).map(|v| {
            (
                v.forwarded_hosts
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>(),
                {
                    let mut rewrites: Vec<String> =
                        v.rewrites.iter().map(|p| p.to_string()).collect();
                    rewrites.sort();
                    rewrites
                },
            )
        })
    };
    assert_eq!(
        view(&[("x-forwarded-host", "Admin.Example.com:443, www.example.com")]),
        Ok((
            vec!["admin.example.com".into(), "www.example.com".into()],
            vec![]
        ))
    );
    assert_eq!(
        view(&[(
            "forwarded",
            "for=192.0.2.1;host=\"admin.example.com\";proto=https, host=other.example.com"
        )]),
        Ok((
            vec!["admin.example.com".into(), "other.example.com".into()],
            vec![]
        ))
    );
    assert_eq!(
        view(&[
            ("x-original-host", "admin.example.com"),
            ("x-host", "admin.example.com.")
        ]),
        Ok((vec!["admin.example.com".into()], vec![]))
    );
    assert_eq!(
        view(&[
            ("x-original-url", "/admin/secret?x=1"),
            ("x-rewrite-url", "https://h/api/orders")
        ]),
        Ok((vec![], vec!["/admin/secret".into(), "/api/orders".into()]))
    );
    for bad in [
        ("x-forwarded-host", "a@admin.example.com"),
        ("x-forwarded-host", "admin.example.com:80:80"),
        ("forwarded", "host=\"admin.example.com"),
        ("x-original-url", "admin/secret"),
    ] {
        assert_eq!(view(&[bad]), Err(DenyReason::InvalidRequest), "{bad:?}");
    }
}

#[test]
fn underscored_header_names_are_reported() {
    let req = with_headers("/", &[("x_auth_roles", "Admin"), ("x-auth-roles", "x")]);
    assert_eq!(
        extract(&req, 100, RequestBody::NotSent)
            .unwrap()
            .underscored,
        ["x_auth_roles"]
    );
}

fn bearer_token(header: Option<&str>) -> Result<&str, DenyReason> {
    credential(header).map(|c| {
        assert!(!c.dpop);
        c.token
    })
}

#[test]
fn bearer_scheme_is_case_insensitive_and_exactly_one_token() {
    assert_eq!(bearer_token(Some("Bearer a.b.c")), Ok("a.b.c"));
    assert_eq!(bearer_token(Some("bearer   a.b.c ")), Ok("a.b.c"));
    assert_eq!(
        bearer_token(Some("BEARER a-b_c~d+e/f==")),
        Ok("a-b_c~d+e/f==")
    );
    let cases = [
        (None, DenyReason::MissingToken),
        (Some(""), DenyReason::MissingToken),
        (Some("Basic dXNlcjpwYXNz"), DenyReason::UnsupportedScheme),
        (Some("Bearer"), DenyReason::MalformedAuthorization),
        (Some("Bearer "), DenyReason::MalformedAuthorization),
        (Some("Bearer a b"), DenyReason::MalformedAuthorization),
        (
            Some("Bearer a.b.c,Bearer d.e.f"),
            DenyReason::MalformedAuthorization,
        ),
        (Some("Bearer,Bearer x"), DenyReason::MalformedAuthorization),
        (Some("Bearer a\"b"), DenyReason::MalformedAuthorization),
        (Some("Bearer ===="), DenyReason::MalformedAuthorization),
        (Some("Bearer\ta.b.c"), DenyReason::UnsupportedScheme),
    ];
    for (header, reason) in cases {
        assert_eq!(bearer_token(header), Err(reason), "{header:?}");
    }
}

#[test]
fn the_dpop_scheme_and_proof_are_read_beside_the_token() {
    assert_eq!(
        credential(Some("DPoP a.b.c")),
        Ok(Credential {
            token: "a.b.c",
            dpop: true
        })
    );
    assert_eq!(
        credential(Some("dpop  Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU")).map(|c| c.dpop),
        Ok(true)
    );
    assert_eq!(
        credential(Some("DPoP a b")),
        Err(DenyReason::MalformedAuthorization)
    );
    let req = with_headers("/", &[("authorization", "DPoP t.o.k"), ("dpop", "p.r.f")]);
    let view = extract(&req, 100, RequestBody::NotSent).unwrap();
    assert_eq!(view.dpop_proof, Some(Ok("p.r.f")));
    // Several proofs (raw headers kept apart) are one invalid proof.
    let proof = HeaderValue {
        key: "DPoP".into(),
        value: "p.r.f".into(),
        raw_value: Vec::new(),
    };
    let req = request(HttpRequest {
        header_map: Some(HeaderMap {
            headers: vec![proof.clone(), proof],
        }),
        ..Default::default()
    });
    assert_eq!(
        extract(&req, 100, RequestBody::NotSent).unwrap().dpop_proof,
        Some(Err(DenyReason::InvalidDpopProof))
    );
}

#[test]
fn the_b64token_alphabet_is_exactly_rfc_6750s() {
    for c in 0..=u8::MAX {
        let spec = c.is_ascii_alphanumeric() || b"-._~+/".contains(&c);
        assert_eq!(super::is_b64token_byte(c), spec, "byte {c:#04x}");
    }
}
