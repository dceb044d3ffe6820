//! The `portcullis` binary as a user runs it: `validate` on good and bad files, and `demo`,
//! whose printed grpcurl commands are executed with a real grpcurl.

mod common;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use common::{ChildGuard, external_tool, free_port};

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

#[test]
fn demo_prints_commands_that_show_allow_and_deny_and_stops_on_sigterm() {
    let Some(grpcurl) = external_tool("grpcurl") else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let admin = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .args(["demo", "--grpc-listen", &addr, "--admin-listen", &admin])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let demo = ChildGuard(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    while !lines
        .last()
        .is_some_and(|l: &String| l.contains("Press Ctrl-C"))
    {
        lines.push(
            rx.recv_timeout(Duration::from_secs(30))
                .expect("demo printed its commands"),
        );
    }

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

    let pid = demo.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
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
}
