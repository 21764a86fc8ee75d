//! HTTP routing and query parsing on any method, URL, Accept header and target names: never a
//! panic; what is accepted is one of the endpoints with GET or HEAD, a target it names is one of those given
//! (and only when there are several), and every refusal is a one-line body with no control
//! character from the request in it.
#![no_main]

use latency::http::{self, Request, Route};
use latency::line::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // METHOD, URL, Accept header (empty: none) and target names, separated by NULs: a request
    // line ends only at CRLF, so a URL may hold a bare newline.
    let mut parts = text.split('\0');
    let (Some(method), Some(url), Some(accept)) = (parts.next(), parts.next(), parts.next()) else { return };
    let accept = Some(accept).filter(|accept| !accept.is_empty());
    // Target names as the configuration lets them be.
    let targets: Vec<&str> = parts.filter(|name| name.parse::<Name>().is_ok()).collect();
    match http::route(method, url, accept, &targets) {
        Ok(Request { route, head }) => {
            assert_eq!(head, method == "HEAD");
            assert!(method == "GET" || method == "HEAD");
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let target = match route {
                Route::Page | Route::Metrics => {
                    assert!(path == "/" || path == "/metrics");
                    assert!(query.split('&').all(str::is_empty), "{path} takes no parameter: {query:?}");
                    None
                }
                Route::Latency { target, .. } => {
                    assert_eq!(path, "/latency");
                    target
                }
                Route::Results { target, .. } => {
                    assert_eq!(path, "/latency-results");
                    target
                }
                Route::Stats { target, .. } => {
                    assert_eq!(path, "/latency-stats");
                    target
                }
            };
            if let Some(target) = target {
                assert!(targets.len() > 1 && targets.contains(&target), "{target:?} of {targets:?}");
            }
        }
        Err(rejection) => {
            let body = rejection.body();
            let line = body.strip_suffix('\n').expect("a body ends in a newline");
            assert!(!line.chars().any(char::is_control), "{body:?}");
            assert!([400, 404, 405].contains(&rejection.status()));
        }
    }
});
