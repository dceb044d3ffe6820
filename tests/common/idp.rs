//! The certified OpenID Provider of `tests/idp/` (npm `oidc-provider`, installed there by
//! `npm ci`), run by Node.js on a loopback port with keys this test generates, and
//! stopped when dropped. It issues RFC 9068 client-credentials access tokens.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use super::{ChildGuard, external_tool};

/// The resource (audience) the provider issues tokens for.
pub const RESOURCE: &str = "api://orders";

/// A running provider.
pub struct Provider {
    _child: ChildGuard,
    /// Where it listens: `http://127.0.0.1:<port>`.
    pub url: String,
    /// The `iss` of its tokens (its URL, unless started as an impostor).
    pub issuer: String,
}

impl Provider {
    /// Node.js and the installed provider, or `None` (skip) when missing and not required.
    pub fn available() -> Option<PathBuf> {
        let node = external_tool("node")?;
        let installed =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/node_modules/oidc-provider");
        if !installed.is_dir() {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_E2E").is_none(),
                "tests/idp/node_modules missing: run `npm ci` in tests/idp (the README test command does)"
            );
            eprintln!("SKIPPED: run `npm ci` in tests/idp");
            return None;
        }
        Some(node)
    }

    /// A provider on a free port, its own issuer, with a fresh key `k1` in a new
    /// directory `name`; `None` (skip) without Node.js or the installed provider.
    pub async fn start_fresh(name: &str) -> Option<Provider> {
        let node = Provider::available()?;
        let port = super::free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let keys = super::envoy::test_dir(name);
        Some(Provider::start(&node, port, &issuer, &keys, &["k1"]).await)
    }

    /// Starts the provider on `port` with issuer `issuer` and the RSA keys `kids` from
    /// `keys` (generated there the first time): the first signs, all are published.
    pub async fn start(
        node: &Path,
        port: u16,
        issuer: &str,
        keys: &Path,
        kids: &[&str],
    ) -> Provider {
        std::fs::create_dir_all(keys).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/idp/provider.mjs");
        let mut child = Command::new(node)
            .arg(script)
            .arg(port.to_string())
            .arg(issuer)
            .arg(keys)
            .arg(kids.join(","))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let guard = ChildGuard(child);
        // Read to the end, not only to "ready": the provider prints notices later, and
        // a closed pipe would end it.
        let (started, ready) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut started = Some(started);
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if line == "ready"
                    && let Some(started) = started.take()
                {
                    let _ = started.send(());
                }
            }
        });
        let ready = tokio::time::timeout(super::WAIT, ready).await;
        assert!(matches!(ready, Ok(Ok(()))), "the provider did not start");
        Provider {
            _child: guard,
            url: format!("http://127.0.0.1:{port}"),
            issuer: issuer.to_owned(),
        }
    }

    /// A client-credentials access token for `client` (secret `secret-<client>`), asking
    /// for `scope` when given.
    pub async fn token(&self, client: &str, scope: Option<&str>) -> String {
        self.token_with(client, scope, &[]).await
    }

    /// The URL of the token endpoint (what a token request's DPoP proof names as `htu`).
    pub fn token_endpoint(&self) -> String {
        format!("{}/token", self.url)
    }

    /// A DPoP-bound access token for `svc-dpop`, bound to `key` (RFC 9449 §5).
    pub async fn dpop_token(&self, key: &portcullis::demo::DpopKey) -> String {
        let proof = key
            .proof("POST", &self.token_endpoint(), None, None)
            .unwrap();
        self.token_with("svc-dpop", Some("Orders.Read"), &[("dpop", &proof)])
            .await
    }

    /// A certificate-bound access token for `svc-mtls`, bound to the certificate `pem`
    /// (RFC 8705 §3), which reaches the provider as a TLS-terminating proxy forwards it.
    pub async fn mtls_token(&self, pem: &str) -> String {
        let forwarded = super::url_encoded(pem);
        self.token_with(
            "svc-mtls",
            Some("Orders.Read"),
            &[("x-client-certificate", &forwarded)],
        )
        .await
    }

    /// An access token for the user `alice` signed in to `web-app` by the authorization
    /// code flow, with extra authorization request `parameters` (`acr_values`, `max_age`,
    /// and the provider's `login_age`: how long ago the automatic sign-in happened). Each
    /// call is a new browser: its own cookies, a new sign-in.
    pub async fn user_token(&self, parameters: &[(&str, &str)]) -> String {
        const REDIRECT: &str = "http://127.0.0.1/callback";
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let mut query = vec![
            ("client_id", "web-app"),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid Orders.Read"),
            ("resource", RESOURCE),
        ];
        query.extend_from_slice(parameters);
        let query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", super::url_encoded(v)))
            .collect();
        let mut next = format!("{}/auth?{}", self.url, query.join("&"));
        // Name, value and path of each cookie, sent only under its path as a browser does.
        let mut cookies: Vec<(String, String, String)> = Vec::new();
        // Authorization, sign-in page, resumed authorization: then the redirect with a code.
        for _ in 0..6 {
            let path = next.trim_start_matches(&self.url);
            let cookie: Vec<String> = cookies
                .iter()
                .filter(|(_, _, under)| path.starts_with(under.as_str()))
                .map(|(k, v, _)| format!("{k}={v}"))
                .collect();
            let response = client
                .get(&next)
                .header("cookie", cookie.join("; "))
                .send()
                .await
                .unwrap();
            for set in response.headers().get_all("set-cookie") {
                let mut attributes = set.to_str().unwrap().split(';').map(str::trim);
                let (name, value) = attributes.next().unwrap().split_once('=').unwrap();
                let under = attributes
                    .find_map(|a| a.strip_prefix("path="))
                    .unwrap_or("/");
                cookies.retain(|(k, _, _)| k != name);
                cookies.push((name.to_owned(), value.to_owned(), under.to_owned()));
            }
            let location = response
                .headers()
                .get("location")
                .unwrap_or_else(|| panic!("no redirect from {next}: {}", response.status()))
                .to_str()
                .unwrap()
                .to_owned();
            next = if location.starts_with('/') {
                format!("{}{location}", self.url)
            } else {
                location
            };
            if next.starts_with(REDIRECT) {
                break;
            }
        }
        let code = next
            .split(['?', '&'])
            .find_map(|part| part.strip_prefix("code="))
            .unwrap_or_else(|| panic!("no code in {next}"));
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("resource", RESOURCE),
        ];
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| format!("{k}={}", super::url_encoded(v)))
            .collect();
        let response = client
            .post(self.token_endpoint())
            .basic_auth("web-app", Some("secret-web-app"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"))
            .send()
            .await
            .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&response.text().await.unwrap()).unwrap_or_default();
        json["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {json}"))
            .to_owned()
    }

    /// A client-credentials token request with extra `headers`.
    pub async fn token_with(
        &self,
        client: &str,
        scope: Option<&str>,
        headers: &[(&str, &str)],
    ) -> String {
        let mut form = vec![("grant_type", "client_credentials"), ("resource", RESOURCE)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{k}={}",
                    v.replace(' ', "+").replace(':', "%3A").replace('/', "%2F")
                )
            })
            .collect();
        let mut request = reqwest::Client::new()
            .post(self.token_endpoint())
            .basic_auth(client, Some(format!("secret-{client}")))
            .header("content-type", "application/x-www-form-urlencoded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.body(body.join("&")).send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert!(
            status.is_success(),
            "token request for {client}: {status} {json}"
        );
        json["access_token"].as_str().unwrap().to_owned()
    }
}
