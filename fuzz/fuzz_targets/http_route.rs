//! HTTP routing and query parsing on any method, URL and target names: never a panic; what is
//! accepted is one of the two paths with GET or HEAD, a target it names is one of those given
//! (and only when there are several), and every refusal is a one-line body with no control
//! character from the request in it.
#![no_main]

use latency::http::{self, Request, Route};
use latency::line::Name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // METHOD, URL and target names, separated by NULs: a request line ends only at CRLF,
    // so a URL may hold a bare newline.
    let mut parts = text.split('\0');
    let (Some(method), Some(url)) = (parts.next(), parts.next()) else { return };
    // Target names as the configuration lets them be.
    let targets: Vec<&str> = parts.filter(|name| name.parse::<Name>().is_ok()).collect();
    match http::route(method, url, &targets) {
        Ok(Request { route, head }) => {
            assert_eq!(head, method == "HEAD");
            assert!(method == "GET" || method == "HEAD");
            let path = url.split('?').next().unwrap_or(url);
            let target = match route {
                Route::Latency { target } => {
                    assert_eq!(path, "/latency");
                    target
                }
                Route::Results { target, .. } => {
                    assert_eq!(path, "/latency-results");
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
