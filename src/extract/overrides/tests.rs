use super::*;

fn body<'a>(content_type: Option<&'a str>, bytes: &'a [u8]) -> Body<'a> {
    Body {
        bytes,
        content_type,
        ..Default::default()
    }
}

/// The methods found (`None`: unknown) and who reads them.
fn found(method: &str, body: Body<'_>) -> Vec<(Option<String>, Frameworks)> {
    let mut out = Vec::new();
    from_body(method, body, &mut out);
    out.into_iter()
        .map(|o| (o.method.map(Cow::into_owned), o.by))
        .collect()
}

fn form() -> Frameworks {
    Reading::OverrideForm.entry().frameworks
}

fn json() -> Frameworks {
    Reading::OverrideJson.entry().frameworks
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

#[test]
fn a_form_body_is_read_as_rack_php_and_spring_read_it() {
    assert_eq!(
        found("POST", body(FORM, b"a=1&_method=DELETE")),
        [(Some("DELETE".into()), form())]
    );
    assert_eq!(
        found("post", body(FORM, b"_method=+delete+")),
        [(Some("delete".into()), form())]
    );
    let php = form().intersection(Reading::PhpParameterNames.entry().frameworks);
    assert_eq!(
        found("POST", body(FORM, b"%2Emethod=GET")),
        [(Some("GET".into()), php)]
    );
    // Only POST: no framework reads a body override on another method.
    assert_eq!(found("PUT", body(FORM, b"_method=DELETE")), []);
    assert_eq!(found("POST", body(FORM, b"payment_method=card")), []);
    // A POST without a content type is a form to Rack (Rails) only.
    assert_eq!(
        found("POST", body(None, b"_method=DELETE")),
        [(Some("DELETE".into()), Frameworks::of(&[Framework::Rails]))]
    );
    // Types no framework reads an override from.
    assert_eq!(
        found("POST", body(Some("text/plain"), b"_method=DELETE")),
        []
    );
    // Not UTF-8: still read.
    assert_eq!(
        found("POST", body(FORM, b"x=\xff&_method=DELETE")),
        [(Some("DELETE".into()), form())]
    );
}

#[test]
fn a_json_body_is_read_as_laravel_and_express_read_it() {
    let ct = Some("application/vnd.api+json");
    assert_eq!(
        found("POST", body(ct, br#"{"a": 1, "_method": "GET"}"#)),
        [(Some("GET".into()), json())]
    );
    assert_eq!(
        found(
            "POST",
            body(Some("application/json"), br#"{"_method": ["DELETE", 1]}"#)
        ),
        [(Some("DELETE".into()), json())]
    );
    assert_eq!(
        found("POST", body(Some("application/json"), br#"{"_method": 7}"#)),
        []
    );
    assert_eq!(
        found("POST", body(Some("application/json"), br#"[1, 2]"#)),
        []
    );
    // Not JSON to us: a laxer parser may still find a member.
    assert_eq!(
        found(
            "POST",
            body(Some("application/json"), b"{\"_method\": \"GET\",}")
        ),
        [(None, json())]
    );
}

#[test]
fn a_multipart_body_is_read_part_by_part() {
    let ct = Some("multipart/form-data; boundary=\"XX\"");
    let text = b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"_method\"\r\n\r\nbody\r\n--XX\r\ncontent-disposition: form-data; name=\"_method\"\r\n\r\nDELETE\r\n--XX--\r\n";
    assert_eq!(
        found("POST", body(ct, text)),
        [(Some("DELETE".into()), form())]
    );
    let plain =
        b"--XX\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n_method=GET\r\n--XX--\r\n";
    assert_eq!(found("POST", body(ct, plain)), []);
    // What cannot be read for certain is an override of unknown method.
    for unsure in [
        &b"--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end"[..],
        b"--XX\r\nContent-Disposition: form-data; name*=utf-8''_method\r\n\r\nGET\r\n--XX--",
        b"--XX\r\nno headers here--XX--",
    ] {
        assert_eq!(found("POST", body(ct, unsure)), [(None, form())]);
    }
    assert_eq!(
        found("POST", body(Some("multipart/form-data"), plain)),
        [(None, form())],
        "no boundary"
    );
}

#[test]
fn a_body_not_seen_whole_may_carry_an_override() {
    let partial = Body {
        partial: Some("true"),
        ..body(FORM, b"a=1")
    };
    assert_eq!(found("POST", partial), [(None, form())]);
    // No bytes: a body only when nothing shows there is none.
    assert_eq!(found("POST", body(FORM, b"")), [(None, form())]);
    let length_zero = Body {
        content_length: Some("0"),
        ..body(FORM, b"")
    };
    assert_eq!(found("POST", length_zero), []);
    let sent = Body {
        sent: true,
        ..body(None, b"")
    };
    assert_eq!(found("POST", sent), []);
    // Envoy only marks a body it sent: the mark on none is a client's.
    let spoofed = Body {
        partial: Some("false"),
        ..body(FORM, b"")
    };
    assert_eq!(found("POST", spoofed), [(None, form())]);
    // Bodies are said to be sent, but this one has a length: Envoy did not send it.
    for unsent in [
        Body {
            sent: true,
            content_length: Some("12"),
            ..body(FORM, b"")
        },
        Body {
            sent: true,
            transfer_encoding: true,
            ..body(FORM, b"")
        },
        // A forward-auth proxy's subrequest: the original body is never seen.
        Body {
            sent: true,
            size: -1,
            content_length: Some("0"),
            ..body(FORM, b"")
        },
    ] {
        assert_eq!(found("POST", unsent), [(None, form())], "{unsent:?}");
    }
}

#[test]
fn php_registers_names_its_own_way() {
    assert_eq!(php_name(".method"), ("_method".into(), false));
    assert_eq!(php_name("  _method"), ("_method".into(), false));
    assert_eq!(php_name("_me thod"), ("_me_thod".into(), false));
    assert_eq!(php_name("_method[x]"), ("_method".into(), true));
    assert_eq!(php_name("_method[x"), ("_method_x".into(), false));
    assert_eq!(php_name("a.b[c.d]"), ("a_b".into(), true));
}
