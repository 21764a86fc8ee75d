//! HTTP routing decisions: method, path and query → what to serve or why not. Pure; the
//! tiny_http server in `server.rs` carries them out.

pub mod server;

use crate::line::{self, LocalTime};

/// What a valid request asks for. A target is one of the names `route` was given; None is
/// every target, which with a single target is the same as naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// The page for people: a chart and the figures of each target.
    Page,
    /// A fresh probe (of each target), its line appended and returned.
    Latency { target: Option<&'a str>, format: Format },
    /// The results file from the first line sent at or after `since`, or all of it; of
    /// those, only the lines naming `target`; of these, all or the last `tail`.
    Results { target: Option<&'a str>, tail: Option<u64>, since: Option<Since>, format: Format },
    /// The statistics windows of each target, or of `target`.
    Stats { target: Option<&'a str>, format: Format },
    /// Prometheus's text exposition.
    Metrics,
}

/// The time `since=` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Local time, as the lines carry it (`2025-08-12 06:56:53`).
    Local(LocalTime),
    /// An instant (RFC 3339 with its offset), in seconds since the Unix epoch; a fraction of
    /// a second is dropped, the lines carrying whole seconds.
    Instant(i64),
}

/// Lines and figures as text for people, or as JSON (one object a line for lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
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

/// Every endpoint, with the query parameters it takes.
const ENDPOINTS: [(&str, &[&str]); 5] = [
    ("/", &[]),
    ("/latency", &["target", "format"]),
    ("/latency-results", &["target", "tail", "since", "format"]),
    ("/latency-stats", &["target", "format"]),
    ("/metrics", &[]),
];

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
            Rejection::NotFound => {
                "not found: try GET / (the page), /latency, /latency-results, /latency-stats or /metrics\n"
                    .into()
            }
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
/// daemon probes `targets`. `accept` is the request's Accept header: asking for
/// `application/json` there is the same as `format=json`, which the query may still overrule.
pub fn route<'a, T: AsRef<str>>(
    method: &str,
    url: &str,
    accept: Option<&str>,
    targets: &'a [T],
) -> Result<Request<'a>, Rejection> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let Some(&(path, takes)) = ENDPOINTS.iter().find(|(known, _)| *known == path) else {
        return Err(Rejection::NotFound);
    };
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Rejection::MethodNotAllowed),
    };
    let query = parse_query(query, path, takes)?;
    let target = query.target.map(|name| find_target(&name, targets)).transpose()?.flatten();
    let format =
        query.format.unwrap_or(if accept.is_some_and(accepts_json) { Format::Json } else { Format::Text });
    let route = match path {
        "/" => Route::Page,
        "/latency" => Route::Latency { target, format },
        "/latency-results" => Route::Results { target, tail: query.tail, since: query.since, format },
        "/latency-stats" => Route::Stats { target, format },
        _ => Route::Metrics,
    };
    Ok(Request { route, head })
}

/// Whether an Accept header lists `application/json` (and not with q=0).
fn accepts_json(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let json = parts.next().is_some_and(|media| media.eq_ignore_ascii_case("application/json"));
        let refused = parts.any(|param| {
            param.split_once('=').is_some_and(|(name, q)| {
                name.trim().eq_ignore_ascii_case("q") && q.trim().parse::<f32>().is_ok_and(|q| q == 0.0)
            })
        });
        json && !refused
    })
}

/// The parameters of a query, each given at most once.
#[derive(Default)]
struct Query {
    /// Percent-decoded: a name with '%' in it comes as `%25`.
    target: Option<Vec<u8>>,
    tail: Option<u64>,
    since: Option<Since>,
    format: Option<Format>,
}

/// Parses the query of `path`, which takes the parameters `takes`.
fn parse_query(query: &str, path: &str, takes: &[&str]) -> Result<Query, Rejection> {
    let bad = |reason: String| Err(Rejection::BadRequest(reason));
    let mut parsed = Query::default();
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !takes.contains(&name) {
            return bad(format!("unknown query parameter '{name}'; {path} takes {}", describe(takes)));
        }
        if seen.contains(&name) {
            return bad(format!("{name} is given more than once"));
        }
        seen.push(name);
        match name {
            "target" if value.is_empty() => return bad("target is empty; give a target's name".into()),
            "target" => parsed.target = Some(percent_decode(value)),
            "tail" => parsed.tail = Some(parse_tail(value)?),
            "since" => parsed.since = Some(parse_since(value)?),
            _ => parsed.format = Some(parse_format(value)?),
        }
    }
    Ok(parsed)
}

/// The parameters an endpoint takes, for an error message.
fn describe(takes: &[&str]) -> String {
    let forms: Vec<&str> = takes
        .iter()
        .map(|name| match *name {
            "target" => "target=NAME",
            "tail" => "tail=N",
            "since" => "since=TIME",
            _ => "format=json|text",
        })
        .collect();
    match forms.as_slice() {
        [] => "no query parameter".into(),
        [only] => format!("only {only}"),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    }
}

fn parse_format(value: &str) -> Result<Format, Rejection> {
    match value {
        "json" => Ok(Format::Json),
        "text" => Ok(Format::Text),
        _ => Err(Rejection::BadRequest(format!("format must be json or text, got '{value}'"))),
    }
}

fn parse_tail(value: &str) -> Result<u64, Rejection> {
    value
        .parse::<u64>()
        .ok()
        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| Rejection::BadRequest(format!("tail must be a whole number of lines, got '{value}'")))
}

/// `since=`: RFC 3339 (`2025-08-12T06:56:53+02:00`, `Z`, a fraction of a second allowed) or
/// the lines' own local time (`2025-08-12 06:56:53`, the space sent as `+` or `%20`).
fn parse_since(value: &str) -> Result<Since, Rejection> {
    let bad = || {
        Rejection::BadRequest(format!(
            "since must be an RFC 3339 time such as 2025-08-12T06:56:53+02:00 or a local time \
             such as 2025-08-12+06:56:53, got '{}'",
            value.escape_debug()
        ))
    };
    let text = String::from_utf8(percent_decode(value)).map_err(|_| bad())?;
    // The date and time apart: 'T' (RFC 3339), or a space ('+' in a query).
    let (date, rest) = text.split_at_checked(10).ok_or_else(bad)?;
    let rest = rest.strip_prefix(['T', 't', ' ', '+']).ok_or_else(bad)?;
    let (time, rest) = rest.split_at_checked(8).ok_or_else(bad)?;
    let local =
        line::parse_stamp(&format!("{date} {time}")).ok().filter(LocalTime::is_valid_date).ok_or_else(bad)?;
    let rest = match rest.strip_prefix('.') {
        Some(fraction) => {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            &fraction[digits..]
        }
        None => rest,
    };
    let offset = match rest.as_bytes() {
        [] => return Ok(Since::Local(local)),
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let number = |tens: u8, ones: u8| {
                (tens.is_ascii_digit() && ones.is_ascii_digit())
                    .then(|| i64::from((tens - b'0') * 10 + ones - b'0'))
            };
            let (hours, minutes) = (number(*h1, *h2).ok_or_else(bad)?, number(*m1, *m2).ok_or_else(bad)?);
            if hours > 23 || minutes > 59 {
                return Err(bad());
            }
            let offset = hours * 3_600 + minutes * 60;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return Err(bad()),
    };
    Ok(Since::Instant(local.seconds() - offset))
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
        Route::Latency { target, format: Format::Text }
    }

    fn results(target: Option<&'static str>, tail: Option<u64>) -> Route<'static> {
        Route::Results { target, tail, since: None, format: Format::Text }
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
            ("GET", "/", ok(Route::Page, false)),
            ("HEAD", "/", ok(Route::Page, true)),
            ("GET", "/metrics", ok(Route::Metrics, false)),
            ("POST", "/metrics", Err(Rejection::MethodNotAllowed)),
            (
                "GET",
                "/metrics?format=json",
                bad("unknown query parameter 'format'; /metrics takes no query parameter"),
            ),
            ("GET", "/?x", bad("unknown query parameter 'x'; / takes no query parameter")),
            ("GET", "/latency-stats", ok(Route::Stats { target: None, format: Format::Text }, false)),
            (
                "GET",
                "/latency-stats?format=json",
                ok(Route::Stats { target: None, format: Format::Json }, false),
            ),
            (
                "GET",
                "/latency-stats?target=a",
                ok(Route::Stats { target: Some("a"), format: Format::Text }, false),
            ),
            ("GET", "/latency-stats?format=xml", bad("format must be json or text, got 'xml'")),
            (
                "GET",
                "/latency-stats?tail=1",
                bad("unknown query parameter 'tail'; /latency-stats takes target=NAME and format=json|text"),
            ),
            ("GET", "/latency?format=json", ok(Route::Latency { target: None, format: Format::Json }, false)),
            ("GET", "/latency?format=json&format=json", bad("format is given more than once")),
            (
                "GET",
                "/latency-results?format=json&tail=2",
                ok(Route::Results { target: None, tail: Some(2), since: None, format: Format::Json }, false),
            ),
            ("GET", "/index.html", Err(Rejection::NotFound)),
            ("GET", "/metrics/", Err(Rejection::NotFound)),
            ("POST", "/nope", Err(Rejection::NotFound)),
            ("GET", "/latency/", Err(Rejection::NotFound)),
            (
                "GET",
                "/latency?x=1",
                bad("unknown query parameter 'x'; /latency takes target=NAME and format=json|text"),
            ),
            (
                "GET",
                "/latency?tail=1",
                bad("unknown query parameter 'tail'; /latency takes target=NAME and format=json|text"),
            ),
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
                bad(
                    "unknown query parameter 'lines'; /latency-results takes target=NAME, tail=N, since=TIME and format=json|text",
                ),
            ),
        ];
        for (method, url, expected) in cases {
            assert_eq!(route(method, url, None, THREE), expected, "{method} {url}");
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
            assert_eq!(route("GET", url, None, targets), expected, "{url} among {targets:?}");
        }
        let owned = vec![String::from("a"), String::from("b")];
        assert_eq!(route("HEAD", "/latency?target=b", None, &owned), ok(latency(Some("b")), true));
    }

    #[test]
    fn an_accept_header_asking_for_json_is_format_json_unless_the_query_says_otherwise() {
        let stats = |format| Ok(Request { route: Route::Stats { target: None, format }, head: false });
        let cases = [
            (None, "/latency-stats", stats(Format::Text)),
            (Some("*/*"), "/latency-stats", stats(Format::Text)),
            (Some("text/html,application/xhtml+xml,*/*;q=0.8"), "/latency-stats", stats(Format::Text)),
            (Some("application/json"), "/latency-stats", stats(Format::Json)),
            (Some("text/plain;q=0.5, Application/JSON ;q=0.9"), "/latency-stats", stats(Format::Json)),
            (Some("application/json;q=0"), "/latency-stats", stats(Format::Text)),
            (Some("application/json"), "/latency-stats?format=text", stats(Format::Text)),
            (Some("application/jsonx"), "/latency-stats", stats(Format::Text)),
        ];
        for (accept, url, expected) in cases {
            assert_eq!(route("GET", url, accept, THREE), expected, "Accept: {accept:?}");
        }
        assert_eq!(
            route("GET", "/latency", Some("application/json"), THREE),
            Ok(Request { route: Route::Latency { target: None, format: Format::Json }, head: false })
        );
        assert_eq!(route("GET", "/metrics", Some("application/json"), THREE), ok(Route::Metrics, false));
    }

    #[test]
    fn since_is_an_rfc_3339_time_or_a_local_one_as_the_lines_carry() {
        let local = |text: &str| Some(Since::Local(line::parse_stamp(text).unwrap()));
        // 2025-08-12 06:56:53 UTC.
        let instant = |seconds: i64| Some(Since::Instant(1_754_981_813 + seconds));
        let cases = [
            ("2025-08-12T06:56:53Z", instant(0)),
            ("2025-08-12t06:56:53z", instant(0)),
            ("2025-08-12T06:56:53.999Z", instant(0)),
            ("2025-08-12T06:56:53+02:00", instant(-7_200)),
            ("2025-08-12T06:56:53%2B02:00", instant(-7_200)),
            ("2025-08-12T06:56:53.5-05:30", instant(19_800)),
            ("2025-08-12%2006:56:53Z", instant(0)),
            ("2025-08-12+06:56:53", local("2025-08-12 06:56:53")),
            ("2025-08-12%2006:56:53", local("2025-08-12 06:56:53")),
            ("2025-08-12T06:56:53", local("2025-08-12 06:56:53")),
            ("2024-02-29+23:59:59.25", local("2024-02-29 23:59:59")),
        ];
        for (value, since) in cases {
            let url = format!("/latency-results?since={value}");
            let got = route("GET", &url, None, THREE).map(|request| request.route);
            assert_eq!(
                got,
                Ok(Route::Results { target: None, tail: None, since, format: Format::Text }),
                "{value}"
            );
        }
        let url = "/latency-results?target=db-2&since=2025-08-12T06:56:53Z&tail=3";
        assert_eq!(
            route("HEAD", url, None, THREE),
            ok(
                Route::Results {
                    target: Some("db-2"),
                    tail: Some(3),
                    since: instant(0),
                    format: Format::Text
                },
                true
            )
        );
        let accepted = "since must be an RFC 3339 time such as 2025-08-12T06:56:53+02:00 or a local time such as 2025-08-12+06:56:53";
        for value in [
            "",
            "yesterday",
            "1754981813",
            "2025-08-12",
            "2025-08-12T06:56",
            "2025-08-12T06:56:53+2",
            "2025-08-12T06:56:53+02",
            "2025-08-12T06:56:53+24:00",
            "2025-08-12T06:56:53+02:60",
            "2025-08-12T06:56:53 02:00",
            "2025-08-12T06:56:53.Z",
            "2025-08-12T06:56:53Zjunk",
            "2025-08-12T24:00:00Z",
            "2025-08-12T06:56:60Z",
            "2025-02-29T06:56:53Z",
            "2025-13-01T06:56:53Z",
            "2025-08-12X06:56:53Z",
            "2025/08/12+06:56:53",
            "%FF025-08-12+06:56:53",
            "2025-08-12%0A06:56:53",
        ] {
            let url = format!("/latency-results?since={value}");
            let expected = format!("{accepted}, got '{}'", value.escape_debug());
            assert_eq!(route("GET", &url, None, THREE), bad(&expected), "{value}");
        }
        assert_eq!(
            route("GET", "/latency-results?since=2025-08-12Z&since=x", None, THREE),
            bad(&format!("{accepted}, got '2025-08-12Z'"))
        );
        assert_eq!(
            route(
                "GET",
                "/latency-results?since=2025-08-12T06:56:53Z&since=2025-08-12T06:56:53Z",
                None,
                THREE
            ),
            bad("since is given more than once")
        );
        assert_eq!(
            route("GET", "/latency?since=2025-08-12T06:56:53Z", None, THREE),
            bad("unknown query parameter 'since'; /latency takes target=NAME and format=json|text")
        );
    }

    #[test]
    fn rejections_carry_status_and_one_line_body() {
        for (rejection, status, body) in [
            (
                Rejection::NotFound,
                404,
                "not found: try GET / (the page), /latency, /latency-results, /latency-stats or /metrics\n",
            ),
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
