//! The benchmark driver behind `scripts/bench.sh`: every figure is measured in the same
//! run as its peer, on this machine, with the servers under test pinned to CPU 0 and this
//! driver (load generation, upstream, identity provider) on CPU 1.
//!
//! Scenarios (each `--seconds` long, after a warm-up, in rounds that alternate them):
//! - gRPC, straight to the authorizer (a tonic client at fixed concurrency):
//!   `grpc-zero` (a server that allows everything: the floor of the hop),
//!   `grpc-zero-distinct` (the same with 1,000 distinct tokens, whose headers HTTP/2
//!   cannot compress away), `grpc-naive-distinct` (the naive verifying server: bare
//!   `jsonwebtoken` RS256 verification of each of the distinct tokens, nothing else — the
//!   floor for never-seen tokens), `grpc-portcullis` (one repeated token),
//!   `grpc-portcullis-distinct` (the distinct tokens with the token cache off, so every
//!   Check verifies a signature: the cost of never-seen tokens);
//! - HTTP through Envoy (`--concurrency 1`): `envoy-noauth`, `envoy-jwt-authn` (Envoy's
//!   jwt_authn + RBAC requiring the same scope), `envoy-extauthz-zero`,
//!   `envoy-extauthz-portcullis`, `envoy-extauthz-portcullis-uds` (the hop over a Unix
//!   socket, `envoy/sidecar-uds.yaml`), `envoy-extauthz-portcullis-http` (Envoy's HTTP
//!   check mode, `envoy/front-proxy-http.yaml`), `envoy-extauthz-naive-distinct`,
//!   `envoy-extauthz-portcullis-distinct`, and at a
//!   fixed 1,000 requests/s (open loop, latency from each request's scheduled start):
//!   `envoy-extauthz-zero@1000rps`, `envoy-extauthz-portcullis@1000rps`.
//!
//! For each: requests/s, client-side p50/p99/p99.9 latency, errors, and CPU µs per request
//! of Envoy and of the authorizer (from /proc/<pid>/stat). Printed as a table and written
//! as JSON to `target/bench/results.json`.

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use jsonwebtoken::Algorithm;
use portcullis::{
    demo::{self, DemoIssuer, Grant, SigningKey},
    pb::auth::{
        CheckRequest, authorization_client::AuthorizationClient, check_response::HttpResponse,
    },
};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    seconds: u64,
    rounds: usize,
    concurrency: usize,
    only: Option<String>,
    bin: String,
    envoy: String,
    /// Top-level YAML appended to portcullis's config (e.g. `metadata_claims: false`).
    extra_config: String,
}

fn args() -> Result<Args, Error> {
    let mut args = Args {
        seconds: 10,
        rounds: 2,
        concurrency: 64,
        only: None,
        bin: "target/release".into(),
        envoy: ".venv/bin/envoy".into(),
        extra_config: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => args.seconds = value.parse()?,
            "--rounds" => args.rounds = value.parse()?,
            "--concurrency" => args.concurrency = value.parse()?,
            "--only" => args.only = Some(value),
            "--bin" => args.bin = value,
            "--envoy" => args.envoy = value,
            "--portcullis-config" => {
                args.extra_config = format!("{}\n", value.replace("\\n", "\n"))
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

mod support;

use support::{Guard, free_port, wait_tcp};

/// A server under test: a child process pinned to CPU 0, killed when dropped.
struct Server;

impl Server {
    fn start(program: &str, args: &[&str]) -> Result<Guard, Error> {
        let child = Command::new("taskset")
            .args(["-c", "0", program])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Guard(child))
    }
}

#[derive(Default, Clone, serde::Serialize)]
struct Outcome {
    requests: u64,
    errors: u64,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    envoy_cpu_us_per_req: Option<f64>,
    authz_cpu_us_per_req: Option<f64>,
}

/// Runs `one` from `concurrency` tasks for `seconds`; each call returns whether the
/// answer was the expected one.
async fn drive<F, Fut>(concurrency: usize, seconds: u64, one: F) -> (u64, u64, Histogram<u64>, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let one = Arc::new(one);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (one, stop, counter) = (one.clone(), stop.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).expect("3 significant digits is valid");
            let (mut ok, mut errors) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                if one(n).await {
                    ok += 1;
                } else {
                    errors += 1;
                }
                let _ = histogram.record(sent.elapsed().as_micros() as u64);
            }
            (ok, errors, histogram)
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3).expect("valid");
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        if let Ok((o, e, h)) = task.await {
            ok += o;
            errors += e;
            let _ = total.add(h);
        }
    }
    (ok, errors, total, started.elapsed().as_secs_f64())
}

/// Open loop: starts `rate` calls a second on schedule, whatever the answers' latency,
/// and measures each from its scheduled start (no coordinated omission).
async fn drive_at_rate<F, Fut>(rate: u64, seconds: u64, one: F) -> (u64, u64, Histogram<u64>, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..rate * seconds {
        let scheduled = started + interval * u32::try_from(n).unwrap_or(u32::MAX);
        tokio::time::sleep_until(scheduled).await;
        let call = one(n);
        tasks.push(tokio::spawn(async move {
            let ok = call.await;
            (ok, scheduled.elapsed().as_micros() as u64)
        }));
    }
    let mut histogram = Histogram::<u64>::new(3).expect("valid");
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        if let Ok((good, latency)) = task.await {
            if good {
                ok += 1;
            } else {
                errors += 1;
            }
            let _ = histogram.record(latency);
        }
    }
    (ok, errors, histogram, started.elapsed().as_secs_f64())
}

fn check_request(token: &str) -> CheckRequest {
    let bearer = format!("Bearer {token}");
    demo::check_request(
        "GET",
        "api.local",
        "/api/orders/42",
        &[("authorization", &bearer)],
    )
}

struct Env {
    args: Args,
    /// Set for the fixed-rate scenarios.
    rate: Option<u64>,
    issuer: DemoIssuer,
    tokens: Arc<Vec<String>>,
    jwks: String,
    /// The signing key's public JWK, for the naive verifying server.
    jwk: String,
    upstream_port: u16,
    dir: std::path::PathBuf,
}

/// The authorizer a scenario uses: nothing, the zero-work server, or portcullis.
#[derive(Clone, Copy, PartialEq)]
enum Authz {
    None,
    Zero,
    /// The naive verifying server: bare `jsonwebtoken` verification, no cache.
    Naive,
    Portcullis {
        cache: bool,
        hop: Hop,
    },
}

/// How Envoy reaches portcullis.
#[derive(Clone, Copy, PartialEq)]
enum Hop {
    Grpc,
    /// gRPC over a Unix domain socket (`envoy/sidecar-uds.yaml`).
    Socket,
    /// Envoy's HTTP check mode (`envoy/front-proxy-http.yaml`).
    Http,
}

impl Env {
    fn socket_path(&self, port: u16) -> String {
        self.dir
            .join(format!("grpc-{port}.sock"))
            .display()
            .to_string()
    }

    /// Starts the authorizer: its gRPC port, and the port of its HTTP check listener
    /// (used by `Hop::Http` only; a free port of its own, not the gRPC one's neighbour).
    fn start_authz(&self, authz: Authz) -> Result<Option<(Guard, u16, u16)>, Error> {
        let port = free_port()?;
        let http_port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let server = match authz {
            Authz::None => return Ok(None),
            Authz::Zero => {
                Server::start(&format!("{}/examples/zero_authz", self.args.bin), &[&addr])?
            }
            Authz::Naive => Server::start(
                &format!("{}/examples/zero_authz", self.args.bin),
                &[
                    &addr,
                    "--verify",
                    &self.jwk,
                    self.issuer.issuer(),
                    demo::DEMO_AUDIENCE,
                ],
            )?,
            Authz::Portcullis { cache, hop } => {
                let config = self.dir.join(format!("portcullis-{port}.yaml"));
                let limits = if cache {
                    ""
                } else {
                    "limits:\n  token_cache_entries: 0\n"
                };
                let yaml = format!(
                    "{}{limits}{}",
                    demo::demo_config_yaml(&self.issuer, addr.parse()?),
                    self.args.extra_config
                );
                std::fs::write(&config, yaml)?;
                let admin = format!("127.0.0.1:{}", free_port()?);
                let config = config.display().to_string();
                let socket_path = self.socket_path(port);
                let http_listen = format!("127.0.0.1:{http_port}");
                let mut args = vec!["serve", "--config", &config, "--admin-listen", &admin];
                match hop {
                    Hop::Grpc => {}
                    Hop::Socket => args.extend(["--grpc-socket", &socket_path]),
                    Hop::Http => args.extend(["--http-listen", &http_listen]),
                }
                Server::start(&format!("{}/portcullis", self.args.bin), &args)?
            }
        };
        Ok(Some((server, port, http_port)))
    }

    async fn grpc(&self, authz: Authz, distinct: bool) -> Result<Outcome, Error> {
        let (server, port, _) = self
            .start_authz(authz)?
            .ok_or("a gRPC scenario needs an authorizer")?;
        wait_tcp(port).await?;
        tokio::time::sleep(Duration::from_millis(300)).await; // keys loaded
        let client = AuthorizationClient::connect(format!("http://127.0.0.1:{port}")).await?;
        let tokens = self.tokens.clone();
        let requests: Arc<Vec<CheckRequest>> = Arc::new(if distinct {
            tokens.iter().map(|t| check_request(t)).collect()
        } else {
            vec![check_request(&tokens[0])]
        });
        let call = move |n: u64| {
            let mut client = client.clone();
            let request = requests[(n as usize) % requests.len()].clone();
            async move {
                match client.check(request).await {
                    Ok(r) => matches!(
                        r.into_inner().http_response,
                        Some(HttpResponse::OkResponse(_))
                    ),
                    Err(_) => false,
                }
            }
        };
        let _ = drive(self.args.concurrency, 1, call.clone()).await; // warm-up
        let cpu = server.cpu_us();
        let (ok, errors, histogram, elapsed) =
            drive(self.args.concurrency, self.args.seconds, call).await;
        let authz_cpu = server.cpu_us() - cpu;
        Ok(outcome(
            ok,
            errors,
            &histogram,
            elapsed,
            None,
            Some(authz_cpu),
        ))
    }

    async fn envoy(&self, authz: Authz, jwt_authn: bool, distinct: bool) -> Result<Outcome, Error> {
        let authz_server = self.start_authz(authz)?;
        let (authz_port, check_port) = authz_server
            .as_ref()
            .map_or((9001, 9002), |(_, grpc, http)| (*grpc, *http));
        if let Some((_, port, _)) = &authz_server {
            wait_tcp(*port).await?;
        }
        let listen = free_port()?;
        let admin = free_port()?;
        let yaml = if authz == Authz::None {
            envoy_plain(
                listen,
                self.upstream_port,
                admin,
                jwt_authn.then(|| (self.issuer.issuer(), self.jwks.as_str())),
            )
        } else {
            let (file, paths) = match authz {
                Authz::Portcullis {
                    hop: Hop::Socket, ..
                } => (
                    "envoy/sidecar-uds.yaml",
                    vec![(
                        demo::ENVOY_GRPC_SOCKET.to_owned(),
                        self.socket_path(authz_port),
                    )],
                ),
                Authz::Portcullis { hop: Hop::Http, .. } => (
                    "envoy/front-proxy-http.yaml",
                    vec![(
                        "port_value: 9002 ".to_owned(),
                        format!("port_value: {check_port} "),
                    )],
                ),
                _ => ("envoy/front-proxy.yaml", Vec::new()),
            };
            let paths: Vec<(&str, &str)> = paths
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let shipped = std::fs::read_to_string(file)?;
            demo::envoy_config(
                &shipped,
                [listen, authz_port, self.upstream_port, admin],
                &paths,
            )
            .ok_or("envoy config ports")?
        };
        let yaml = strip_access_log(&yaml);
        let config = self.dir.join(format!("envoy-{listen}.yaml"));
        std::fs::write(&config, yaml)?;
        let config = config.display().to_string();
        let envoy = Server::start(
            &self.args.envoy,
            &[support::ENVOY_ARGS.as_slice(), &[config.as_str()]].concat(),
        )?;
        wait_tcp(listen).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(self.args.concurrency)
            .build()?;
        let tokens = self.tokens.clone();
        let url = format!("http://127.0.0.1:{listen}/api/orders/42");
        let call = move |n: u64| {
            let index = if distinct {
                (n as usize) % tokens.len()
            } else {
                0
            };
            let request = client.get(&url).bearer_auth(&tokens[index]);
            async move { request.send().await.is_ok_and(|r| r.status() == 200) }
        };
        let _ = drive(self.args.concurrency, 1, call.clone()).await; // warm-up
        let envoy_cpu = envoy.cpu_us();
        let authz_cpu = authz_server.as_ref().map(|(s, ..)| s.cpu_us());
        let (ok, errors, histogram, elapsed) = match self.rate {
            None => drive(self.args.concurrency, self.args.seconds, call).await,
            Some(rate) => drive_at_rate(rate, self.args.seconds, call).await,
        };
        let envoy_cpu = envoy.cpu_us() - envoy_cpu;
        let authz_cpu = authz_cpu
            .zip(authz_server.as_ref())
            .map(|(before, (s, ..))| s.cpu_us() - before);
        Ok(outcome(
            ok,
            errors,
            &histogram,
            elapsed,
            Some(envoy_cpu),
            authz_cpu,
        ))
    }
}

fn outcome(
    ok: u64,
    errors: u64,
    h: &Histogram<u64>,
    elapsed: f64,
    envoy_cpu: Option<u64>,
    authz_cpu: Option<u64>,
) -> Outcome {
    let requests = ok + errors;
    let per = |cpu: u64| cpu as f64 / requests.max(1) as f64;
    Outcome {
        requests,
        errors,
        rps: requests as f64 / elapsed,
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        envoy_cpu_us_per_req: envoy_cpu.map(per),
        authz_cpu_us_per_req: authz_cpu.map(per),
    }
}

/// Access logs cost CPU and are not what is measured.
fn strip_access_log(yaml: &str) -> String {
    let mut out = Vec::new();
    let mut skipping: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping = None;
        }
        if line.trim_start().starts_with("access_log") {
            skipping = Some(indent);
            continue;
        }
        out.push(line);
    }
    out.join("\n")
}

/// Envoy without ext_authz: plain routing, or jwt_authn + RBAC requiring `Orders.Read`.
fn envoy_plain(listen: u16, upstream: u16, admin: u16, jwt: Option<(&str, &str)>) -> String {
    let filters = match jwt {
        None => String::new(),
        Some((issuer, jwks)) => format!(
            r#"                  - name: envoy.filters.http.jwt_authn
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
                      providers:
                        demo:
                          issuer: "{issuer}"
                          audiences: ["{aud}"]
                          local_jwks: {{ inline_string: '{jwks}' }}
                          payload_in_metadata: jwt_payload
                      rules:
                        - match: {{ prefix: / }}
                          requires: {{ provider_name: demo }}
                  - name: envoy.filters.http.rbac
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
                      rules:
                        action: ALLOW
                        policies:
                          orders-read:
                            permissions: [{{ any: true }}]
                            principals:
                              - sourced_metadata:
                                  metadata_matcher:
                                    filter: envoy.filters.http.jwt_authn
                                    path: [{{ key: jwt_payload }}, {{ key: scp }}]
                                    value: {{ string_match: {{ contains: Orders.Read }} }}
"#,
            aud = demo::DEMO_AUDIENCE
        ),
    };
    format!(
        r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin} }} }}
static_resources:
  listeners:
    - name: ingress
      address: {{ socket_address: {{ address: 127.0.0.1, port_value: {listen} }} }}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: ingress
                route_config:
                  virtual_hosts:
                    - name: api
                      domains: ["*"]
                      routes: [{{ match: {{ prefix: / }}, route: {{ cluster: api }} }}]
                http_filters:
{filters}                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
    - name: api
      type: STATIC
      load_assignment:
        cluster_name: api
        endpoints: [{{ lb_endpoints: [{{ endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {upstream} }} }} }} }}] }}]
"#
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Error> {
    let args = args()?;
    let key = SigningKey::rsa("bench-rs256", Algorithm::RS256)?;
    let issuer = DemoIssuer::start(0, &[&key]).await?;
    let jwks = json!({ "keys": [key.jwk()] }).to_string();
    let tokens: Vec<String> = (0..1000)
        .map(|i| {
            let mut claims =
                demo::access_token_claims(issuer.issuer(), Grant::Scopes("Orders.Read"), 7200);
            claims["jti"] = json!(format!("bench-{i}"));
            key.sign(&claims)
        })
        .collect::<Result<_, _>>()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let upstream_port = listener.local_addr()?.port();
    tokio::spawn(async move {
        axum::serve(listener, axum::Router::new().fallback(|| async { "ok" })).await
    });
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut env = Env {
        rate: None,
        args,
        issuer,
        tokens: Arc::new(tokens),
        jwks,
        jwk: key.jwk().to_string(),
        upstream_port,
        dir,
    };

    let scenarios: Vec<&str> = vec![
        "grpc-zero",
        "grpc-zero-distinct",
        "grpc-naive-distinct",
        "grpc-portcullis",
        "grpc-portcullis-distinct",
        "envoy-noauth",
        "envoy-jwt-authn",
        "envoy-extauthz-zero",
        "envoy-extauthz-portcullis",
        "envoy-extauthz-portcullis-uds",
        "envoy-extauthz-portcullis-http",
        "envoy-extauthz-naive-distinct",
        "envoy-extauthz-portcullis-distinct",
        "envoy-extauthz-zero@1000rps",
        "envoy-extauthz-portcullis@1000rps",
    ];
    let mut results: BTreeMap<String, Vec<Outcome>> = BTreeMap::new();
    for round in 0..env.args.rounds {
        for name in &scenarios {
            if env
                .args
                .only
                .as_deref()
                .is_some_and(|only| !name.contains(only))
            {
                continue;
            }
            let cached = Authz::Portcullis {
                cache: true,
                hop: Hop::Grpc,
            };
            let uncached = Authz::Portcullis {
                cache: false,
                hop: Hop::Grpc,
            };
            let over_socket = Authz::Portcullis {
                cache: true,
                hop: Hop::Socket,
            };
            let over_http = Authz::Portcullis {
                cache: true,
                hop: Hop::Http,
            };
            env.rate = name.ends_with("@1000rps").then_some(1000);
            let outcome = match *name {
                "grpc-zero" => env.grpc(Authz::Zero, false).await?,
                "grpc-zero-distinct" => env.grpc(Authz::Zero, true).await?,
                "grpc-naive-distinct" => env.grpc(Authz::Naive, true).await?,
                "grpc-portcullis" => env.grpc(cached, false).await?,
                "grpc-portcullis-distinct" => env.grpc(uncached, true).await?,
                "envoy-noauth" => env.envoy(Authz::None, false, false).await?,
                "envoy-jwt-authn" => env.envoy(Authz::None, true, false).await?,
                "envoy-extauthz-zero" => env.envoy(Authz::Zero, false, false).await?,
                "envoy-extauthz-portcullis" | "envoy-extauthz-portcullis@1000rps" => {
                    env.envoy(cached, false, false).await?
                }
                "envoy-extauthz-zero@1000rps" => env.envoy(Authz::Zero, false, false).await?,
                "envoy-extauthz-portcullis-uds" => env.envoy(over_socket, false, false).await?,
                "envoy-extauthz-portcullis-http" => env.envoy(over_http, false, false).await?,
                "envoy-extauthz-naive-distinct" => env.envoy(Authz::Naive, false, true).await?,
                _ => env.envoy(uncached, false, true).await?,
            };
            eprintln!(
                "round {round} {name}: {:.0} rps, {} errors",
                outcome.rps, outcome.errors
            );
            results.entry(name.to_string()).or_default().push(outcome);
        }
    }
    // Median of the rounds, per figure.
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "{:<38} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7}",
        "scenario", "rps", "p50 us", "p99 us", "p99.9", "envoy us", "authz us", "errors"
    );
    let mut summary = BTreeMap::new();
    for name in &scenarios {
        let Some(runs) = results.get(*name) else {
            continue;
        };
        let pick = |f: &dyn Fn(&Outcome) -> Option<f64>| {
            let mut v: Vec<f64> = runs.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| median(&mut v))
        };
        let row = json!({
            "rps": pick(&|o| Some(o.rps)),
            "p50_us": pick(&|o| Some(o.p50_us as f64)),
            "p99_us": pick(&|o| Some(o.p99_us as f64)),
            "p999_us": pick(&|o| Some(o.p999_us as f64)),
            "envoy_cpu_us_per_req": pick(&|o| o.envoy_cpu_us_per_req),
            "authz_cpu_us_per_req": pick(&|o| o.authz_cpu_us_per_req),
            "errors": runs.iter().map(|o| o.errors).sum::<u64>(),
            "runs": runs,
        });
        let cell = |key: &str| {
            row[key]
                .as_f64()
                .map_or("-".to_owned(), |v| format!("{v:.1}"))
        };
        println!(
            "{:<38} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7}",
            name,
            cell("rps"),
            cell("p50_us"),
            cell("p99_us"),
            cell("p999_us"),
            cell("envoy_cpu_us_per_req"),
            cell("authz_cpu_us_per_req"),
            row["errors"]
        );
        summary.insert(name.to_string(), row);
    }
    std::fs::create_dir_all("target/bench")?;
    std::fs::write(
        "target/bench/results.json",
        serde_json::to_string_pretty(&summary)?,
    )?;
    Ok(())
}
