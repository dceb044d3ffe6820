//! `portcullis test`: policy test suites, kept next to the policy and run in CI. A suite
//! (YAML) lists requests — method, host, path, headers, the destination principal and
//! `context_extensions` a proxy would send — each with its caller, either claims taken as
//! given or a token minted for the case and verified for real (signature, issuer,
//! audience, lifetime, a policy file's audiences), and the expected decision: allow or
//! deny, the reason, the status, the route, the headers forwarded. Every case runs
//! through the service's own pipeline ([`check::decide`], [`respond::answer`]); routes no
//! case reaches are reported as untested. Reports: [`report`].

mod mint;
use mint::Minter;
pub mod report;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    check::{self, Authentication},
    config::{Config, ConfigError},
    explain,
    extract::check_request,
    pb::auth::{attribute_context::Peer, check_response::HttpResponse},
    respond,
    state::{AppState, Engine},
};

/// One suite file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    tests: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    request: RawRequest,
    /// The caller's claims, taken as they are (no signature, issuer, audience or
    /// lifetime check).
    claims: Option<Map<String, Value>>,
    /// A token minted for the case with these claims (over defaults: `iss` and `aud` of
    /// the first issuer, an Entra issuer's `ver` and `tid`, a 10-minute lifetime),
    /// verified for real.
    token: Option<Map<String, Value>>,
    expect: RawExpect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    #[serde(default = "get")]
    method: String,
    path: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The destination workload (`attributes.destination.principal`, as Istio sends it).
    principal: Option<String>,
    #[serde(default)]
    context_extensions: BTreeMap<String, String>,
}

fn get() -> String {
    "GET".into()
}

/// `allow`, `deny`, or the details.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawExpect {
    Decision(String),
    Details(Expect),
}

/// What a case expects; what it leaves out is not checked.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow` or `deny`.
    pub decision: Option<String>,
    /// The deny reason (`insufficient_permission`), or on an allow the audit-mode one.
    pub reason: Option<String>,
    pub status: Option<u16>,
    pub route: Option<String>,
    /// Headers the allow sets for the upstream; `null`: removed (or not set).
    pub headers: Option<BTreeMap<String, Option<String>>>,
}

/// One case's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseResult {
    pub name: String,
    /// What failed (`None`: passed).
    pub failure: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub status: u16,
    pub route: Option<String>,
}

/// One suite's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SuiteResult {
    pub path: PathBuf,
    pub cases: Vec<CaseResult>,
    /// The suite could not be read or parsed.
    pub error: Option<String>,
}

/// Every suite's outcome, and the routes no case reached.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub suites: Vec<SuiteResult>,
    pub untested_routes: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.suites
            .iter()
            .all(|s| s.error.is_none() && s.cases.iter().all(|c| c.failure.is_none()))
    }
}

/// Why suites could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the test issuer: {0}")]
    Issuer(String),
    #[error("the test issuer's keys did not load within 10 s")]
    Keys,
}

/// Runs the suites of `paths` (files, or directories of `*.test.yaml` files) against the
/// configuration.
pub async fn run(config: &Config, paths: &[PathBuf]) -> Result<Outcome, SuiteError> {
    let minter = Minter::start().await?;
    let state =
        AppState::new(&minter.configured(config)).map_err(|e| SuiteError::Issuer(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !state.engine().verifier.all_keys_loaded() {
        if tokio::time::Instant::now() > deadline {
            return Err(SuiteError::Keys);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let engine = state.engine();
    let mut touched = BTreeSet::new();
    let mut suites = Vec::new();
    for path in suite_files(paths) {
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_saphyr::from_str::<RawSuite>(&text).map_err(|e| {
                    e.to_string()
                        .replace("<input>", &path.display().to_string())
                })
            });
        let suite = match parsed {
            Ok(suite) => suite,
            Err(error) => {
                suites.push(SuiteResult {
                    path,
                    cases: Vec::new(),
                    error: Some(error),
                });
                continue;
            }
        };
        let mut cases = Vec::new();
        for case in suite.tests {
            cases.push(run_case(&engine, config, &minter, case, &mut touched).await);
        }
        suites.push(SuiteResult {
            path,
            cases,
            error: None,
        });
    }
    let untested_routes = engine
        .policies
        .all()
        .flat_map(|set| set.policy.routes())
        .map(|r| r.name.to_string())
        .filter(|name| !touched.contains(name))
        .collect();
    Ok(Outcome {
        suites,
        untested_routes,
    })
}

/// The files of `paths`: files as given, directories' `*.test.yaml` / `*.test.yml` files.
fn suite_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.ends_with(".test.yaml") || name.ends_with(".test.yml")
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    files
}

async fn run_case(
    engine: &Engine,
    config: &Config,
    minter: &Minter,
    case: RawCase,
    touched: &mut BTreeSet<String>,
) -> CaseResult {
    let name = case.name.clone();
    let failed = |failure: String| CaseResult {
        name: name.clone(),
        failure: Some(failure),
        decision: "error".into(),
        reason: None,
        status: 0,
        route: None,
    };
    let expect = match case.expect {
        RawExpect::Decision(decision) => Expect {
            decision: Some(decision),
            ..Expect::default()
        },
        RawExpect::Details(expect) => expect,
    };
    if let Some(decision) = &expect.decision
        && decision != "allow"
        && decision != "deny"
    {
        return failed(format!("expect: {decision:?} is neither allow nor deny"));
    }
    let mut headers = case.request.headers.clone();
    let authentication = match (case.claims, case.token) {
        (Some(_), Some(_)) => return failed("give `claims` or `token`, not both".into()),
        (Some(claims), None) => explain::given(claims),
        (None, Some(claims)) => match minter.mint(config, claims) {
            Ok(token) => {
                headers.insert("authorization".into(), format!("Bearer {token}"));
                Authentication::Bearer
            }
            Err(error) => return failed(error),
        },
        (None, None) => Authentication::Bearer,
    };
    let lower: Vec<(String, String)> = headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let pairs: Vec<(&str, &str)> = lower
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let request = &case.request;
    let mut check = check_request(&request.method, &request.host, &request.path, &pairs);
    if let Some(attributes) = check.attributes.as_mut() {
        attributes.destination = request.principal.as_ref().map(|principal| Peer {
            principal: principal.clone(),
            ..Default::default()
        });
        attributes.context_extensions = request.context_extensions.clone().into_iter().collect();
    }
    let verdict = check::decide(engine, &check, authentication, None).await;
    touched.extend(
        verdict
            .reached
            .iter()
            .chain(&verdict.baseline)
            .map(|r| r.name.to_string()),
    );
    let response = respond::answer(engine, &verdict, false).into_response();
    let (decision, status, set, removed) = match response.ok().and_then(|r| r.http_response) {
        Some(HttpResponse::OkResponse(ok)) => {
            let set: BTreeMap<String, String> = ok
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .map(|h| (h.key.to_ascii_lowercase(), h.value.clone()))
                .collect();
            ("allow", 200, set, ok.headers_to_remove)
        }
        Some(HttpResponse::DeniedResponse(denied)) => {
            let status = denied.status.map_or(403, |s| s.code as u16);
            ("deny", status, BTreeMap::new(), Vec::new())
        }
        None => ("error", 0, BTreeMap::new(), Vec::new()),
    };
    let reason = match &verdict.outcome {
        Err(deny) => Some(deny.reason.code().to_owned()),
        Ok(audit) => audit.map(|would| would.code().to_owned()),
    };
    let route = verdict.route.map(|r| r.name.to_string());
    let mut failures = Vec::new();
    let mut compare = |what: &str, want: Option<String>, got: Option<String>| {
        if let Some(want) = want
            && got.as_deref() != Some(want.as_str())
        {
            failures.push(format!(
                "{what}: expected {want}, got {}",
                got.as_deref().unwrap_or("none")
            ));
        }
    };
    compare("decision", expect.decision, Some(decision.into()));
    compare("reason", expect.reason, reason.clone());
    compare(
        "status",
        expect.status.map(|s| s.to_string()),
        Some(status.to_string()),
    );
    compare("route", expect.route, route.clone());
    for (header, want) in expect.headers.unwrap_or_default() {
        let header = header.to_ascii_lowercase();
        let got = set.get(&header).cloned();
        match want {
            Some(want) if got.as_deref() != Some(want.as_str()) => failures.push(format!(
                "header {header}: expected {want:?}, got {}",
                got.map_or("none".into(), |g| format!("{g:?}"))
            )),
            None if got.is_some() || (decision == "allow" && !removed.contains(&header)) => {
                failures.push(format!(
                    "header {header}: expected removed, got {}",
                    got.map_or("it kept".into(), |g| format!("{g:?}"))
                ))
            }
            _ => {}
        }
    }
    CaseResult {
        name,
        failure: (!failures.is_empty()).then(|| failures.join("; ")),
        decision: decision.into(),
        reason,
        status,
        route,
    }
}

/// Shared for the reports: a suite's name for JUnit (its file name).
pub(crate) fn suite_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
