//! A deliberately naive model of how lenient upstreams read a request path — string
//! operations only, written independently of `crate::path` — that the pipeline's
//! judgement is checked against: by the property tests (`tests.rs`) and by the `check`
//! fuzz target (`--cfg fuzzing`). It is never part of a decision.

/// One way an upstream reads a path.
#[derive(Debug, Clone, Copy)]
pub struct Upstream {
    /// Drop `;params` from each raw segment before decoding (Tomcat).
    pub params_before: bool,
    /// Percent-decode everything, `\\` being a separator afterwards.
    pub decode: bool,
    /// Decode a second time (IIS `allowDoubleEscaping`).
    pub twice: bool,
    /// Drop `;params` from each segment after decoding.
    pub params_after: bool,
    /// Drop the dots and spaces that end a segment (Win32); one of dots only is `..`.
    pub trim: bool,
    /// Ignore one trailing slash.
    pub trailing: bool,
    /// Cut the last segment at its first dot (Spring `*` suffix) or its last (Rails
    /// `(.:format)`): 0 none, 1 first, 2 last.
    pub format: u8,
    /// Compare case-insensitively: 0 no, 1 ASCII, 2 also `ı İ ſ K` as `i i s k`.
    pub fold: u8,
}

pub fn all_upstreams() -> Vec<Upstream> {
    let mut out = Vec::new();
    for bits in 0..64u8 {
        for format in 0..3 {
            for fold in 0..3 {
                out.push(Upstream {
                    params_before: bits & 1 != 0,
                    decode: bits & 2 != 0,
                    twice: bits & 2 != 0 && bits & 32 != 0,
                    params_after: bits & 4 != 0,
                    trailing: bits & 8 != 0,
                    trim: bits & 16 != 0,
                    format,
                    fold,
                });
            }
        }
    }
    out
}

/// Every escape decoded (`all`), or only those of unreserved characters, which every
/// upstream (and Envoy) decodes.
fn percent_decode(text: &str, all: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(Ok(b)) = text.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16))
            && (all || b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cut_params(path: &str) -> String {
    path.split('/')
        .map(|s| s.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// The segments the upstream serves for `raw`, and whether it ended with a slash.
pub fn upstream_path(raw: &str, u: Upstream) -> (Vec<String>, bool) {
    let mut path = raw.to_owned();
    if u.params_before {
        path = cut_params(&path);
    }
    path = if u.decode {
        percent_decode(&path, true).replace('\\', "/")
    } else {
        percent_decode(&path, false)
    };
    if u.twice {
        path = percent_decode(&path, true).replace('\\', "/");
    }
    if u.params_after {
        path = cut_params(&path);
    }
    if u.trim {
        path = path
            .split('/')
            .map(|s| {
                let t = s.trim_end_matches(['.', ' ']);
                if t.is_empty() && s.matches('.').count() >= 2 {
                    ".."
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join("/");
    }
    if u.fold == 2 {
        path = path
            .replace(['ı', 'İ'], "i")
            .replace('ſ', "s")
            .replace('\u{212a}', "k");
    }
    if u.fold > 0 {
        path = path.to_ascii_lowercase();
    }
    let trailing = path.len() > 1 && path.ends_with('/') && !u.trailing;
    let mut segments: Vec<String> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s.to_owned()),
        }
    }
    if u.format > 0
        && !trailing
        && let Some(last) = segments.last_mut()
    {
        let dot = if u.format == 1 {
            last.find('.')
        } else {
            last.rfind('.')
        };
        if let Some(at) = dot.filter(|&at| at > 0) {
            last.truncate(at);
        }
    }
    (segments, trailing)
}

/// Every path some lenient upstream serves for the request target `raw` (query and
/// fragment dropped), letters folded and one trailing slash ignored: what the fuzz
/// target's oracle compares the protected prefixes with.
#[cfg(fuzzing)]
pub fn lenient_paths(raw: &str) -> Vec<String> {
    let raw = raw.split(['?', '#']).next().unwrap_or("");
    all_upstreams()
        .into_iter()
        .filter(|u| u.fold > 0 && u.trailing)
        .map(|u| format!("/{}", upstream_path(raw, u).0.join("/")))
        .collect()
}
