use super::*;

fn norm(p: &str) -> Result<String, PathError> {
    normalize_path(p).map(Cow::into_owned)
}

fn all(p: &str) -> Vec<String> {
    readings(p).unwrap().iter().map(str::to_owned).collect()
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
        "/%252e%252e/admin",
        "/a%252Fb",
        "/a%2525",
        // Escaped hex digits after %25 decode to a double escape (found by fuzzing).
        "/%25%36%31dmin",
        "/%25A%35",
        "/%25%34%31",
    ] {
        assert_eq!(norm(bad), Err(PathError::BadEncoding), "{bad:?}");
    }
}

#[test]
fn plain_paths_have_one_reading() {
    assert_eq!(all("/api/orders/7"), ["/api/orders/7"]);
    assert!(readings("/api/orders/7").unwrap().others.is_empty());
    assert_eq!(
        readings("/a%2Fb").unwrap().traits,
        PathTraits {
            escaped_separator: true,
            parameters: false
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
