//! HTTP routing decisions: method, path and query → what to serve or why not. Pure; the
//! tiny_http server in `server.rs` carries them out.

pub mod server;

/// What a valid request asks for. A target is one of the names `route` was given; None is
/// every target, which with a single target is the same as naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// A fresh probe (of each target), its line appended and returned.
    Latency { target: Option<&'a str> },
    /// The results file, or only the lines naming `target`; all of them or the last `tail`.
    Results { target: Option<&'a str>, tail: Option<u64> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub route: Route<'a>,
    /// HEAD: headers only, and no probe is sent for it.
    pub head: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NotFound,
    /// `target=` names no target: the name asked for, and the targets there are.
    UnknownTarget {
        name: String,
        targets: String,
    },
    MethodNotAllowed,
    BadRequest(String),
}

/// The methods every route answers, for the `Allow` header of a 405.
pub const ALLOW: &str = "GET, HEAD";

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::NotFound | Rejection::UnknownTarget { .. } => 404,
            Rejection::MethodNotAllowed => 405,
            Rejection::BadRequest(_) => 400,
        }
    }

    /// A one-line body saying what to do instead.
    pub fn body(&self) -> String {
        match self {
            Rejection::NotFound => "not found: try GET /latency or GET /latency-results\n".into(),
            Rejection::UnknownTarget { name, targets } => {
                format!("unknown target '{}'; {}\n", name.escape_debug(), the_targets(targets))
            }
            Rejection::MethodNotAllowed => format!("method not allowed: use {ALLOW}\n"),
            Rejection::BadRequest(reason) => format!("bad request: {reason}\n"),
        }
    }
}

fn the_targets(targets: &str) -> String {
    if targets.is_empty() { "no target is configured".into() } else { format!("the targets are: {targets}") }
}

/// Decides what `method` on `url` (path and query, as in the request line) gets, when the
/// daemon probes `targets`.
pub fn route<'a, T: AsRef<str>>(method: &str, url: &str, targets: &'a [T]) -> Result<Request<'a>, Rejection> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let known = matches!(path, "/latency" | "/latency-results");
    if !known {
        return Err(Rejection::NotFound);
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Rejection::MethodNotAllowed),
    };
    let latency = path == "/latency";
    let query = parse_query(query, latency)?;
    let target = query.target.map(|name| find_target(&name, targets)).transpose()?.flatten();
    let route = if latency { Route::Latency { target } } else { Route::Results { target, tail: query.tail } };
    Ok(Request { route, head })
}

/// The parameters of a query, each given at most once.
#[derive(Default)]
struct Query {
    /// Percent-decoded: a name with '%' in it comes as `%25`.
    target: Option<Vec<u8>>,
    tail: Option<u64>,
}

/// A reason that repeats the client's text escapes it: a request line ends only at CRLF, so a
/// bare newline in the query would start a second line of the one-line body.
fn parse_query(query: &str, latency: bool) -> Result<Query, Rejection> {
    let bad = |reason: String| Err(Rejection::BadRequest(reason));
    let mut parsed = Query::default();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "target" if parsed.target.is_some() => return bad("target is given more than once".into()),
            "target" if value.is_empty() => return bad("target is empty; give a target's name".into()),
            "target" => parsed.target = Some(percent_decode(value)),
            "tail" if latency => return bad("/latency takes no tail; only target=NAME".into()),
            "tail" if parsed.tail.is_some() => return bad("tail is given more than once".into()),
            "tail" => parsed.tail = Some(parse_tail(value)?),
            _ if latency => {
                return bad(format!(
                    "unknown query parameter '{}'; /latency takes only target=NAME",
                    name.escape_debug()
                ));
            }
            _ => {
                return bad(format!(
                    "unknown query parameter '{}'; the only ones are tail=N and target=NAME",
                    name.escape_debug()
                ));
            }
        }
    }
    Ok(parsed)
}

fn parse_tail(value: &str) -> Result<u64, Rejection> {
    value.parse::<u64>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit())).ok_or_else(|| {
        Rejection::BadRequest(format!("tail must be a whole number of lines, got '{}'", value.escape_debug()))
    })
}

/// The target named `name`, as `Route` gives it: None when it is the only one.
fn find_target<'a, T: AsRef<str>>(name: &[u8], targets: &'a [T]) -> Result<Option<&'a str>, Rejection> {
    match targets.iter().map(AsRef::as_ref).find(|target| target.as_bytes() == name) {
        Some(_) if targets.len() == 1 => Ok(None),
        Some(target) => Ok(Some(target)),
        None => Err(Rejection::UnknownTarget {
            name: String::from_utf8_lossy(name).into_owned(),
            targets: targets.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// `%XX` decoded; a '%' without two hex digits after it stays as it is, as browsers read it.
fn percent_decode(value: &str) -> Vec<u8> {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .filter(|hex| bytes[at] == b'%' && hex.iter().all(u8::is_ascii_hexdigit));
        match hex.and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()) {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &[&str] = &["a", "db-2", "fe80::1%eth0"];
    const ONE: &[&str] = &["db-2"];
    const NONE: &[&str] = &[];

    fn ok(route: Route<'static>, head: bool) -> Result<Request<'static>, Rejection> {
        Ok(Request { route, head })
    }

    fn bad(reason: &str) -> Result<Request<'static>, Rejection> {
        Err(Rejection::BadRequest(reason.into()))
    }

    fn unknown(name: &str, targets: &str) -> Result<Request<'static>, Rejection> {
        Err(Rejection::UnknownTarget { name: name.into(), targets: targets.into() })
    }

    fn latency(target: Option<&'static str>) -> Route<'static> {
        Route::Latency { target }
    }

    fn results(target: Option<&'static str>, tail: Option<u64>) -> Route<'static> {
        Route::Results { target, tail }
    }

    #[test]
    fn routes_every_case() {
        let cases = [
            ("GET", "/latency", ok(latency(None), false)),
            ("HEAD", "/latency", ok(latency(None), true)),
            ("GET", "/latency-results", ok(results(None, None), false)),
            ("GET", "/latency-results?", ok(results(None, None), false)),
            ("HEAD", "/latency-results?tail=5", ok(results(None, Some(5)), true)),
            ("GET", "/latency-results?tail=0", ok(results(None, Some(0)), false)),
            ("POST", "/latency", Err(Rejection::MethodNotAllowed)),
            ("DELETE", "/latency-results", Err(Rejection::MethodNotAllowed)),
            ("POST", "/latency?target=zz", Err(Rejection::MethodNotAllowed)),
            ("GET", "/", Err(Rejection::NotFound)),
            ("POST", "/nope", Err(Rejection::NotFound)),
            ("GET", "/latency/", Err(Rejection::NotFound)),
            ("GET", "/latency?x=1", bad("unknown query parameter 'x'; /latency takes only target=NAME")),
            ("GET", "/latency?tail=1", bad("/latency takes no tail; only target=NAME")),
            ("GET", "/latency-results?tail=abc", bad("tail must be a whole number of lines, got 'abc'")),
            ("GET", "/latency-results?tail=-1", bad("tail must be a whole number of lines, got '-1'")),
            ("GET", "/latency-results?tail=+1", bad("tail must be a whole number of lines, got '+1'")),
            ("GET", "/latency-results?tail=", bad("tail must be a whole number of lines, got ''")),
            (
                "GET",
                "/latency-results?tail=99999999999999999999",
                bad("tail must be a whole number of lines, got '99999999999999999999'"),
            ),
            ("GET", "/latency-results?tail=1&tail=2", bad("tail is given more than once")),
            (
                "GET",
                "/latency-results?lines=2",
                bad("unknown query parameter 'lines'; the only ones are tail=N and target=NAME"),
            ),
        ];
        for (method, url, expected) in cases {
            assert_eq!(route(method, url, THREE), expected, "{method} {url}");
        }
    }

    #[test]
    fn a_target_is_one_of_those_given() {
        let all = "a, db-2, fe80::1%eth0";
        let cases = [
            (THREE, "/latency?target=db-2", ok(latency(Some("db-2")), false)),
            (THREE, "/latency?target=a&", ok(latency(Some("a")), false)),
            (THREE, "/latency?target=fe80::1%25eth0", ok(latency(Some("fe80::1%eth0")), false)),
            (THREE, "/latency?target=fe80::1%eth0", ok(latency(Some("fe80::1%eth0")), false)),
            (THREE, "/latency?target=%61", ok(latency(Some("a")), false)),
            (THREE, "/latency-results?target=db-2", ok(results(Some("db-2"), None), false)),
            (THREE, "/latency-results?target=a&tail=3", ok(results(Some("a"), Some(3)), false)),
            (THREE, "/latency-results?tail=3&target=a", ok(results(Some("a"), Some(3)), false)),
            (THREE, "/latency?target=db", unknown("db", all)),
            (THREE, "/latency?target=DB-2", unknown("DB-2", all)),
            (THREE, "/latency-results?target=x&tail=1", unknown("x", all)),
            (THREE, "/latency?target=%0A", unknown("\n", all)),
            (THREE, "/latency?target=%+1", unknown("%+1", all)),
            (THREE, "/latency?target=", bad("target is empty; give a target's name")),
            (THREE, "/latency-results?target&tail=1", bad("target is empty; give a target's name")),
            (THREE, "/latency?target=a&target=a", bad("target is given more than once")),
            (THREE, "/latency-results?target=a&target=b", bad("target is given more than once")),
            (THREE, "/latency-results?target=x&tail=x", bad("tail must be a whole number of lines, got 'x'")),
            // With one target, lines name none: naming it asks for everything.
            (ONE, "/latency?target=db-2", ok(latency(None), false)),
            (ONE, "/latency-results?target=db-2&tail=2", ok(results(None, Some(2)), false)),
            (ONE, "/latency-results?target=a", unknown("a", "db-2")),
            (NONE, "/latency?target=a", unknown("a", "")),
        ];
        for (targets, url, expected) in cases {
            assert_eq!(route("GET", url, targets), expected, "{url} among {targets:?}");
        }
        let owned = vec![String::from("a"), String::from("b")];
        assert_eq!(route("HEAD", "/latency?target=b", &owned), ok(latency(Some("b")), true));
    }

    /// Found by the `http_route` fuzz target: a request line ends only at CRLF, so a bare
    /// newline (or another control character) in the query reached the body as it was.
    #[test]
    fn what_a_query_holds_is_escaped_in_the_body() {
        let cases = [
            ("/latency?a\nb=1", "unknown query parameter 'a\\nb'; /latency takes only target=NAME"),
            (
                "/latency-results?x\r\ny",
                "unknown query parameter 'x\\r\\ny'; the only ones are tail=N and target=NAME",
            ),
            ("/latency-results?tail=1\n2", "tail must be a whole number of lines, got '1\\n2'"),
            ("/latency-results?tail=\u{1b}[2J", "tail must be a whole number of lines, got '\\u{1b}[2J'"),
        ];
        for (url, reason) in cases {
            let rejection = route("GET", url, &["a"]).unwrap_err();
            assert_eq!(rejection, Rejection::BadRequest(reason.into()), "{url:?}");
            assert_eq!(rejection.body().lines().count(), 1, "{url:?}");
        }
    }

    #[test]
    fn rejections_carry_status_and_one_line_body() {
        for (rejection, status, body) in [
            (Rejection::NotFound, 404, "not found: try GET /latency or GET /latency-results\n"),
            (
                Rejection::UnknownTarget { name: "x".into(), targets: "a, b, c".into() },
                404,
                "unknown target 'x'; the targets are: a, b, c\n",
            ),
            (
                Rejection::UnknownTarget { name: "x\ny".into(), targets: String::new() },
                404,
                "unknown target 'x\\ny'; no target is configured\n",
            ),
            (Rejection::MethodNotAllowed, 405, "method not allowed: use GET, HEAD\n"),
            (
                Rejection::BadRequest("tail is given more than once".into()),
                400,
                "bad request: tail is given more than once\n",
            ),
        ] {
            assert_eq!((rejection.status(), rejection.body().as_str()), (status, body));
        }
    }
}
