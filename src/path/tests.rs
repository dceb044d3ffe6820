use super::*;
use crate::upstream::{Framework, Frameworks};

fn norm(p: &str) -> Result<String, PathError> {
    normalize_path(p).map(Cow::into_owned)
}

fn read(p: &str, frameworks: Frameworks) -> Result<Vec<String>, PathError> {
    readings(p, normalize_path(p)?, frameworks).map(|r| r.iter().map(str::to_owned).collect())
}

fn all(p: &str) -> Vec<String> {
    read(p, Frameworks::ALL).unwrap()
}

#[test]
fn canonical_paths_are_borrowed_unchanged() {
    for p in [
        "/",
        "/api/orders",
        "/api/orders/",
        "/a.b/c..d/.e",
        "/a;b",
        "/~u/a:b@c!$&'()*+,=",
    ] {
        assert!(
            matches!(normalize_path(p), Ok(Cow::Borrowed(q)) if q == p),
            "{p}"
        );
    }
}

#[test]
fn query_is_ignored() {
    assert_eq!(norm("/api/orders?x=/admin").unwrap(), "/api/orders");
    assert_eq!(split_query("/a?b?c"), ("/a", Some("b?c")));
    assert_eq!(split_query("/a"), ("/a", None));
}

#[test]
fn dot_segments_and_slashes_cannot_escape_a_route() {
    assert_eq!(norm("/public/../admin").unwrap(), "/admin");
    assert_eq!(norm("/public/./x").unwrap(), "/public/x");
    assert_eq!(norm("//admin").unwrap(), "/admin");
    assert_eq!(norm("/../../admin").unwrap(), "/admin");
    assert_eq!(norm("/a/b/..").unwrap(), "/a/");
    assert_eq!(norm("/..").unwrap(), "/");
    assert_eq!(norm("/a//").unwrap(), "/a/");
}

#[test]
fn every_spelling_of_a_character_has_one_canonical_form() {
    assert_eq!(norm("/%61dmin").unwrap(), "/admin");
    assert_eq!(norm("/public/%2e%2e/admin").unwrap(), "/admin");
    assert_eq!(norm("/public/%2E%2E/admin").unwrap(), "/admin");
    assert_eq!(norm("/a%21b%3a").unwrap(), "/a!b:");
    // Not allowed raw in a segment: escaped, so raw and escaped spellings agree.
    assert_eq!(norm("/a\"b").unwrap(), "/a%22b");
    assert_eq!(norm("/a%22b").unwrap(), "/a%22b");
    assert_eq!(norm("/café").unwrap(), "/caf%C3%A9");
    assert_eq!(norm("/caf%c3%a9").unwrap(), "/caf%C3%A9");
    // Structural characters stay escaped, upper-cased: never separators here.
    assert_eq!(norm("/a%2fb").unwrap(), "/a%2Fb");
    assert_eq!(norm("/a%5cb%3bc%3fd%23e").unwrap(), "/a%5Cb%3Bc%3Fd%23e");
    assert_eq!(norm("/100%25").unwrap(), "/100%25");
}

#[test]
fn broken_or_hostile_paths_are_refused() {
    assert_eq!(norm(""), Err(PathError::NotAbsolute));
    assert_eq!(norm("api"), Err(PathError::NotAbsolute));
    assert_eq!(norm("*"), Err(PathError::NotAbsolute));
    for bad in [
        "/a%zz",
        "/a%4",
        "/a%",
        "/a\r\nb",
        "/a b",
        "/a\tb",
        "/a\\..\\admin",
        "/a#frag",
        "/a%00b",
        // Escaped control characters: `$` in a regex router matches before a final newline.
        "/api/orders/export%0a",
        "/api/orders/export%0D",
        "/a%09b",
        "/a%7F",
        "/a%1b",
    ] {
        assert_eq!(norm(bad), Err(PathError::BadEncoding), "{bad:?}");
    }
}

#[test]
fn double_escapes_are_kept_and_read_decoded_once_more() {
    assert_eq!(norm("/%252e%252e/admin").unwrap(), "/%252e%252e/admin");
    assert_eq!(all("/%252e%252e/admin"), ["/%252e%252e/admin", "/admin"]);
    assert_eq!(all("/%2561dmin"), ["/%2561dmin", "/admin"]);
    // Escaped hex digits after %25 decode to a double escape too (found by fuzzing).
    assert_eq!(all("/%25%36%31dmin"), ["/%2561dmin", "/admin"]);
    assert_eq!(all("/public/50%25A1"), ["/public/50%25A1", "/public/50%A1"]);
    assert_eq!(all("/a%252Fb"), ["/a%252Fb", "/a%2Fb", "/a/b"]);
    assert_eq!(all("/100%25"), ["/100%25"]);
    // A second decoding that makes a control character refuses the path.
    assert_eq!(
        read("/export%250a", Frameworks::ALL),
        Err(PathError::BadEncoding)
    );
    // Upstreams that decode once read it as it is.
    assert_eq!(
        read("/export%250a", Frameworks::of(&[Framework::Rails])).unwrap(),
        ["/export%250a"]
    );
    assert!(PathTraits::of("/%2561").double_escape);
    assert!(!PathTraits::of("/100%25").double_escape);
}

#[test]
fn a_format_suffix_may_name_the_response_format() {
    assert_eq!(
        all("/api/orders/export.json"),
        ["/api/orders/export.json", "/api/orders/export"]
    );
    assert_eq!(all("/admin.json"), ["/admin.json", "/admin"]);
    assert_eq!(
        all("/x/export.tar.gz"),
        ["/x/export.tar.gz", "/x/export", "/x/export.tar"]
    );
    // Only the last segment, never a bare extension.
    assert_eq!(all("/a.b/c"), ["/a.b/c"]);
    assert_eq!(all("/.well-known"), ["/.well-known"]);
    // Express reads no suffix.
    assert_eq!(
        read("/admin.json", Frameworks::of(&[Framework::Express])).unwrap(),
        ["/admin.json"]
    );
}

#[test]
fn trailing_dots_and_spaces_may_be_dropped_from_segments() {
    assert_eq!(all("/admin./secret"), ["/admin./secret", "/admin/secret"]);
    assert_eq!(
        all("/admin%20/secret"),
        ["/admin%20/secret", "/admin/secret"]
    );
    assert_eq!(
        all("/api/orders/export%2e"),
        ["/api/orders/export.", "/api/orders/export"]
    );
    assert!(all("/admin.%20./x").contains(&"/admin/x".to_owned()));
    assert_eq!(
        read("/admin./secret", Frameworks::of(&[Framework::Django])).unwrap(),
        ["/admin./secret"]
    );
}

#[test]
fn readings_compose_and_are_bounded() {
    // A trailing slash, then a format suffix, then a trailing dot.
    assert!(all("/admin.json/").contains(&"/admin".to_owned()));
    assert!(all("/admin..json").contains(&"/admin".to_owned()));
    // Separators decoded, then parameters dropped, then a suffix.
    assert!(all("/public;x=%2F..%2Fadmin.json").contains(&"/admin".to_owned()));
    let many = format!("/x/{}", "a.".repeat(readings::MAX_READINGS));
    assert_eq!(
        read(&many, Frameworks::ALL),
        Err(PathError::TooManyReadings)
    );
}

#[test]
fn folding_lowers_ascii_and_the_letters_whose_pair_is_ascii() {
    assert_eq!(fold("/ADMIN/Secret", false), "/admin/secret");
    assert_eq!(fold("/adm%C4%B1n", true), "/admin");
    assert_eq!(fold("/ADM%C4%B0N", true), "/admin");
    assert_eq!(fold("/%C5%BFecret", true), "/secret");
    assert_eq!(fold("/%E2%84%AAey", true), "/key");
    assert_eq!(fold("/adm%C4%B1n", false), "/adm%c4%b1n");
    assert_eq!(fold("/caf%C3%A9", true), "/caf%c3%a9");
}

#[test]
fn plain_paths_have_one_reading() {
    assert_eq!(all("/api/orders/7"), ["/api/orders/7"]);
    assert_eq!(
        PathTraits::of("/a%2Fb"),
        PathTraits {
            escaped_separator: true,
            parameters: false,
            double_escape: false,
        }
    );
}

#[test]
fn a_trailing_slash_may_be_ignored() {
    assert_eq!(
        all("/api/orders/7/history/"),
        ["/api/orders/7/history/", "/api/orders/7/history"]
    );
    assert_eq!(all("/"), ["/"]);
}

#[test]
fn escaped_separators_may_be_decoded() {
    assert_eq!(
        all("/public/..%2Fadmin/secret"),
        ["/public/..%2Fadmin/secret", "/admin/secret"]
    );
    assert_eq!(all("/admin%2fsecret"), ["/admin%2Fsecret", "/admin/secret"]);
    assert_eq!(
        all("/api/orders/7%5Chistory"),
        ["/api/orders/7%5Chistory", "/api/orders/7/history"]
    );
}

#[test]
fn parameters_may_be_dropped_before_or_after_decoding() {
    assert_eq!(
        all("/api/orders/7/history;x=1"),
        ["/api/orders/7/history;x=1", "/api/orders/7/history"]
    );
    assert_eq!(
        all("/public/..;/api/orders"),
        ["/public/..;/api/orders", "/api/orders"]
    );
    assert_eq!(all("/a%3Bx/b"), ["/a%3Bx/b", "/a/b"]);
    // Before decoding the parameter swallows the rest of the segment; after decoding the
    // escaped separator ends it first.
    let both = all("/public;x=%2F..%2F..%2Fadmin");
    assert!(both.contains(&"/public".to_owned()), "{both:?}");
    assert!(both.contains(&"/admin".to_owned()), "{both:?}");
}

#[test]
fn prefixes_match_whole_segments() {
    assert!(prefix_matches("/api/orders", "/api/orders"));
    assert!(prefix_matches("/api/orders", "/api/orders/7"));
    assert!(!prefix_matches("/api/orders", "/api/ordersX"));
    assert!(prefix_matches("/", "/anything"));
    assert!(prefix_matches("/api/", "/api/x"));
}

#[test]
fn templates_match_segment_by_segment() {
    use PathSegment::{Literal, One, Rest};
    let item = [Literal("orders".into()), One];
    assert!(template_matches(&item, "/orders/7"));
    assert!(!template_matches(&item, "/orders"));
    assert!(!template_matches(&item, "/orders/"));
    assert!(!template_matches(&item, "/orders/7/lines"));
    let files = [Literal("files".into()), Rest];
    assert!(template_matches(&files, "/files"));
    assert!(template_matches(&files, "/files/a/b/c"));
    assert!(!template_matches(&files, "/filesX/a"));
    let nested = [Literal("a".into()), One, Literal("b".into()), Rest];
    assert!(template_matches(&nested, "/a/1/b/2"));
    assert_eq!(template_base(&nested), "/a");
    assert_eq!(template_base(&[One]), "/");
}
