use super::*;
use crate::pb::{
    auth::{DeniedHttpResponse, OkHttpResponse},
    core::{HeaderValue as PbHeader, HeaderValueOption},
    envoy::r#type::v3::HttpStatus,
};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

fn read(
    dialect: HttpDialect,
    method: &str,
    uri: &str,
    pairs: &[(&str, &str)],
) -> Option<(String, String, String)> {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let uri: Uri = uri.parse().unwrap();
    let headers = headers(pairs);
    original(dialect, &method, &uri, &headers)
        .map(|o| (o.method.to_owned(), o.host.to_owned(), o.target.to_owned()))
}

#[test]
fn each_dialect_reads_the_original_request_where_its_proxy_puts_it() {
    let own = |m: &str, h: &str, t: &str| Some((m.to_owned(), h.to_owned(), t.to_owned()));
    assert_eq!(
        read(
            HttpDialect::Envoy,
            "POST",
            "/api/orders?x=1",
            &[("host", "api.example.com")]
        ),
        own("POST", "api.example.com", "/api/orders?x=1")
    );
    let nginx = [
        ("host", "api.example.com"),
        ("x-original-method", "DELETE"),
        ("x-original-uri", "/api/orders/7?y"),
    ];
    assert_eq!(
        read(HttpDialect::Nginx, "GET", "/.portcullis", &nginx),
        own("DELETE", "api.example.com", "/api/orders/7?y")
    );
    let caddy = [
        ("host", "127.0.0.1:9002"),
        ("x-forwarded-method", "PUT"),
        ("x-forwarded-uri", "/api/orders/7"),
        ("x-forwarded-host", "api.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    assert_eq!(
        read(HttpDialect::Forwarded, "GET", "/", &caddy),
        own("PUT", "api.example.com", "/api/orders/7")
    );
}

#[test]
fn missing_or_repeated_original_headers_leave_nothing_to_judge() {
    let cases: &[(HttpDialect, &[(&str, &str)])] = &[
        (
            HttpDialect::Nginx,
            &[("host", "h"), ("x-original-uri", "/a")],
        ),
        (
            HttpDialect::Nginx,
            &[("host", "h"), ("x-original-method", "GET")],
        ),
        (
            HttpDialect::Nginx,
            &[
                ("host", "h"),
                ("x-original-method", "GET"),
                ("x-original-uri", "/a"),
                ("x-original-uri", "/admin"),
            ],
        ),
        (
            HttpDialect::Forwarded,
            &[("x-forwarded-method", "GET"), ("x-forwarded-uri", "/")],
        ),
        (
            HttpDialect::Forwarded,
            &[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-method", "DELETE"),
                ("x-forwarded-uri", "/"),
                ("x-forwarded-host", "h"),
            ],
        ),
    ];
    for (dialect, pairs) in cases {
        assert_eq!(
            read(*dialect, "GET", "/", pairs),
            None,
            "{dialect:?} {pairs:?}"
        );
    }
}

fn allow(set: &[(&str, &str)], remove: &[&str]) -> CheckResponse {
    CheckResponse {
        status: None,
        dynamic_metadata: None,
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: set
                .iter()
                .map(|(k, v)| HeaderValueOption {
                    header: Some(PbHeader {
                        key: (*k).into(),
                        value: (*v).into(),
                        raw_value: Vec::new(),
                    }),
                    ..Default::default()
                })
                .collect(),
            headers_to_remove: remove.iter().map(|s| (*s).into()).collect(),
            ..Default::default()
        })),
    }
}

fn answer(response: &Response) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    out.sort();
    out
}

#[test]
fn allows_tell_each_proxy_what_to_set_and_what_to_remove() {
    let managed = ["x-auth-subject".to_owned(), "x-auth-roles".to_owned()];
    let verified = allow(&[("x-auth-subject", "u")], &["x-auth-roles"]);
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());

    let envoy = http_response(
        verified.clone(),
        HttpDialect::Envoy,
        &managed,
        Some("Bearer t"),
    );
    assert_eq!(
        answer(&envoy),
        [
            pair("x-auth-subject", "u"),
            pair(HEADERS_TO_REMOVE, "x-auth-roles")
        ]
    );
    let nginx = http_response(
        verified.clone(),
        HttpDialect::Nginx,
        &managed,
        Some("Bearer t"),
    );
    assert_eq!(
        answer(&nginx),
        [
            pair("authorization", "Bearer t"),
            pair("x-auth-subject", "u")
        ]
    );
    let caddy = http_response(verified, HttpDialect::Forwarded, &managed, Some("Bearer t"));
    assert_eq!(
        answer(&caddy),
        [
            pair("authorization", "Bearer t"),
            pair("x-auth-roles", ""),
            pair("x-auth-subject", "u")
        ]
    );
    // An anonymous route: nothing set, the unverified credential must not go upstream.
    let anonymous = allow(&[], &["x-auth-subject", "x-auth-roles", "authorization"]);
    let nginx = http_response(
        anonymous.clone(),
        HttpDialect::Nginx,
        &managed,
        Some("Bearer x"),
    );
    assert_eq!(answer(&nginx), Vec::<(String, String)>::new());
    let caddy = http_response(
        anonymous,
        HttpDialect::Forwarded,
        &managed,
        Some("Bearer x"),
    );
    assert_eq!(
        answer(&caddy),
        [
            pair("authorization", ""),
            pair("x-auth-roles", ""),
            pair("x-auth-subject", "")
        ]
    );
}

#[test]
fn denies_keep_status_challenge_and_body_but_nginx_gets_401_or_403() {
    let denied = |status: i32| CheckResponse {
        status: None,
        dynamic_metadata: None,
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: status }),
            headers: vec![HeaderValueOption {
                header: Some(PbHeader {
                    key: "www-authenticate".into(),
                    value: "Bearer realm=\"r\"".into(),
                    raw_value: Vec::new(),
                }),
                ..Default::default()
            }],
            body: "{}".into(),
        })),
    };
    for dialect in [
        HttpDialect::Envoy,
        HttpDialect::Forwarded,
        HttpDialect::Nginx,
    ] {
        let response = http_response(denied(401), dialect, &[], None);
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"r\"");
    }
    assert_eq!(
        http_response(denied(400), HttpDialect::Envoy, &[], None).status(),
        400
    );
    assert_eq!(
        http_response(denied(400), HttpDialect::Nginx, &[], None).status(),
        403
    );
}
