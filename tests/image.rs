//! The container image, checked without a container engine: the Dockerfile's build stage
//! is replayed step by step (WORKDIR, COPY, RUN) in a scratch directory holding only what
//! it copies, so a file the build needs and the Dockerfile forgets (the `check` bench
//! once) fails here. The release profile is lightened through Cargo's environment
//! (no LTO, opt-level 0) to keep the suite fast: what is proved is the file set and the
//! commands, not the optimiser. The runtime stage is checked for what users rely on:
//! non-root, OCI labels, base images as build arguments.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The replay compiles every dependency once on a fresh machine.
const BUILD_LIMIT: Duration = Duration::from_secs(30 * 60);

#[derive(Debug)]
enum Step {
    Workdir(String),
    Copy { sources: Vec<String>, dest: String },
    Run(String),
}

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|i| {
            let (word, rest) = i.split_once(' ').unwrap_or((&i, ""));
            (word.to_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// The steps of the stage named `name`.
fn stage(dockerfile: &str, name: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut inside = false;
    for (word, rest) in instructions(dockerfile) {
        if word == "FROM" {
            inside = rest.to_lowercase().ends_with(&format!(" as {name}"));
            continue;
        }
        if !inside {
            continue;
        }
        match word.as_str() {
            "WORKDIR" => steps.push(Step::Workdir(rest)),
            "RUN" => steps.push(Step::Run(rest)),
            "COPY" => {
                assert!(
                    !rest.starts_with("--"),
                    "COPY flags are not replayed: {rest}"
                );
                let mut words: Vec<String> = rest.split_whitespace().map(str::to_owned).collect();
                let dest = words.pop().unwrap();
                steps.push(Step::Copy {
                    sources: words,
                    dest,
                });
            }
            "ARG" | "ENV" | "LABEL" => {}
            other => panic!("the replay does not know {other}"),
        }
    }
    assert!(!steps.is_empty(), "no stage named {name}");
    steps
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

/// Runs `script` with `sh -c` in `dir`, killed past [`BUILD_LIMIT`]; its output.
fn run(script: &str, dir: &Path) -> String {
    let log = dir.join(".replay.log");
    let mut child = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTFLAGS")
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "256")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + BUILD_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`{script}` ran past {BUILD_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "`{script}` failed ({status}):\n{output}");
    output
}

#[test]
fn the_build_stage_builds_from_exactly_the_files_it_copies() {
    let dockerfile = std::fs::read_to_string(Path::new(REPO).join("Dockerfile")).unwrap();
    let ignored = std::fs::read_to_string(Path::new(REPO).join(".dockerignore")).unwrap();
    let scratch = std::env::temp_dir().join(format!("portcullis-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    // Dependencies compiled by an earlier replay are reused; the crate is rebuilt.
    let target = Path::new(REPO).join("target").join("image-replay");
    std::fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, scratch.join("target")).unwrap();

    let mut workdir = PathBuf::from("/");
    let mut output = String::new();
    for step in stage(&dockerfile, "build") {
        let here = scratch.join(workdir.strip_prefix("/").unwrap());
        match step {
            Step::Workdir(dir) => {
                workdir = workdir.join(dir);
                std::fs::create_dir_all(scratch.join(workdir.strip_prefix("/").unwrap())).unwrap();
            }
            Step::Copy { sources, dest } => {
                let into_dir = dest.ends_with('/') || sources.len() > 1;
                for source in &sources {
                    assert!(
                        !ignored.lines().any(|l| l.trim() == source),
                        "{source} is copied but .dockerignore leaves it out"
                    );
                    let to = if into_dir {
                        here.join(&dest).join(source)
                    } else {
                        here.join(&dest)
                    };
                    copy_tree(&Path::new(REPO).join(source), &to);
                }
            }
            Step::Run(script) => output.push_str(&run(&script, &here)),
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        output.contains(&format!("portcullis {}", env!("CARGO_PKG_VERSION"))),
        "the built binary reports its version:\n{output}"
    );
}

#[test]
fn the_image_runs_as_non_root_with_labels_and_replaceable_bases() {
    let dockerfile = std::fs::read_to_string(Path::new(REPO).join("Dockerfile")).unwrap();
    let instructions = instructions(&dockerfile);
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(w, _)| w == "FROM")
        .map(|(_, r)| r.as_str())
        .collect();
    assert!(
        froms.iter().all(|f| f.starts_with("${")),
        "base images are build arguments: {froms:?}"
    );
    let last_stage = instructions.iter().rposition(|(w, _)| w == "FROM").unwrap();
    let runtime = &instructions[last_stage..];
    assert!(
        runtime
            .iter()
            .any(|(w, r)| w == "USER" && !r.starts_with("0") && !r.starts_with("root")),
        "the image runs as a non-root user"
    );
    let labels: String = runtime
        .iter()
        .filter(|(w, _)| w == "LABEL")
        .map(|(_, r)| r.as_str())
        .collect();
    let cargo_toml = std::fs::read_to_string(Path::new(REPO).join("Cargo.toml")).unwrap();
    assert!(cargo_toml.contains("license = \"Apache-2.0\""));
    for label in [
        "org.opencontainers.image.title",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision=\"${SOURCE_COMMIT}\"",
        "org.opencontainers.image.source=\"${SOURCE_URL}\"",
        "org.opencontainers.image.licenses=\"Apache-2.0\"",
    ] {
        assert!(labels.contains(label), "{label} missing: {labels}");
    }
}
