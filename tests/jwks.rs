//! Key rotation and JWKS refresh rules, against a real JWKS server on loopback that counts
//! every fetch.

mod common;

use std::time::Duration;

use common::{World, allowed, check_request, denied};
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{Grant, SigningKey},
    pb::auth::authorization_client::AuthorizationClient,
};

const READ: Grant<'static> = Grant::Scopes("Orders.Read");

#[tokio::test]
async fn rotated_key_is_picked_up_at_once_without_restart() {
    let world = World::start().await.ready().await;
    let fetches = world.issuer.jwks_fetches();
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);

    let new_key = SigningKey::rsa("key-2", Algorithm::RS256).unwrap();
    world.issuer.publish(&[&new_key]);
    let token = new_key.sign(&world.claims(READ)).unwrap();
    allowed(&world.bearer("GET", "/api/orders", &token).await);
    assert_eq!(
        world.issuer.jwks_fetches(),
        fetches + 1,
        "one fetch on the unknown kid"
    );

    // The retired key is gone from the issuer's JWKS, so tokens signed with it now fail.
    let old = world.token(READ);
    allowed(
        &world
            .bearer(
                "GET",
                "/api/orders",
                &new_key.sign(&world.claims(READ)).unwrap(),
            )
            .await,
    );
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &old).await).reason,
        "unknown_kid"
    );
}

#[tokio::test]
async fn flood_of_unknown_kids_costs_the_issuer_one_fetch_per_cooldown() {
    let world =
        World::start_with(|y| y.replace("unknown_kid_cooldown: 5s", "unknown_kid_cooldown: 1h"))
            .await
            .ready()
            .await;
    let before = world.issuer.jwks_fetches();
    let forger = SigningKey::rsa("unused", Algorithm::RS256).unwrap();
    let client = AuthorizationClient::connect(format!("http://{}", world.addr))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let mut header = jsonwebtoken::Header::new(Algorithm::RS256);
        header.kid = Some(format!("invented-{i}"));
        let token = forger
            .sign_with_header(&header, &world.claims(READ))
            .unwrap();
        let request = check_request(
            "GET",
            "/api/orders",
            &[("authorization", &format!("Bearer {token}"))],
        );
        let mut client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.check(request).await.unwrap().into_inner()
        }));
    }
    for task in tasks {
        assert_eq!(denied(&task.await.unwrap()).reason, "unknown_kid");
    }
    let after = world.issuer.jwks_fetches();
    assert!(
        after - before <= 1,
        "{} fetches for 500 invented kids",
        after - before
    );
    // Known keys keep working during the cooldown.
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}

#[tokio::test]
async fn cached_keys_keep_serving_while_the_issuer_is_down() {
    let world = World::start().await.ready().await;
    world.issuer.set_failing(true);
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    let stranger = SigningKey::rsa("key-9", Algorithm::RS256).unwrap();
    let token = stranger.sign(&world.claims(READ)).unwrap();
    assert_eq!(
        denied(&world.bearer("GET", "/api/orders", &token).await).reason,
        "unknown_kid"
    );
    allowed(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
}

#[tokio::test]
async fn no_keys_ever_is_503_with_retry_after() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused.
    let world = World::start_with(|y| {
        let start = y.find("jwks_uri: \"").unwrap() + "jwks_uri: \"".len();
        let end = start + y[start..].find('"').unwrap();
        format!("{}http://127.0.0.1:9/jwks.json{}", &y[..start], &y[end..])
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!world.state.verifier().all_keys_loaded());
    let d = denied(&world.bearer("GET", "/api/orders", &world.token(READ)).await);
    assert_eq!((d.status, d.reason.as_str()), (503, "keys_unavailable"));
    assert_eq!(d.headers.get("retry-after").map(String::as_str), Some("5"));
    assert_eq!(d.challenge, None);
}
