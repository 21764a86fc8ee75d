//! HTTP routing and query parsing on any method, URL and target names: never a panic; what is
//! accepted is one of the two paths with GET or HEAD, a target it names is one of those given
//! (and only when there are several), and every refusal is a one-line body.
#![no_main]

use latency::http::{self, Request, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // METHOD \n URL \n target names, one a line.
    let mut parts = text.splitn(3, '\n');
    let (Some(method), Some(url)) = (parts.next(), parts.next()) else { return };
    let targets: Vec<&str> = parts.next().map_or(Vec::new(), |names| names.split('\n').collect());
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
            assert!(body.ends_with('\n') && body.matches('\n').count() == 1, "{body:?}");
            assert!([400, 404, 405].contains(&rejection.status()));
        }
    }
});
