//! The tiny_http server: a few worker threads route each request and answer it. Downloads of
//! the results file run on threads of their own, so a slow reader holds only its own thread.

use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};

use log::{debug, error, warn};
use tiny_http::{Header, Response, StatusCode};

use super::{ALLOW, Rejection, Request, Route, route};
use crate::prober::ProberHandle;
use crate::store::Store;

/// Enough workers that concurrent `/latency` callers pile onto one probe rather than queue.
const WORKERS: usize = 8;
/// Downloads of the results file served at once; more get 503 and a Retry-After.
const MAX_DOWNLOADS: usize = 32;

#[derive(Debug)]
pub enum ServerError {
    Bind { addr: SocketAddr, err: io::Error },
    Spawn(io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, err } => {
                write!(f, "bind {addr}: {err}; is another latency running? choose another --listen")
            }
            ServerError::Spawn(err) => write!(f, "start an HTTP worker thread: {err}"),
        }
    }
}

impl std::error::Error for ServerError {}

/// What the handlers need: the prober (absent when no target is configured) and the file.
pub struct Context {
    pub prober: Option<ProberHandle>,
    pub store: Arc<Store>,
}

pub struct Server {
    http: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
}

/// Binds the listening socket, so that a taken port fails start-up.
pub fn bind(addr: SocketAddr) -> Result<tiny_http::Server, ServerError> {
    let listener = TcpListener::bind(addr).map_err(|err| ServerError::Bind { addr, err })?;
    tiny_http::Server::from_listener(listener, None)
        .map_err(|err| ServerError::Bind { addr, err: io::Error::other(err.to_string()) })
}

impl Server {
    pub fn start(http: tiny_http::Server, context: Context) -> Result<Server, ServerError> {
        let http = Arc::new(http);
        let context = Arc::new(context);
        let downloads = Arc::new(AtomicUsize::new(0));
        let workers = (0..WORKERS)
            .map(|i| {
                let (http, context, downloads) = (http.clone(), context.clone(), downloads.clone());
                thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || {
                        while let Ok(request) = http.recv() {
                            handle(request, &context, &downloads);
                        }
                    })
                    .map_err(ServerError::Spawn)
            })
            .collect::<Result<_, _>>()?;
        Ok(Server { http, workers })
    }

    /// Stops accepting work and waits for the workers to finish their current request.
    pub fn stop(self) {
        for _ in &self.workers {
            self.http.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header names and values are ASCII literals")
}

fn text(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(body)
        .with_status_code(StatusCode(status))
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        .with_header(header("Cache-Control", "no-store"))
}

fn respond<R: Read>(request: tiny_http::Request, response: Response<R>) {
    if let Err(err) = request.respond(response) {
        debug!("HTTP client went away before the answer was sent: {err}");
    }
}

fn handle(request: tiny_http::Request, context: &Context, downloads: &Arc<AtomicUsize>) {
    let method = request.method().as_str().to_string();
    debug!("HTTP {method} {} from {:?}", request.url(), request.remote_addr());
    match route(&method, request.url()) {
        Err(rejection) => {
            let mut response = text(rejection.status(), rejection.body());
            if rejection == Rejection::MethodNotAllowed {
                response = response.with_header(header("Allow", ALLOW));
            }
            respond(request, response);
        }
        Ok(Request { route: Route::Latency, head }) => serve_latency(request, context, head),
        Ok(Request { route: Route::Results { tail }, head }) => serve_results(request, context, tail, head, downloads),
    }
}

fn serve_latency(request: tiny_http::Request, context: &Context, head: bool) {
    let Some(prober) = &context.prober else {
        let body = "no target configured: set LATENCY_TARGET in /etc/default/latency or pass --target\n";
        return respond(request, text(503, body.into()));
    };
    if head {
        return respond(request, text(200, String::new()));
    }
    match prober.probe() {
        Ok(line) => respond(request, text(200, format!("{line}\n"))),
        Err(err) => respond(request, text(503, format!("{err}\n"))),
    }
}

fn serve_results(
    request: tiny_http::Request,
    context: &Context,
    tail: Option<u64>,
    head: bool,
    downloads: &Arc<AtomicUsize>,
) {
    let excerpt = match context.store.excerpt(tail) {
        Ok(excerpt) => excerpt,
        Err(err) => {
            error!("{err}");
            return respond(request, text(500, format!("cannot read the results file: {err}\n")));
        }
    };
    let Some(excerpt) = excerpt else {
        return respond(request, text(200, String::new()));
    };
    let response = Response::new(
        StatusCode(200),
        vec![header("Content-Type", "text/plain; charset=utf-8"), header("Cache-Control", "no-store")],
        excerpt.file.take(excerpt.len),
        Some(excerpt.len as usize),
        None,
    );
    if head || excerpt.len == 0 {
        return respond(request, response);
    }
    if downloads.fetch_add(1, Ordering::AcqRel) >= MAX_DOWNLOADS {
        downloads.fetch_sub(1, Ordering::AcqRel);
        warn!("{MAX_DOWNLOADS} downloads of the results file already running; answering 503");
        let busy = text(503, "too many downloads in progress; retry shortly\n".into())
            .with_header(header("Retry-After", "1"));
        return respond(request, busy);
    }
    let running = downloads.clone();
    let spawned = thread::Builder::new().name("download".into()).spawn(move || {
        respond(request, response);
        running.fetch_sub(1, Ordering::AcqRel);
    });
    if let Err(err) = spawned {
        // The request went with the closure; its client sees the connection close.
        downloads.fetch_sub(1, Ordering::AcqRel);
        error!("start a download thread: {err}");
    }
}
