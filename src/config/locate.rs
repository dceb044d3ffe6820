//! Where a field is in the YAML text: the line of `routes[1].require.scopes`, so that a
//! problem can be reported as `file:line` (editors and CI annotations jump there). Read
//! from the parser's events (serde-saphyr's own parser), not by searching the text.

use serde_saphyr::granit_parser::{Event, Parser};

use super::FieldProblem;

/// One step of a field path.
#[derive(Debug, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// `issuers[0].audiences` → `issuers`, `0`, `audiences`; `None` if it is not one.
fn steps(field: &str) -> Option<Vec<Step<'_>>> {
    let mut steps = Vec::new();
    for part in field.split('.') {
        let (key, mut rest) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while !rest.is_empty() {
            let (index, after) = rest.split_once(']')?;
            steps.push(Step::Index(index.parse().ok()?));
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    Some(steps)
}

/// Where the walk is inside one collection.
enum Frame {
    /// In a mapping: the key just read (`None`: the next scalar is a key).
    Mapping(Option<String>),
    /// In a sequence: the index of the next item.
    Sequence(usize),
}

/// The 1-based line and column where `field` (its key, or its item) starts in `text`,
/// or, when the field itself is absent (a required one missing), where its nearest
/// present parent starts.
pub fn position_of(text: &str, field: &str) -> Option<(usize, usize)> {
    let target = steps(field)?;
    let mut frames: Vec<Frame> = Vec::new();
    // The deepest node found so far whose path is a prefix of the target: its depth and
    // position.
    let mut best: Option<(usize, (usize, usize))> = None;
    let mut path: Vec<String> = Vec::new();
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else { break };
        let at = (span.start.line(), span.start.col() + 1);
        // A node (or a key, naming its value's path) starts at `path`.
        let starts = |path: &[String], best: &mut Option<(usize, (usize, usize))>| {
            let matched = path
                .iter()
                .zip(&target)
                .take_while(|(have, want)| match want {
                    Step::Key(key) => have == key,
                    Step::Index(index) => **have == index.to_string(),
                })
                .count();
            if matched == path.len() && best.is_none_or(|(depth, _)| matched > depth) {
                *best = Some((matched, at));
            }
        };
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Mapping(key @ None)) = frames.last_mut() {
                    path.push(value.to_string());
                    *key = Some(value.into_owned());
                    starts(&path, &mut best);
                } else {
                    next_item(&mut frames, &mut path);
                    starts(&path, &mut best);
                    leave(&mut frames, &mut path);
                }
            }
            Event::Alias(..) => {
                next_item(&mut frames, &mut path);
                leave(&mut frames, &mut path);
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                next_item(&mut frames, &mut path);
                starts(&path, &mut best);
                frames.push(match event {
                    Event::MappingStart(..) => Frame::Mapping(None),
                    _ => Frame::Sequence(0),
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                frames.pop();
                leave(&mut frames, &mut path);
            }
            _ => {}
        }
        if best.is_some_and(|(depth, _)| depth == target.len()) {
            break;
        }
    }
    best.map(|(_, at)| at)
}

/// The line alone (see [`position_of`]).
#[cfg(test)]
fn line_of(text: &str, field: &str) -> Option<usize> {
    position_of(text, field).map(|(line, _)| line)
}

/// A node starts: in a sequence it is the next item, whose index joins the path (in a
/// mapping it is the value of the key read last, already on the path).
fn next_item(frames: &mut [Frame], path: &mut Vec<String>) {
    if let Some(Frame::Sequence(next)) = frames.last_mut() {
        path.push(next.to_string());
        *next += 1;
    }
}

/// A node ended: the path goes back to its collection's, ready for the next key or item.
fn leave(frames: &mut [Frame], path: &mut Vec<String>) {
    match frames.last_mut() {
        Some(Frame::Mapping(key @ Some(_))) => {
            *key = None;
            path.pop();
        }
        Some(Frame::Sequence(_)) => {
            path.pop();
        }
        _ => {}
    }
}

/// Each problem with the line and column of its field in `text` and, under `routes[i]`,
/// the route's name; in the order of the file.
pub fn located(mut problems: Vec<FieldProblem>, text: &str) -> Vec<FieldProblem> {
    let document: Option<serde_json::Value> = serde_saphyr::from_str(text).ok();
    for problem in &mut problems {
        problem.at = position_of(text, &problem.field);
        problem.route = route_index(&problem.field)
            .and_then(|i| {
                document
                    .as_ref()?
                    .get("routes")?
                    .get(i)?
                    .get("name")?
                    .as_str()
            })
            .map(str::to_owned);
    }
    problems.sort_by_key(|p| p.at.unwrap_or((usize::MAX, 0)));
    problems
}

/// `i` of a field under `routes[i]`.
fn route_index(field: &str) -> Option<usize> {
    field
        .strip_prefix("routes[")?
        .split(']')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "server:
  realm: x
issuers:
  - issuer: https://a
    audiences: [one, two]
routes:
  - name: first
    path: { prefix: / }
  - name: second
    require:
      scopes:
        - A
        - B
";

    #[test]
    fn a_field_is_found_on_its_line() {
        assert_eq!(line_of(TEXT, "server.realm"), Some(2));
        assert_eq!(line_of(TEXT, "issuers[0].audiences"), Some(5));
        assert_eq!(line_of(TEXT, "routes[1]"), Some(9));
        assert_eq!(line_of(TEXT, "routes[1].name"), Some(9));
        assert_eq!(line_of(TEXT, "routes[1].require.scopes[1]"), Some(13));
        assert_eq!(line_of(TEXT, "routes[0].path.prefix"), Some(8));
    }

    #[test]
    fn a_missing_field_points_at_its_nearest_parent() {
        assert_eq!(line_of(TEXT, "routes[1].require.roles"), Some(10));
        assert_eq!(line_of(TEXT, "routes[0].methods"), Some(7));
        assert_eq!(line_of(TEXT, "dpop.replay"), Some(1));
        assert_eq!(line_of("not: [yaml", "not"), Some(1));
        assert_eq!(position_of(TEXT, "issuers[0].audiences"), Some((5, 5)));
        assert_eq!(line_of(TEXT, "routes[x]"), None);
    }
}
