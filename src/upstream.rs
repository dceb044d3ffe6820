//! The catalogue of upstream readings: each documented way a framework or server reads a
//! request otherwise than portcullis's canonical form does — which frameworks do it, where
//! it is documented, and an example. The pipeline judges a request under every reading of
//! the frameworks that may serve it and allows it only when each of them is allowed
//! ([`crate::path`] derives the paths, [`crate::extract`] the hosts and method overrides,
//! [`crate::policy`] judges them). Which frameworks serve a route is configuration
//! (`upstream:`, default every one of them): naming them drops the readings they never
//! give, never the others.
//!
//! What no reading can make safe is refused instead (a control character anywhere in the
//! path, `%0A` included: a regex router whose pattern ends in `$` matches before a final
//! newline; see [`crate::path`]).

use std::{borrow::Cow, fmt::Write};

/// A kind of upstream: a web framework, or a server that maps paths to files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Rails,
    Django,
    Flask,
    Express,
    Laravel,
    Symfony,
    Spring,
    Aspnet,
    Static,
}

impl Framework {
    pub const EVERY: [Framework; 9] = [
        Framework::Rails,
        Framework::Django,
        Framework::Flask,
        Framework::Express,
        Framework::Laravel,
        Framework::Symfony,
        Framework::Spring,
        Framework::Aspnet,
        Framework::Static,
    ];

    /// The name the configuration uses (`upstream: rails`).
    pub const fn name(self) -> &'static str {
        match self {
            Framework::Rails => "rails",
            Framework::Django => "django",
            Framework::Flask => "flask",
            Framework::Express => "express",
            Framework::Laravel => "laravel",
            Framework::Symfony => "symfony",
            Framework::Spring => "spring",
            Framework::Aspnet => "aspnet",
            Framework::Static => "static",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of frameworks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frameworks(u16);

impl Frameworks {
    /// Every framework: the default, and the strictest judgement.
    pub const ALL: Frameworks = Frameworks::of(&Framework::EVERY);

    pub const fn of(list: &[Framework]) -> Frameworks {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].bit();
            i += 1;
        }
        Frameworks(bits)
    }

    /// `all`, or one framework's name.
    pub fn named(name: &str) -> Option<Frameworks> {
        if name == "all" {
            return Some(Frameworks::ALL);
        }
        Framework::EVERY
            .iter()
            .find(|f| f.name() == name)
            .map(|f| Frameworks(f.bit()))
    }

    pub const fn union(self, other: Frameworks) -> Frameworks {
        Frameworks(self.0 | other.0)
    }

    pub const fn intersection(self, other: Frameworks) -> Frameworks {
        Frameworks(self.0 & other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether some framework of `self` gives `reading`.
    pub fn read(self, reading: Reading) -> bool {
        !self.intersection(reading.entry().frameworks).is_empty()
    }

    /// The frameworks' names, comma-separated (`every framework` for all of them).
    pub fn describe(self) -> String {
        if self == Frameworks::ALL {
            return "every framework".into();
        }
        Framework::EVERY
            .iter()
            .filter(|f| self.0 & f.bit() != 0)
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Default for Frameworks {
    fn default() -> Self {
        Frameworks::ALL
    }
}

/// One way of reading a request that some upstream takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    EscapedSeparators,
    PathParameters,
    TrailingSlash,
    AsciiCase,
    UnicodeCase,
    FormatSuffix,
    TrailingDotsSpaces,
    DoubleDecoding,
    HeadAsGet,
    OverrideHeaders,
    OverrideQuery,
    OverrideForm,
    OverrideJson,
    PhpParameterNames,
    ForwardedHost,
    RewriteHeaders,
}

/// A catalogue entry: the reading, its name, who reads so, the documentation that says so,
/// and a request it would let through if it were not judged.
#[derive(Debug)]
pub struct Entry {
    pub reading: Reading,
    pub id: &'static str,
    pub what: &'static str,
    pub frameworks: Frameworks,
    pub source: &'static str,
    pub example: &'static str,
}

use Framework::*;

/// Every reading, in the order the docs' table lists them.
pub const CATALOGUE: &[Entry] = &[
    Entry {
        reading: Reading::EscapedSeparators,
        id: "escaped_separators",
        what: "`%2F` and `%5C` decoded into separators before routing",
        frameworks: Frameworks::of(&[Django, Flask, Laravel, Symfony, Spring, Aspnet, Static]),
        source: "WSGI (PEP 3333) `PATH_INFO` is decoded; Symfony `UrlMatcher` `rawurldecode`s; servlet `getPathInfo`; static file servers",
        example: "`/public/..%2Fadmin/secret`",
    },
    Entry {
        reading: Reading::PathParameters,
        id: "path_parameters",
        what: "`;parameters` dropped from each segment, before or after decoding",
        frameworks: Frameworks::of(&[Spring, Static]),
        source: "Servlet spec (`;jsessionid`), Tomcat, Jetty, Spring `UrlPathHelper.removeSemicolonContent`",
        example: "`/public/..;/admin`",
    },
    Entry {
        reading: Reading::TrailingSlash,
        id: "trailing_slash",
        what: "one trailing slash ignored",
        frameworks: Frameworks::of(&[Rails, Express, Laravel, Symfony, Spring, Aspnet, Flask]),
        source: "Express `strict: false` (default), Rails Journey, Laravel `Request::path`, Symfony and Werkzeug redirects, Spring `setUseTrailingSlashMatch` (before 6), ASP.NET Core routing",
        example: "`/api/orders/7/history/`",
    },
    Entry {
        reading: Reading::AsciiCase,
        id: "ascii_case",
        what: "letters compared in either case",
        frameworks: Frameworks::of(&[Express, Aspnet, Spring, Django, Flask, Static]),
        source: "Express `caseSensitive: false` (default), ASP.NET Core routing, IIS and Windows or macOS file systems, `(?i)` route patterns",
        example: "`/ADMIN/secret`",
    },
    Entry {
        reading: Reading::UnicodeCase,
        id: "unicode_case",
        what: "non-ASCII letters whose case pair is ASCII (`ı` `İ` `ſ` `K`) compared as that letter",
        frameworks: Frameworks::of(&[Aspnet, Spring, Django, Flask]),
        source: "Python `re.IGNORECASE` (documented for these four), .NET `OrdinalIgnoreCase`, Java `equalsIgnoreCase`",
        example: "`/adm%C4%B1n/secret`",
    },
    Entry {
        reading: Reading::FormatSuffix,
        id: "format_suffix",
        what: "an extension on the last segment taken as a response format",
        frameworks: Frameworks::of(&[Rails, Spring, Symfony, Django, Aspnet]),
        source: "Rails routes' implicit `(.:format)`, Spring suffix pattern matching (default before 5.3), Symfony `.{_format}`, Django REST framework `format_suffix_patterns`, ASP.NET Core `[FormatFilter]`",
        example: "`/api/orders/export.json`, `/admin.json`",
    },
    Entry {
        reading: Reading::TrailingDotsSpaces,
        id: "trailing_dots_spaces",
        what: "dots and spaces at the end of a segment dropped",
        frameworks: Frameworks::of(&[Aspnet, Static]),
        source: "IIS and ASP.NET on Windows (Win32 path normalisation), Windows file servers",
        example: "`/admin./secret`, `/admin%20/secret`",
    },
    Entry {
        reading: Reading::DoubleDecoding,
        id: "double_decoding",
        what: "the path percent-decoded a second time (`%2561` is `a`)",
        frameworks: Frameworks::of(&[Aspnet, Spring, Static]),
        source: "IIS `allowDoubleEscaping`, handlers that decode an already decoded path, proxies that decode before forwarding",
        example: "`/%2561dmin`",
    },
    Entry {
        reading: Reading::HeadAsGet,
        id: "head_as_get",
        what: "`HEAD` served by the `GET` handler",
        frameworks: Frameworks::ALL,
        source: "RFC 9110 §9.3.2; every framework routes HEAD to GET",
        example: "`HEAD /api/orders/7/history` on a GET-only route",
    },
    Entry {
        reading: Reading::OverrideHeaders,
        id: "override_headers",
        what: "`X-HTTP-Method-Override`, `X-HTTP-Method`, `X-Method-Override` replace the method",
        frameworks: Frameworks::of(&[Rails, Express, Laravel, Symfony, Aspnet]),
        source: "Rack `MethodOverride`, Express `method-override`, Symfony `getMethod`, ASP.NET Core `UseHttpMethodOverride`",
        example: "`POST` + `X-HTTP-Method-Override: DELETE`",
    },
    Entry {
        reading: Reading::OverrideQuery,
        id: "override_query",
        what: "a `_method` query parameter replaces the method of a POST",
        frameworks: Frameworks::of(&[Laravel, Symfony, Spring, Express]),
        source: "Symfony `getMethod` (query when the body has none), Spring `HiddenHttpMethodFilter` (`getParameter`), `method-override('_method')`",
        example: "`POST /api/orders?_method=DELETE`",
    },
    Entry {
        reading: Reading::OverrideForm,
        id: "override_form",
        what: "a `_method` field of a form body (urlencoded, multipart, or a POST without a content type) replaces the method of a POST",
        frameworks: Frameworks::of(&[Rails, Laravel, Symfony, Spring, Aspnet, Express]),
        source: "Rack `MethodOverride` (a POST without a content type is a form to Rack), Symfony and Laravel forms, Spring `HiddenHttpMethodFilter`, ASP.NET Core `FormFieldName`, the `method-override` README's body getter",
        example: "`POST /api/orders` with body `_method=DELETE`",
    },
    Entry {
        reading: Reading::OverrideJson,
        id: "override_json",
        what: "a `_method` member of a JSON body replaces the method of a POST",
        frameworks: Frameworks::of(&[Laravel, Express]),
        source: "Laravel's request input is the JSON body (`getInputSource`); the `method-override` body getter over `express.json()`",
        example: "`POST /api/orders/7/history` with `{\"_method\": \"GET\"}`",
    },
    Entry {
        reading: Reading::PhpParameterNames,
        id: "php_parameter_names",
        what: "PHP rewrites parameter names: leading spaces dropped, `.` and ` ` become `_`, an unclosed `[` becomes `_`",
        frameworks: Frameworks::of(&[Laravel, Symfony]),
        source: "PHP manual, \"Variables From External Sources\" (dots and spaces in variable names)",
        example: "`?.method=GET`, `?+_method=GET`",
    },
    Entry {
        reading: Reading::ForwardedHost,
        id: "forwarded_host",
        what: "the host taken from `X-Forwarded-Host`, `Forwarded: host=`, `X-Original-Host` or `X-Host`",
        frameworks: Frameworks::of(&[
            Rails, Django, Flask, Express, Laravel, Symfony, Spring, Aspnet,
        ]),
        source: "Rack `Request#host`, Django `USE_X_FORWARDED_HOST`, Werkzeug `ProxyFix(x_host)`, Express `trust proxy`, Symfony and Laravel trusted proxies, Spring `ForwardedHeaderFilter`, ASP.NET Core `ForwardedHeaders`",
        example: "`Host: www.example.com` + `X-Forwarded-Host: admin.example.com`",
    },
    Entry {
        reading: Reading::RewriteHeaders,
        id: "rewrite_headers",
        what: "the path taken from `X-Original-URL` or `X-Rewrite-URL`",
        frameworks: Frameworks::of(&[Laravel, Symfony, Aspnet]),
        source: "IIS URL Rewrite (`HTTP_X_ORIGINAL_URL`), Symfony `prepareRequestUri` before 2.7.49/3.4.14/4.1.3, Zend Framework, Yii 1",
        example: "`GET /public/x` + `X-Original-URL: /admin/secret`",
    },
];

// Each reading's entry is at its own index (checked when compiling).
const _: () = {
    let mut i = 0;
    while i < CATALOGUE.len() {
        assert!(CATALOGUE[i].reading as usize == i);
        i += 1;
    }
    assert!(CATALOGUE.len() == Reading::RewriteHeaders as usize + 1);
};

impl Reading {
    /// This reading's catalogue entry.
    pub const fn entry(self) -> &'static Entry {
        &CATALOGUE[self as usize]
    }
}

/// A method an upstream may serve the request as instead of its own (a method override).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodOverride<'a> {
    /// The method asked for; `None` when some upstream may read one that portcullis cannot
    /// see (a form or JSON body Envoy did not send, or sent in part).
    pub method: Option<Cow<'a, str>>,
    /// The frameworks that read it.
    pub by: Frameworks,
}

/// The catalogue as the Markdown table of docs/src/security-model.md (`portcullis readings` prints it).
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| reading | what the upstream does | who | documented in | e.g. |\n|---|---|---|---|---|\n",
    );
    for e in CATALOGUE {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} | {} |",
            e.id,
            e.what,
            e.frameworks.describe(),
            e.source,
            e.example
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reading_has_one_entry_and_a_unique_id() {
        for (i, entry) in CATALOGUE.iter().enumerate() {
            assert_eq!(entry.reading.entry().id, entry.id);
            assert!(
                CATALOGUE[i + 1..]
                    .iter()
                    .all(|e| e.id != entry.id && e.reading != entry.reading),
                "{} twice",
                entry.id
            );
        }
    }

    #[test]
    fn frameworks_are_named_as_the_configuration_names_them() {
        assert_eq!(Frameworks::named("all"), Some(Frameworks::ALL));
        let rails = Frameworks::named("rails").unwrap();
        assert!(rails.read(Reading::FormatSuffix));
        assert!(!rails.read(Reading::EscapedSeparators));
        assert_eq!(Frameworks::named("tomcat"), None);
        assert_eq!(
            rails.union(Frameworks::named("django").unwrap()).describe(),
            "rails, django"
        );
        assert!(Frameworks::ALL.read(Reading::HeadAsGet));
    }

    #[test]
    fn the_security_model_shows_the_catalogue() {
        let chapter = include_str!("../docs/src/security-model.md");
        assert!(
            chapter.contains(&markdown_table()),
            "docs/src/security-model.md's table of readings differs from `portcullis readings`:\n{}",
            markdown_table()
        );
    }
}
