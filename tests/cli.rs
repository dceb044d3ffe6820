//! The `portcullis` binary as a user runs it: `validate` on good and bad files, and `demo`,
//! whose printed grpcurl commands are executed with a real grpcurl.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{ChildGuard, external_tool, free_port, sigterm, venv_python};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

#[test]
fn validate_accepts_the_example_config() {
    let output = Command::new(BIN)
        .args([
            "validate",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yaml"),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn validate_lists_every_problem_with_its_field_and_fails() {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("invalid-config.yaml");
    std::fs::write(
        &path,
        "issuers:\n  - issuer: https://idp/\n    jwks_uri: not a url\n    audiences: []\n    leeway: 30\nroutes:\n  - name: r\n    path: { prefix: api }\n    anonymous: true\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .arg("validate")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for field in [
        "issuers[0].jwks_uri",
        "issuers[0].audiences",
        "issuers[0].leeway",
        "routes[0].path.prefix",
    ] {
        assert!(stderr.contains(field), "{field} missing in:\n{stderr}");
    }
}

#[test]
fn serve_refuses_a_missing_config_file_with_a_clear_error() {
    let output = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/portcullis.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read config file /nonexistent/portcullis.yaml"),
        "{stderr}"
    );
}

/// One printed example: whether it should allow, and the grpcurl arguments.
struct Example {
    allow: bool,
    args: Vec<String>,
}

/// Parses `grpcurl -plaintext -d '<json>' ADDR METHOD` lines under `# ALLOW` / `# DENY`.
fn examples(output: &[String]) -> Vec<Example> {
    let mut found = Vec::new();
    for pair in output.windows(2) {
        let (label, command) = (&pair[0], &pair[1]);
        let allow = label.starts_with("# ALLOW");
        if !(allow || label.starts_with("# DENY")) {
            continue;
        }
        let rest = command
            .strip_prefix("grpcurl -plaintext -d '")
            .expect(command);
        let (json, tail) = rest.split_once("' ").unwrap();
        let mut args = vec!["-plaintext".to_owned(), "-d".to_owned(), json.to_owned()];
        args.extend(tail.split_whitespace().map(str::to_owned));
        found.push(Example { allow, args });
    }
    found
}

/// Starts `command` and reads its stdout up to the line that says "Press Ctrl-C" (the
/// demo's and try.sh's last), within two minutes.
fn start_until_ctrl_c(mut command: Command) -> (ChildGuard, Vec<String>) {
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = ChildGuard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines: Vec<String> = Vec::new();
    while !lines.last().is_some_and(|l| l.contains("Press Ctrl-C")) {
        lines.push(
            rx.recv_timeout(Duration::from_secs(120))
                .expect("it printed what to try (its stderr says why not)"),
        );
    }
    (child, lines)
}

#[test]
fn demo_prints_commands_that_show_allow_and_deny_and_stops_on_sigterm() {
    let Some(grpcurl) = external_tool("grpcurl") else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let log_path =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("demo-{}.log", free_port()));
    let mut command = Command::new(BIN);
    command
        .args(["demo", "--grpc-listen", &addr, "--admin-listen", &admin])
        .args(["--log-format", "json", "--allow-log-sample", "2"])
        .stderr(std::fs::File::create(&log_path).unwrap());
    let (demo, lines) = start_until_ctrl_c(command);

    let health = [
        "-plaintext",
        "-d",
        r#"{"service":"envoy.service.auth.v3.Authorization"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new(&grpcurl).args(health).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("\"SERVING\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo never became SERVING"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let examples = examples(&lines);
    assert!(examples.iter().filter(|e| e.allow).count() >= 2);
    assert!(examples.iter().filter(|e| !e.allow).count() >= 3);
    for example in &examples {
        let out = Command::new(&grpcurl).args(&example.args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let expected = if example.allow {
            "okResponse"
        } else {
            "deniedResponse"
        };
        assert!(stdout.contains(expected), "expected {expected}:\n{stdout}");
    }

    sigterm(&demo.0);
    let mut demo = demo;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    // The log: JSON lines; every deny at info, allows sampled one in two, no token.
    let log = std::fs::read_to_string(&log_path).unwrap();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let decisions = |decision: &str| {
        events
            .iter()
            .filter(|e| e["decision"] == decision)
            .collect::<Vec<_>>()
    };
    let allows = examples.iter().filter(|e| e.allow).count();
    assert_eq!(decisions("deny").len(), examples.len() - allows, "{log}");
    let logged_allows = decisions("allow");
    assert_eq!(logged_allows.len(), allows.div_ceil(2), "{log}");
    assert!(logged_allows.iter().all(|e| e["sampled_one_in"] == 2));
    for example in &examples {
        let tokens = example.args.iter().flat_map(|a| a.split('"'));
        for token in tokens.filter_map(|t| t.strip_prefix("Bearer ")) {
            assert!(!log.contains(token), "a token reached the log");
        }
    }
}

/// Runs `portcullis check` on the example config with claims given as JSON.
fn check_example(host: &str, path: &str, claims: &str) -> (Option<i32>, String) {
    check_example_with(host, path, claims, &[])
}

fn check_example_with(
    host: &str,
    path: &str,
    claims: &str,
    more: &[&str],
) -> (Option<i32>, String) {
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("claims-{}.json", free_port()));
    std::fs::write(&file, claims).unwrap();
    let method: &[&str] = if more.contains(&"--method") {
        &[]
    } else {
        &["--method", "GET"]
    };
    let output = Command::new(BIN)
        .args([
            "check",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/example.yaml"),
        ])
        .args(method)
        .args(["--host", host, "--path", path, "--claims"])
        .arg(&file)
        .args(more)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn check_explains_a_deny_condition_by_condition() {
    let (code, out) = check_example(
        "",
        "/api/orders/7/history?x=1",
        r#"{"scp": "Orders.Read", "sub": "u"}"#,
    );
    assert_eq!(code, Some(3), "{out}");
    for line in [
        "route:    orders-history (first match, route 2 of 7)",
        "NOT VERIFIED",
        "  [FAIL] require_any[0]: scopes all of [Orders.ReadFull]",
        "  [FAIL] require_any[1]: app roles all of [Orders.Read.All]",
        "decision: DENY 403 insufficient_permission",
        "www-authenticate: Bearer realm=\"orders-api\", error=\"insufficient_scope\"",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
}

#[test]
fn check_explains_a_step_up_and_shows_its_challenge() {
    let (code, out) = check_example_with(
        "",
        "/api/orders/7/cancel",
        r#"{"scp": "Orders.ReadWrite", "acrs": ["c2"]}"#,
        &["--method", "POST"],
    );
    assert_eq!(code, Some(3), "{out}");
    for line in [
        "  [pass] require: scopes all of [Orders.ReadWrite]",
        "  [FAIL] step_up: authentication context c1 in acrs",
        "decision: DENY 401 insufficient_claims",
        // {"access_token":{"acrs":{"essential":true,"value":"c1"}}}
        "error=\"insufficient_claims\", error_description=\"The access token lacks claims this \
         request requires; request them and retry\", \
         claims=\"eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19\"",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
}

#[test]
fn check_shows_the_headers_an_allow_sends() {
    let (code, out) = check_example(
        "",
        "/api/orders/7/history",
        r#"{"scp": "Orders.ReadFull", "sub": "u", "tid": "t"}"#,
    );
    assert_eq!(code, Some(0), "{out}");
    for line in [
        "  [pass] require_any[0]: scopes all of [Orders.ReadFull]",
        "decision: ALLOW",
        "  x-auth-subject: u",
        "  x-auth-tenant-id: t",
        "headers removed: x-auth-binding, x-auth-binding-thumbprint, x-auth-client-id, x-auth-issuer, x-auth-object-id, x-auth-roles",
    ] {
        assert!(out.contains(line), "{line:?} missing in:\n{out}");
    }
}

#[test]
fn check_reports_audit_mode_and_unmatched_requests() {
    let (code, out) = check_example(
        "eu.reports.example.com:443",
        "/api/reports/q1",
        r#"{"scp": "Reports.Read"}"#,
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("AUDIT MODE"), "{out}");
    assert!(
        out.contains("audit:    would DENY 403 condition_failed if enforced"),
        "{out}"
    );
    // As the service decides: the request is authenticated before "no route" is said.
    let (code, out) = check_example("", "/nowhere", "{}");
    assert_eq!(code, Some(3));
    assert!(out.contains("decision: DENY 401 not_access_token"), "{out}");
    let (code, out) = check_example("", "/nowhere", r#"{"scp": "Orders.Read"}"#);
    assert_eq!(code, Some(3));
    assert!(out.contains("decision: DENY 403 no_route"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_verifies_a_real_token_against_the_issuer() {
    use portcullis::demo::{self, DemoIssuer, Grant, SigningKey};
    let key = SigningKey::rsa("k", jsonwebtoken::Algorithm::RS256).unwrap();
    let issuer = DemoIssuer::start(0, &[&key]).await.unwrap();
    let config = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("check-{}.yaml", free_port()));
    std::fs::write(
        &config,
        demo::demo_config_yaml(&issuer, "127.0.0.1:9001".parse().unwrap()),
    )
    .unwrap();
    let good = key
        .sign(&demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            600,
        ))
        .unwrap();
    let run = |token: String, extra: &'static [&'static str]| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            let output = Command::new(BIN)
                .args([
                    "check",
                    "--path",
                    "/api/orders/1",
                    "--token",
                    &token,
                    "--config",
                ])
                .arg(&config)
                .args(extra)
                .output()
                .unwrap();
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).into_owned(),
            )
        })
    };
    let (code, out) = run(good.clone(), &[]).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("token:    verified"), "{out}");
    let forged = demo::tamper(&good, issuer.issuer());
    let (code, out) = run(forged.clone(), &[]).await.unwrap();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("decision: DENY 401 bad_signature"), "{out}");
    let (code, out) = run(forged, &["--no-verify"]).await.unwrap();
    assert_eq!(code, Some(0), "unverified claims are taken as given: {out}");
    assert!(out.contains("NOT VERIFIED"), "{out}");
    // An expired token: the report shows what the token says beside what its issuer
    // accepts, so the cause is visible without decoding the token by hand.
    let expired = key
        .sign(&demo::access_token_claims(
            issuer.issuer(),
            Grant::Scopes("Orders.Read"),
            -600,
        ))
        .unwrap();
    let (code, out) = run(expired, &[]).await.unwrap();
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("decision: DENY 401 expired"), "{out}");
    assert!(out.contains("kid \"k\", alg RS256"), "{out}");
    assert!(
        out.contains("ago)"),
        "the expiry is shown relative to now: {out}"
    );
    assert!(
        out.contains(&format!("issuer:   {:?} accepts aud", issuer.issuer())),
        "{out}"
    );
}

#[test]
fn the_committed_config_schemas_are_the_ones_the_binary_prints() {
    for (args, file) in [
        (&["config-schema"][..], "config/portcullis.schema.json"),
        (
            &["config-schema", "--policy-file"][..],
            "config/policy-file.schema.json",
        ),
    ] {
        let output = Command::new(BIN).args(args).output().unwrap();
        assert!(output.status.success());
        let printed = String::from_utf8(output.stdout).unwrap();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let committed = std::fs::read_to_string(&path).unwrap();
        assert!(
            printed == committed,
            "{file} is out of date: run `cargo run -- {} > {file}`",
            args.join(" ")
        );
        let schema: serde_json::Value = serde_json::from_str(&printed).unwrap();
        assert_eq!(
            schema["additionalProperties"], false,
            "unknown fields are refused"
        );
        assert!(schema["properties"]["routes"].is_object());
    }
}

/// `scripts/try.sh`, as a newcomer runs it: everything comes up on free ports, the printed
/// curl commands (with the printed exports) get the answers they announce through the real
/// Envoy, and Ctrl-C (SIGTERM here) stops everything the script started.
#[test]
fn the_try_script_starts_everything_and_its_commands_do_what_they_say() {
    let Some(envoy) = external_tool("envoy") else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let mut command = Command::new("bash");
    command
        .arg(format!("{root}/scripts/try.sh"))
        .env("PORTCULLIS_BIN", BIN)
        .env("ENVOY_BIN", envoy)
        .stderr(Stdio::inherit());
    let (script, lines) = start_until_ctrl_c(command);
    let exports: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("export TOKEN_"))
        .collect();
    assert_eq!(exports.len(), 4, "{lines:#?}");
    let mut tried = 0;
    for pair in lines.windows(2) {
        let Some(expect) = pair[0].strip_prefix("# expect ") else {
            continue;
        };
        let command = pair[1].replacen("curl -i", "curl -s -o /dev/null -w '%{http_code}'", 1);
        let script = format!(
            "{}\n{command}",
            exports
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expect, "{}", pair[1]);
        tried += 1;
    }
    assert!(tried >= 6, "{lines:#?}");

    let ports: Vec<String> = lines
        .iter()
        .flat_map(|l| l.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')))
        .filter(|w| w.starts_with("127.0.0.1:"))
        .map(str::to_owned)
        .collect();
    assert!(ports.len() >= 4, "{ports:?}");
    let mut script = script;
    sigterm(&script.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while script.0.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "try.sh did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    for port in &ports {
        assert!(
            std::net::TcpStream::connect(port).is_err(),
            "{port} still listening after try.sh stopped"
        );
    }
}

#[test]
fn check_answers_tools_in_json_and_describes_every_flag() {
    let (code, out) = check_example_with(
        "",
        "/api/orders/7/history",
        r#"{"scp": "Orders.Read", "sub": "u"}"#,
        &["--output", "json"],
    );
    assert_eq!(code, Some(3), "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["decision"], "deny");
    assert_eq!(report["reason"], "insufficient_permission");
    assert_eq!(report["status"], 403);
    assert_eq!(report["route"], "orders-history");
    assert_eq!(report["token"], "unverified");
    assert_eq!(
        report["conditions"][0]["condition"],
        "scopes all of [Orders.ReadFull]"
    );
    assert_eq!(report["conditions"][0]["holds"], false);
    assert!(
        report["headers"]["response"]["www-authenticate"]
            .as_str()
            .is_some_and(|c| c.contains("insufficient_scope"))
    );
    let help = Command::new(BIN)
        .args(["check", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    // Every flag has its description on the line that names it or the next.
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let flag = line.trim_start();
        if flag.starts_with("--") || flag.starts_with("-c") {
            let described = line.split_whitespace().count() > 2
                || lines.get(i + 1).is_some_and(|next| {
                    !next.trim_start().starts_with('-') && !next.trim().is_empty()
                });
            assert!(described, "{flag:?} is not described:\n{help}");
        }
    }
    assert!(
        help.contains("--method") && help.contains("--host"),
        "{help}"
    );
}

/// Each file of tests/invalid-configs has one mistake: `portcullis validate` refuses it
/// naming the file and line, and so does the JSON Schema editors use (checked with PyPI
/// `jsonschema`, as an editor's YAML language server would).
#[test]
fn every_invalid_file_is_refused_by_validate_and_by_the_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(root.join("tests/invalid-configs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 14);
    for file in &files {
        let output = Command::new(BIN)
            .args(["validate", "--config"])
            .arg(file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{} accepted", file.display());
        assert!(
            err.contains(&format!("{}:", file.display())),
            "{}: no file:line in {err}",
            file.display()
        );
    }
    let Some(python) = venv_python("jsonschema") else {
        return;
    };
    let script = "import sys, json, yaml, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        validator = jsonschema.Draft202012Validator(schema)\n\
        for path in sys.argv[2:]:\n\
        \x20   if validator.is_valid(yaml.safe_load(open(path))):\n\
        \x20       print('ACCEPTED', path)\n\
        example = yaml.safe_load(open('config/example.yaml'))\n\
        print('example', validator.is_valid(example))\n";
    let output = Command::new(python)
        .current_dir(root)
        .args(["-c", script, "config/portcullis.schema.json"])
        .args(&files)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !out.contains("ACCEPTED"),
        "the schema accepts invalid files:\n{out}"
    );
    assert!(
        out.contains("example True"),
        "the schema refuses config/example.yaml:\n{out}"
    );
}

#[test]
fn validate_lists_every_kind_of_mistake_in_one_run_with_its_place() {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("mistakes-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("portcullis.yaml");
    // Shape (unknown field, wrong type), value (address, method, empty list) and
    // cross-route (duplicate name) mistakes together.
    std::fs::write(
        &file,
        "issuers: [{ issuer: https://idp.example.com/, audiences: [api] }]
server: { relam: typo, grpc_listen: \"nope\" }
jwks: { fetch_timeout: 30 }
routes:
  - name: a
    path: /x
    anonymous: true
  - name: b
    methods: [GTE]
    path: { prefix: /b }
    require: { scopes: [] }
  - name: b
    path: { prefix: /b/c }
    anonymous: true
",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    let at = |place: &str| format!("{}:{place}", file.display());
    for expected in [
        format!("{}: server.relam: unknown field", at("2:11")),
        format!("{}: server.grpc_listen: \"nope\" is not", at("2:24")),
        format!("{}: jwks.fetch_timeout: invalid type", at("3:9")),
        format!("{}: routes[0].path (route \"a\"): invalid type", at("6:5")),
        format!(
            "{}: routes[1].methods[0] (route \"b\"): \"GTE\"",
            at("9:15")
        ),
        format!(
            "{}: routes[1].require.scopes (route \"b\"): must not be empty",
            at("11:16")
        ),
        format!(
            "{}: routes[2].name (route \"b\"): \"b\" appears twice",
            at("12:5")
        ),
    ] {
        assert!(err.contains(&expected), "{expected:?} missing in\n{err}");
    }
    // A key given twice, in our words.
    std::fs::write(&file, "issuers: []\nroutes: []\nissuers: []\n").unwrap();
    let output = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains("duplicate mapping key: issuers (a key may be given once)"),
        "{err}"
    );
    assert!(!err.contains("DuplicateKeyPolicy"), "{err}");
}

#[test]
fn version_names_the_release_and_the_commit() {
    let output = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        text.starts_with(concat!(
            "portcullis ",
            env!("CARGO_PKG_VERSION"),
            " (commit "
        )),
        "{text}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    if let Some(head) = head.ok().filter(|h| h.status.success()) {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_owned();
        assert!(
            text.contains(&format!("(commit {head})")),
            "{text} is not {head}"
        );
    }
}
