//! `portcullis check` and the service share one pipeline: over generated policies and
//! hostile requests, the explanation's decision is the server's, reason included.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{
    check::tests::{METHODS, SCOPES, SECRET, config_of, raw_path_strategy, routes_strategy},
    pb::auth::check_response::HttpResponse,
    server,
    state::AppState,
};

/// Allowed, or denied with this reason code.
fn server_decision(response: &crate::pb::auth::CheckResponse) -> Result<(), String> {
    match &response.http_response {
        Some(HttpResponse::OkResponse(_)) => Ok(()),
        _ => Err(response
            .status
            .as_ref()
            .map(|s| s.message.clone())
            .unwrap_or_default()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn explain_decides_as_the_server_does(
        routes in routes_strategy(),
        method in prop::sample::select(&METHODS[..]),
        path in raw_path_strategy(),
        scopes in prop::option::of(prop::sample::subsequence(&SCOPES[..], 0..=2)),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let state = AppState::offline(&config_of(&routes)).unwrap();
        let token = scopes.map(|scopes| {
            let now = jsonwebtoken::get_current_timestamp();
            let claims = json!({"iss": "i", "aud": "a", "exp": now + 600, "scp": scopes.join(" ")});
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        });
        let host = "api.example.com";
        let (served, explained) = runtime.block_on(async {
            let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> =
                bearer.iter().map(|b| ("authorization", b.as_str())).collect();
            let request = check_request(method, host, &path, &headers);
            let served = server::answer(&state, &request).await.into_response().unwrap();
            let credentials = token.clone().map_or(Credentials::None, Credentials::Token);
            let request = Request { method, host, path: &path };
            let explained = explain(&state.engine(), &request, credentials).await;
            (served, explained)
        });
        match server_decision(&served) {
            Ok(()) => prop_assert!(explained.allowed, "{}", explained.text),
            Err(reason) => {
                prop_assert!(!explained.allowed, "{}", explained.text);
                let expected = format!(" {reason}\n");
                prop_assert!(explained.text.contains(&expected), "{} vs\n{}", reason, explained.text);
            }
        }
    }
}
