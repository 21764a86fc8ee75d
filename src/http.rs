//! HTTP routing decisions: method, path and query → what to serve or why not. Pure; the
//! tiny_http server in `server.rs` carries them out.

pub mod server;

/// What a valid request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A fresh probe, its line appended and returned.
    Latency,
    /// The results file, or its last `tail` lines.
    Results { tail: Option<u64> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub route: Route,
    /// HEAD: headers only, and no probe is sent for it.
    pub head: bool,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NotFound,
    MethodNotAllowed,
    BadRequest(String),
}

/// The methods every route answers, for the `Allow` header of a 405.
pub const ALLOW: &str = "GET, HEAD";

impl Rejection {
    pub fn status(&self) -> u16 {
        match self {
            Rejection::NotFound => 404,
            Rejection::MethodNotAllowed => 405,
            Rejection::BadRequest(_) => 400,
        }
    }

    /// A one-line body saying what to do instead.
    pub fn body(&self) -> String {
        match self {
            Rejection::NotFound => "not found: try GET /latency or GET /latency-results\n".into(),
            Rejection::MethodNotAllowed => format!("method not allowed: use {ALLOW}\n"),
            Rejection::BadRequest(reason) => format!("bad request: {reason}\n"),
        }
    }
}

/// Decides what `method` on `url` (path and query, as in the request line) gets.
pub fn route(method: &str, url: &str) -> Result<Request, Rejection> {
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
    let route = if path == "/latency" {
        if !query.is_empty() {
            return Err(Rejection::BadRequest("/latency takes no query parameters".into()));
        }
        Route::Latency
    } else {
        Route::Results { tail: parse_tail(query)? }
    };
    Ok(Request { route, head })
}

fn parse_tail(query: &str) -> Result<Option<u64>, Rejection> {
    let mut tail = None;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "tail" {
            return Err(Rejection::BadRequest(format!(
                "unknown query parameter '{name}'; the only one is tail=N"
            )));
        }
        if tail.is_some() {
            return Err(Rejection::BadRequest("tail is given more than once".into()));
        }
        let lines =
            value.parse::<u64>().ok().filter(|_| value.bytes().all(|b| b.is_ascii_digit())).ok_or_else(
                || Rejection::BadRequest(format!("tail must be a whole number of lines, got '{value}'")),
            )?;
        tail = Some(lines);
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(route: Route, head: bool) -> Result<Request, Rejection> {
        Ok(Request { route, head })
    }

    fn bad(reason: &str) -> Result<Request, Rejection> {
        Err(Rejection::BadRequest(reason.into()))
    }

    #[test]
    fn routes_every_case() {
        let cases = [
            ("GET", "/latency", ok(Route::Latency, false)),
            ("HEAD", "/latency", ok(Route::Latency, true)),
            ("GET", "/latency-results", ok(Route::Results { tail: None }, false)),
            ("GET", "/latency-results?", ok(Route::Results { tail: None }, false)),
            ("HEAD", "/latency-results?tail=5", ok(Route::Results { tail: Some(5) }, true)),
            ("GET", "/latency-results?tail=0", ok(Route::Results { tail: Some(0) }, false)),
            ("POST", "/latency", Err(Rejection::MethodNotAllowed)),
            ("DELETE", "/latency-results", Err(Rejection::MethodNotAllowed)),
            ("GET", "/", Err(Rejection::NotFound)),
            ("POST", "/nope", Err(Rejection::NotFound)),
            ("GET", "/latency/", Err(Rejection::NotFound)),
            ("GET", "/latency?x=1", bad("/latency takes no query parameters")),
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
                bad("unknown query parameter 'lines'; the only one is tail=N"),
            ),
        ];
        for (method, url, expected) in cases {
            assert_eq!(route(method, url), expected, "{method} {url}");
        }
    }

    #[test]
    fn rejections_carry_status_and_one_line_body() {
        for (rejection, status) in [
            (Rejection::NotFound, 404),
            (Rejection::MethodNotAllowed, 405),
            (Rejection::BadRequest("tail is given more than once".into()), 400),
        ] {
            assert_eq!(rejection.status(), status);
            let body = rejection.body();
            assert!(body.ends_with('\n') && body.matches('\n').count() == 1, "{body:?}");
        }
        assert!(Rejection::MethodNotAllowed.body().contains(ALLOW));
    }
}
