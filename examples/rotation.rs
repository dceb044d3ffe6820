//! The rotation event, measured: the identity provider starts signing with a key
//! portcullis has never seen, and a burst of requests carrying such tokens arrives at
//! once. The first of them triggers one JWKS fetch; the others wait for that same fetch
//! (single flight). Prints, for identity providers answering the JWKS request after 0,
//! 50 and 200 ms, the latencies of the burst's Checks (each waits for the fetch) and how
//! many fetches were made, beside a Check with a known key sent while the fetch is in
//! flight and one with the new key once it is known. In process: the
//! client and the server share this process.
//!
//! `cargo run --release --example rotation [-- --burst 100]`

use std::time::{Duration, Instant};

use portcullis::{
    config::Config,
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{authorization_client::AuthorizationClient, check_response::HttpResponse},
    server::Server,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut burst: usize = 100;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--burst", Some(n)) => burst = n.parse()?,
            _ => return Err(format!("usage: rotation [--burst N] (got {flag})").into()),
        }
    }
    let first = SigningKey::rsa("k0", jsonwebtoken::Algorithm::RS256)?;
    let issuer = DemoIssuer::start(0, &[&first]).await?;
    // A short cooldown, so that each round's new key is fetched for at once.
    let yaml = format!(
        "{}\njwks:\n  unknown_kid_cooldown: 1s\n",
        demo::demo_config_yaml(&issuer, "127.0.0.1:0".parse()?)
            .replace("jwks:\n  unknown_kid_cooldown: 2s\n", "")
    );
    let mut config = Config::from_yaml(&yaml, "rotation")?;
    config.admin_listen = "127.0.0.1:0".parse()?;
    let server = Server::start(config, None).await?;
    while !server.state().engine().verifier.all_keys_loaded() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let client = AuthorizationClient::connect(format!("http://{}", server.grpc_addr())).await?;

    println!(
        "| JWKS answers after | burst | fetches | fastest | p50 | p99 | slowest | whole burst | known key, meanwhile | new key, then |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut published = vec![first];
    for (round, delay) in [0u64, 50, 200].into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let key = SigningKey::rsa(&format!("k{}", round + 1), jsonwebtoken::Algorithm::RS256)?;
        published.push(key);
        let keys: Vec<&SigningKey> = published.iter().collect();
        issuer.publish(&keys);
        issuer.set_delay(Duration::from_millis(delay));
        let signer = published.last().ok_or("no key")?;
        let claims = demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 600);
        // Distinct tokens, so that no Check is answered from another's cached verification.
        let tokens: Vec<String> = (0..burst)
            .map(|i| {
                let mut claims = claims.clone();
                claims["jti"] = serde_json::json!(format!("{round}-{i}"));
                signer.sign(&claims)
            })
            .collect::<Result<_, _>>()?;
        let fetches = issuer.jwks_fetches();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(burst);
        for token in tokens {
            let mut client = client.clone();
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let response = client.check(request(&token)).await.map(|r| r.into_inner());
                let allowed = matches!(
                    response.ok().and_then(|r| r.http_response),
                    Some(HttpResponse::OkResponse(_))
                );
                (sent.elapsed(), allowed)
            }));
        }
        // A token of a key known all along, sent while the fetch is in flight.
        tokio::time::sleep(Duration::from_millis(delay / 2)).await;
        let known = {
            let mut claims = claims.clone();
            claims["jti"] = serde_json::json!(format!("{round}-known"));
            published[0].sign(&claims)?
        };
        let sent = Instant::now();
        client.clone().check(request(&known)).await?;
        let during = sent.elapsed();
        let mut latencies = Vec::with_capacity(burst);
        for task in tasks {
            let (latency, allowed) = task.await?;
            if !allowed {
                return Err("a Check of the burst was denied".into());
            }
            latencies.push(latency);
        }
        let whole = started.elapsed();
        let fetched = issuer.jwks_fetches() - fetches;
        latencies.sort();
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        // The key is known now: a new token of it.
        let mut claims = claims.clone();
        claims["jti"] = serde_json::json!(format!("{round}-after"));
        let token = signer.sign(&claims)?;
        let sent = Instant::now();
        client.clone().check(request(&token)).await?;
        let after = sent.elapsed();
        println!(
            "| {delay} ms | {burst} | {fetched} | {} | {} | {} | {} | {} | {} | {} |",
            ms(at(0.0)),
            ms(at(0.5)),
            ms(at(0.99)),
            ms(at(1.0)),
            ms(whole),
            ms(during),
            ms(after)
        );
    }
    drop(server);
    Ok(())
}

/// A Check of the demo API's read route with `token`.
fn request(token: &str) -> portcullis::pb::auth::CheckRequest {
    demo::check_request(
        "GET",
        "api.local",
        "/api/orders/1",
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
