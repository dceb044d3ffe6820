//! The documentation book (`docs/`, mdBook): it builds, every link in it leads to a page
//! and an anchor that exist, and its configuration reference names every field of the
//! configuration's JSON Schema — and only those — so that a field added without docs, or
//! docs left for a field removed, fail here.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The field paths of the schema (`server.grpc_listen`, `issuers[].entra.tenant`, …),
/// objects and lists of objects expanded.
fn schema_paths(schema: &Value, node: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let resolve = |node: &Value| -> Value {
        let mut node = node.clone();
        loop {
            if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
                let name = reference.trim_start_matches("#/$defs/");
                node = schema["$defs"][name].clone();
            } else if let Some(any) = node.get("anyOf").and_then(Value::as_array) {
                match any
                    .iter()
                    .find(|v| v.get("type") != Some(&Value::from("null")))
                {
                    Some(v) => node = v.clone(),
                    None => return node,
                }
            } else {
                return node;
            }
        }
    };
    let node = resolve(node);
    if let Some(items) = node.get("items") {
        let items = resolve(items);
        if items.get("properties").is_some() {
            schema_paths(schema, &items, &format!("{prefix}[]"), out);
        }
        return;
    }
    let Some(properties) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, child) in properties {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        out.insert(path.clone());
        schema_paths(schema, child, &path, out);
    }
}

/// The fields the reference's tables name: the first cell's `code` spans, a second name
/// after ` / ` being a sibling of the first (`jwks.min_refresh_interval` /
/// `max_refresh_interval`).
fn documented(reference: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in reference.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('|').nth(1).unwrap_or_default();
        let names: Vec<&str> = cell.split('`').skip(1).step_by(2).collect();
        let Some(first) = names.first() else { continue };
        out.insert((*first).to_owned());
        let parent = first.rsplit_once('.').map(|(p, _)| p);
        for sibling in &names[1..] {
            out.insert(match parent {
                Some(parent) => format!("{parent}.{sibling}"),
                None => (*sibling).to_owned(),
            });
        }
    }
    out
}

#[test]
fn the_configuration_reference_names_every_field_of_the_schema_and_no_other() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(REPO).join("config/portcullis.schema.json")).unwrap(),
    )
    .unwrap();
    let mut fields = BTreeSet::new();
    schema_paths(&schema, &schema, "", &mut fields);
    let reference =
        std::fs::read_to_string(Path::new(REPO).join("docs/src/reference/configuration.md"))
            .unwrap();
    let documented = documented(&reference);
    // A field is documented by its own row, by a row of a section containing it
    // (`routes[].require` documents `routes[].require.scopes`), or — a section — by the
    // rows of its fields (`server` by `server.grpc_listen`…).
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner.starts_with(&format!("{outer}."))
            || inner.starts_with(&format!("{outer}[]"))
    };
    let covered = |field: &str| {
        documented
            .iter()
            .any(|d| within(field, d) || within(d, field))
    };
    let missing: Vec<&String> = fields.iter().filter(|f| !covered(f)).collect();
    assert!(
        missing.is_empty(),
        "fields of config/portcullis.schema.json with no row in docs/src/reference/configuration.md: {missing:?}"
    );
    let stale: Vec<&String> = documented.iter().filter(|d| !fields.contains(*d)).collect();
    assert!(
        stale.is_empty(),
        "rows of docs/src/reference/configuration.md naming no field of the schema: {stale:?}"
    );
}

/// Every `href` and `id` of an HTML page.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

fn pages(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            pages(&path, out);
        } else if path.extension().is_some_and(|e| e == "html") {
            out.push(path);
        }
    }
}

#[test]
fn the_book_builds_and_every_link_in_it_leads_somewhere() {
    let Some(mdbook) = common::external_tool("mdbook") else {
        return;
    };
    let out = common::envoy::test_dir("book");
    let status = Command::new(mdbook)
        .args(["build", "--dest-dir"])
        .arg(&out)
        .arg(Path::new(REPO).join("docs"))
        .status()
        .unwrap();
    assert!(status.success(), "mdbook build failed");
    let mut all = Vec::new();
    pages(&out, &mut all);
    assert!(all.len() > 20, "{} pages", all.len());
    let mut broken = Vec::new();
    for page in &all {
        let html = std::fs::read_to_string(page).unwrap();
        for href in attributes(&html, "href") {
            if href.contains("://") || href.starts_with("mailto:") || href.is_empty() {
                continue;
            }
            let (file, fragment) = href.split_once('#').unwrap_or((href, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {href} (no such page)", page.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|e| e == "html") {
                let target_html = std::fs::read_to_string(&target).unwrap();
                if !attributes(&target_html, "id").contains(&fragment) {
                    broken.push(format!("{}: {href} (no such anchor)", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
