//! The whole Check, from a structured arbitrary request: method, host, a path built from
//! hostile pieces (escapes, dot segments, parameters, case), arbitrary headers in both of
//! Envoy's forms, and a token that is valid (with some scopes), expired, tampered,
//! unsigned or garbage. Never panics, always answers; and an oracle, from a naive model
//! of lenient upstreams (every decoding, parameter, trailing-slash and case reading): a
//! protected resource is never allowed without a token that verifies, and the scoped
//! routes are never allowed without their scope.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::{
    config::{Config, Secret},
    demo,
    pb::{
        auth::check_response::HttpResponse,
        core::{HeaderMap, HeaderValue},
    },
    server,
    state::AppState,
};
use serde_json::json;

const SECRET: &[u8] = b"the fuzzing issuer's 32-byte HMAC secret!";

const POLICY: &str = r#"
issuers: [{issuer: fuzz, jwks_uri: "https://fuzz.invalid/keys", audiences: [api]}]
routes:
  - { name: public, methods: [GET, HEAD], path: { exact: /public }, anonymous: true }
  - name: files
    methods: [GET]
    path: { template: "/files/**" }
    anonymous: true
    allow_encoded_slashes: true
    allow_path_parameters: true
  - { name: admin, path: { prefix: /admin }, require: { scopes: [Admin] } }
  - { name: orders, methods: [GET], path: { prefix: /api/orders }, require: { scopes: [Orders.Read] } }
  - { name: rest, path: { prefix: / }, require: { token: any } }
"#;

const PIECES: &[&str] = &[
    "public",
    "PUBLIC",
    "files",
    "admin",
    "Admin",
    "api",
    "orders",
    "x",
    "..",
    ".",
    "",
    "..;",
    ";p=1",
    "%2F",
    "%2f",
    "%5C",
    "%2e%2e",
    "%2E",
    "%3B",
    "%25",
    "%252F",
    "\\",
    "%00",
    "é",
    "%C3%A9",
    "?q=/admin",
    "#f",
    "//",
    "admin.json",
    "admin.",
    "admin%20",
    "adm%C4%B1n",
    "%2561dmin",
    "%0a",
    "?_method=GET",
    "?.method=DELETE",
];

#[derive(Arbitrary, Debug)]
enum Token {
    None,
    Valid {
        admin: bool,
        reader: bool,
        expired: bool,
    },
    Tampered,
    Unsigned,
    Garbage(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: u8,
    host: String,
    pieces: Vec<(u8, bool)>,
    trailing_slash: bool,
    headers: Vec<(u8, String)>,
    raw_form: bool,
    body: Vec<u8>,
    token: Token,
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "DELETE", "get", "OPTIONS"];
const HEADER_NAMES: &[&str] = &[
    "x-http-method-override",
    "x-method-override",
    "x_auth_roles",
    "x-auth-roles",
    "traceparent",
    "authorization",
    "x-anything",
    "x-forwarded-host",
    "forwarded",
    "x-original-url",
    "content-type",
    "content-length",
    "x-envoy-auth-partial-body",
];

struct World {
    state: AppState,
    runtime: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut config = Config::from_yaml(POLICY, "fuzz").unwrap();
        config.issuers[0].algorithms = vec![jsonwebtoken::Algorithm::HS256];
        config.issuers[0].jwks = None;
        config.issuers[0].hmac_secret = Some(Secret(SECRET.to_vec()));
        World {
            state: AppState::offline(&config).unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap(),
        }
    })
}

fn sign(claims: &serde_json::Value) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(
        &header,
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

/// The token, and the scopes it proves (`None` when it does not verify).
fn token(choice: &Token) -> (Option<String>, Option<Vec<&'static str>>) {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let claims = |scopes: &str, exp: i64| json!({"iss": "fuzz", "aud": "api", "sub": "s", "scp": scopes, "exp": exp});
    match choice {
        Token::None => (None, None),
        Token::Valid {
            admin,
            reader,
            expired,
        } => {
            let mut scopes = vec!["Other"];
            scopes.extend(admin.then_some("Admin"));
            scopes.extend(reader.then_some("Orders.Read"));
            let exp = if *expired { now - 3600 } else { now + 3600 };
            let token = sign(&claims(&scopes.join(" "), exp));
            (Some(token), (!expired).then_some(scopes))
        }
        Token::Tampered => {
            let good = sign(&claims("Other", now + 3600));
            let forged = sign(&claims("Admin Orders.Read", now + 3600));
            let (head, rest) = forged.split_once('.').unwrap();
            let payload = rest.split_once('.').unwrap().0;
            let signature = good.rsplit_once('.').unwrap().1;
            (Some(format!("{head}.{payload}.{signature}")), None)
        }
        Token::Unsigned => {
            let header = "eyJhbGciOiJub25lIn0";
            let body = sign(&claims("Admin", now + 3600));
            let payload = body.split('.').nth(1).unwrap();
            (Some(format!("{header}.{payload}.")), None)
        }
        Token::Garbage(text) => (Some(text.clone()), None),
    }
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

fuzz_target!(|input: Input| {
    let world = world();
    let method = METHODS[usize::from(input.method) % METHODS.len()];
    let mut path = String::new();
    for (piece, slash) in &input.pieces {
        if *slash {
            path.push('/');
        }
        path.push_str(PIECES[usize::from(*piece) % PIECES.len()]);
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if input.trailing_slash {
        path.push('/');
    }
    let (token, proves) = token(&input.token);
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(n, v)| {
            (
                HEADER_NAMES[usize::from(*n) % HEADER_NAMES.len()].to_owned(),
                v.clone(),
            )
        })
        .collect();
    if let Some(token) = &token {
        headers.push(("authorization".into(), format!("Bearer {token}")));
    }
    let mut request = if input.raw_form {
        demo::check_request(method, &input.host, &path, &[])
    } else {
        let pairs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        demo::check_request(method, &input.host, &path, &pairs)
    };
    if let Some(http) = request
        .attributes
        .as_mut()
        .and_then(|a| a.request.as_mut())
        .and_then(|r| r.http.as_mut())
    {
        http.raw_body = input.body.clone();
    }
    if input.raw_form
        && let Some(http) = request
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut())
    {
        http.header_map = Some(HeaderMap {
            headers: headers
                .iter()
                .map(|(k, v)| HeaderValue {
                    key: k.clone(),
                    value: String::new(),
                    raw_value: v.clone().into_bytes(),
                })
                .collect(),
        });
    }
    let answer = world
        .runtime
        .block_on(server::answer(&world.state, &request));
    let response = answer.into_response().expect("an answer decodes");
    let allowed = matches!(response.http_response, Some(HttpResponse::OkResponse(_)));
    if !allowed {
        return;
    }
    // Raw headers keep every authorization header, and two never verify; the map form
    // keeps the last one, which is the token's.
    let authorizations = headers.iter().filter(|(k, _)| k == "authorization").count();
    let proves = proves.filter(|_| !input.raw_form || authorizations == 1);
    let upper = method.to_ascii_uppercase();
    let methods: &[&str] = if upper == "HEAD" {
        &["HEAD", "GET"]
    } else {
        &[&upper]
    };
    // The naive model of lenient upstreams the property tests use (src/check/model.rs).
    for reading in portcullis::fuzzing::lenient_paths(&path) {
        for m in methods {
            let anonymous = (["GET", "HEAD"].contains(m) && reading == "/public")
                || (*m == "GET" && under(&reading, "/files"));
            assert!(
                anonymous || proves.is_some(),
                "{method} {path:?} allowed without a verified token (reading {reading})"
            );
            if under(&reading, "/admin") {
                assert!(
                    proves.as_ref().is_some_and(|s| s.contains(&"Admin")),
                    "{method} {path:?} reached /admin without Admin"
                );
            }
            if *m == "GET" && under(&reading, "/api/orders") {
                assert!(
                    proves.as_ref().is_some_and(|s| s.contains(&"Orders.Read")),
                    "{method} {path:?} reached /api/orders without Orders.Read"
                );
            }
        }
    }
});
