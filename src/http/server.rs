//! The tiny_http server: each request is routed and answered in the thread tiny_http read it
//! in, one per connection (tiny_http patch 13), so a request costs one thread. A slow reader
//! holds only its own connection's thread; tiny_http starts another for each new connection.

use std::fmt;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use log::{debug, error};
use tiny_http::{Header, Response, StatusCode};

use super::{ALLOW, Format, Rejection, Request, Route, Since, route};
use crate::clock;
use crate::line::{LocalTime, Name};
use crate::monitor::{self, Monitor};
use crate::page;
use crate::prober::ProberHandle;
use crate::record::{NdJson, Record};
use crate::store::Store;
use crate::throttle::Throttle;

/// Downloads of the results file served at once, so slow readers cannot hold every thread
/// there may be; more get 503 and a Retry-After.
const MAX_DOWNLOADS: usize = 32;

/// Pages and statistics built or being sent at once. Each holds memory in proportion to the
/// targets until its client has read it (a page of 100 targets with some loss is 4.7 MB, and
/// building it peaks near twice that), so thirty clients asking at once held 140 MiB; more
/// get 503 and a Retry-After. Prometheus's scrape is small and never waits for a place.
const MAX_RENDERS: usize = 4;

#[derive(Debug)]
pub enum ServerError {
    Bind { addr: SocketAddr, err: io::Error },
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Bind { addr, err } => {
                write!(f, "bind {addr}: {err}; is another latency running? choose another --listen")
            }
        }
    }
}

impl std::error::Error for ServerError {}

/// What the handlers need: the prober (absent when no target is configured), the targets'
/// names in configured order, the file, and what the prober saw.
pub struct Context {
    pub prober: Option<ProberHandle>,
    pub targets: Vec<Name>,
    pub store: Arc<Store>,
    pub monitor: Arc<Monitor>,
}

/// What every request's handler shares.
struct Shared {
    context: Context,
    downloads: AtomicUsize,
    renders: AtomicUsize,
    /// A client asking for downloads or pages while every slot is taken must not flood the
    /// journal.
    refusal_log: Mutex<Throttle>,
    /// `/latency` callers not yet answered.
    probing: Arc<AtomicUsize>,
}

/// The listening socket, bound before the daemon starts anything else, so that a taken port
/// fails start-up. Connections made before `start` wait in its backlog.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub fn server_addr(&self) -> SocketAddr {
        self.addr
    }
}

pub fn bind(addr: SocketAddr) -> Result<Bound, ServerError> {
    let listener = TcpListener::bind(addr).map_err(|err| ServerError::Bind { addr, err })?;
    let bound = listener.local_addr().map_err(|err| ServerError::Bind { addr, err })?;
    Ok(Bound { listener, addr: bound })
}

/// Starts serving. The server lives until the process exits: the prober alone writes the
/// results file, so nothing an HTTP thread is doing at exit can tear a line.
/// A client holding `max_conns_per_client` connections has the rest refused at once, in
/// tiny_http's accept loop (patch 17), before they cost a thread.
pub fn start(
    bound: Bound,
    context: Context,
    max_conns_per_client: NonZeroUsize,
) -> Result<Serving, ServerError> {
    let Bound { listener, addr } = bound;
    let probing = Arc::new(AtomicUsize::new(0));
    let shared = Shared {
        context,
        downloads: AtomicUsize::new(0),
        renders: AtomicUsize::new(0),
        refusal_log: Mutex::new(Throttle::for_journal()),
        probing: probing.clone(),
    };
    let server =
        tiny_http::Server::from_listener_with_handler(listener, None, max_conns_per_client, move |request| {
            // A panic answering one request must not cost tiny_http the connection's thread.
            if panic::catch_unwind(AssertUnwindSafe(|| handle(request, &shared))).is_err() {
                error!("an HTTP thread panicked answering a request; the client's connection was dropped");
            }
        })
        .map_err(|err| ServerError::Bind { addr, err: io::Error::other(err.to_string()) })?;
    // Dropping the server would stop it accepting connections.
    std::mem::forget(server);
    Ok(Serving { probing })
}

/// The running server, as the daemon's stop sees it.
pub struct Serving {
    /// `/latency` callers waiting for their line or still being answered.
    probing: Arc<AtomicUsize>,
}

impl Serving {
    /// Waits, at most until `deadline`, for the `/latency` callers to be answered: once the
    /// prober has stopped, each is being told so, and the process must not exit under them.
    pub fn settle(&self, deadline: Instant) {
        while self.probing.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header names and values are ASCII literals")
}

const TEXT: &str = "text/plain; charset=utf-8";
const NDJSON: &str = "application/x-ndjson";
const JSON: &str = "application/json";
const HTML: &str = "text/html; charset=utf-8";

/// Every answer is about a moment that has passed: never cached.
fn typed<R: Read>(response: Response<R>, content_type: &str) -> Response<R> {
    response
        .with_header(header("Content-Type", content_type))
        .with_header(header("Cache-Control", "no-store"))
}

fn plain<R: Read>(response: Response<R>) -> Response<R> {
    typed(response, TEXT)
}

fn text(status: u16, body: String) -> Response<io::Cursor<Vec<u8>>> {
    plain(Response::from_string(body).with_status_code(StatusCode(status)))
}

/// A whole body made at once, as `content_type`; HEAD gets its headers and length only.
fn whole(request: tiny_http::Request, body: Vec<u8>, content_type: &str, head: bool) {
    let len = body.len();
    let body = if head { Vec::new() } else { body };
    let response = Response::new(StatusCode(200), Vec::new(), io::Cursor::new(body), Some(len), None);
    respond(request, typed(response, content_type));
}

fn respond<R: Read>(request: tiny_http::Request, response: Response<R>) {
    if let Err(err) = request.respond(response) {
        debug!("HTTP client went away before the answer was sent: {err}");
    }
}

fn handle(request: tiny_http::Request, shared: &Shared) {
    let context = &shared.context;
    let method = request.method().as_str().to_string();
    // Quoted: a request line ends only at CRLF, so a bare newline in the URL would otherwise
    // start a log line of the client's making.
    debug!("HTTP {method} {:?} from {:?}", request.url(), request.remote_addr());
    let accept = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Accept"))
        .map(|header| header.value.as_str().to_string());
    match route(&method, request.url(), accept.as_deref(), &context.targets) {
        Err(rejection) => {
            let mut response = text(rejection.status(), rejection.body());
            if rejection == Rejection::MethodNotAllowed {
                response = response.with_header(header("Allow", ALLOW));
            }
            respond(request, response);
        }
        Ok(Request { route: Route::Latency { target, format }, head }) => {
            let _counted = Counted::new(&shared.probing);
            serve_latency(request, context, target, format, head)
        }
        Ok(Request { route: Route::Results { target, tail, since, format }, head }) => {
            let since = since.map(|since| match since {
                Since::Local(time) => time,
                Since::Instant(seconds) => clock::local_from_unix(seconds),
            });
            serve_results(request, shared, target, tail, since, format, head)
        }
        Ok(Request { route: Route::Metrics, head }) => {
            whole(request, context.monitor.exposition(), monitor::CONTENT_TYPE, head)
        }
        Ok(Request { route: route @ (Route::Stats { .. } | Route::Page), head }) => {
            // Held until the client has the whole answer: the body is the memory it bounds.
            let Some(_slot) = Slot::take(&shared.renders, MAX_RENDERS) else {
                let what = format!("{MAX_RENDERS} pages and statistics");
                return refuse(request, shared, &what, "pages and statistics");
            };
            let now = clock::local(SystemTime::now()).seconds();
            match route {
                Route::Stats { target, format } => {
                    let stats = context.monitor.overview(target, now);
                    match format {
                        Format::Text => whole(request, page::stats_text(&stats).into_bytes(), TEXT, head),
                        Format::Json => whole(request, page::stats_json(&stats), JSON, head),
                    }
                }
                _ => {
                    let stats = context.monitor.overview(None, now);
                    whole(request, page::html(&stats, now).into_bytes(), HTML, head)
                }
            }
        }
    }
}

/// The only target's NAME, which seed-form lines leave out.
fn single(context: &Context) -> Option<&str> {
    match context.targets.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// A line from a fresh probe of `target`, or of each target in order.
fn serve_latency(
    request: tiny_http::Request,
    context: &Context,
    target: Option<&str>,
    format: Format,
    head: bool,
) {
    let Some(prober) = &context.prober else {
        let body = "no target configured: set LATENCY_TARGET in /etc/default/latency or pass --target\n";
        return respond(request, text(503, body.into()));
    };
    if head {
        // GET's length depends on the probe's result (the number's width, "timeout", an
        // error), which only a probe can tell. RFC 9110 forbids a Content-Length that differs
        // from GET's (section 8.6) and lets HEAD omit a header field known only once the body
        // is made (section 9.3.2): no length given, the patched tiny_http sends none.
        let unknown_length = Response::new(StatusCode(200), Vec::new(), io::empty(), None, None);
        let content_type = if format == Format::Json { NDJSON } else { TEXT };
        return respond(request, typed(unknown_length, content_type));
    }
    let targets: Vec<usize> = match target {
        Some(name) => context.targets.iter().position(|known| **known == *name).into_iter().collect(),
        None => (0..context.targets.len()).collect(),
    };
    match (prober.probe(&targets), format) {
        (Ok(measured), Format::Text) => {
            respond(request, text(200, measured.iter().map(|m| format!("{}\n", m.line)).collect()))
        }
        (Ok(measured), Format::Json) => {
            let body = measured
                .iter()
                .flat_map(|m| {
                    Record::from_measurement(m, single(context), clock::offset(&m.line.sent)).ndjson()
                })
                .collect();
            whole(request, body, NDJSON, false)
        }
        (Err(err), _) => respond(request, text(503, format!("{err}\n"))),
    }
}

fn serve_results(
    request: tiny_http::Request,
    shared: &Shared,
    target: Option<&str>,
    tail: Option<u64>,
    since: Option<LocalTime>,
    format: Format,
    head: bool,
) {
    let excerpt = match shared.context.store.excerpt_since(since, target, tail) {
        Ok(excerpt) => excerpt,
        Err(err) => {
            error!("{err}");
            return respond(request, text(500, format!("cannot read the results file: {err}\n")));
        }
    };
    let body = Download::new(excerpt.file.take(excerpt.len), excerpt.len);
    // A tail or a short file is sent at once; only long downloads need a slot.
    let short = head || excerpt.len <= SHORT_DOWNLOAD;
    let response: Response<Box<dyn Read + Send>> = match format {
        Format::Text => plain(Response::new(
            StatusCode(200),
            Vec::new(),
            Box::new(body),
            Some(excerpt.len as usize),
            None,
        )),
        // Its length is known only once every line is converted: sent chunked.
        Format::Json => {
            let records = NdJson::new(io::BufReader::new(body), single(&shared.context), offsets());
            let records: Box<dyn Read + Send> = if head { Box::new(io::empty()) } else { Box::new(records) };
            typed(Response::new(StatusCode(200), Vec::new(), records, None, None), NDJSON)
        }
    };
    if short {
        return respond(request, response);
    }
    let Some(_slot) = Slot::take(&shared.downloads, MAX_DOWNLOADS) else {
        let what = format!("{MAX_DOWNLOADS} downloads of the results file");
        return refuse(request, shared, &what, "downloads");
    };
    respond(request, response);
}

/// 503 with a Retry-After for a request that found all `what` places taken (`short` in the
/// body), logged 20 times a minute at most.
fn refuse(request: tiny_http::Request, shared: &Shared, what: &str, short: &str) {
    // A panic elsewhere while logging leaves the throttle as usable as before.
    let mut refusal_log = shared.refusal_log.lock().unwrap_or_else(PoisonError::into_inner);
    refusal_log.warn(Instant::now(), format_args!("{what} already running; answering 503"));
    drop(refusal_log);
    let busy = text(503, format!("too many {short} in progress; retry shortly\n"))
        .with_header(header("Retry-After", "1"));
    respond(request, busy);
}

/// The UTC offset at each line's time, asked of the timezone database once an hour of lines:
/// a download of a year of lines must not ask it for every line.
fn offsets() -> impl FnMut(&LocalTime) -> i32 + Send {
    let mut known: Option<(i64, i32)> = None;
    move |at| {
        let hour = at.seconds().div_euclid(3600);
        match known {
            Some((known_hour, offset)) if known_hour == hour => offset,
            _ => {
                let offset = clock::offset(at);
                known = Some((hour, offset));
                offset
            }
        }
    }
}

/// A download this short fits the socket buffers: it holds its thread for a moment only.
const SHORT_DOWNLOAD: u64 = 64 * 1024;

/// One more in a count while it lives (also through a panic).
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Counted(count)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One of a limited number of places, given back when dropped (also by a panic).
struct Slot<'a>(&'a AtomicUsize);

impl<'a> Slot<'a> {
    fn take(taken: &'a AtomicUsize, limit: usize) -> Option<Slot<'a>> {
        taken.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1)).ok()?;
        Some(Slot(taken))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The slowest a download may go before it is cut off, so a client reading a byte now and
/// then cannot hold a download slot for hours (each write alone is bounded by 30 s).
const MIN_DOWNLOAD_RATE: u64 = 64 * 1024;

/// How long a download of `len` bytes may take: 30 s, plus `len` at the minimum rate.
fn download_time(len: u64) -> Duration {
    Duration::from_secs(30 + len / MIN_DOWNLOAD_RATE)
}

/// The body of a download: `len` bytes, or an error that leaves the response unfinished, so
/// that the client sees a failed download rather than a short body that looks whole.
struct Download<R> {
    inner: R,
    remaining: u64,
    deadline: Instant,
}

impl<R> Download<R> {
    fn new(inner: R, len: u64) -> Self {
        Download { inner, remaining: len, deadline: Instant::now() + download_time(len) }
    }
}

impl<R: Read> Read for Download<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() > self.deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "download took longer than its size allows"));
        }
        let read = self.inner.read(buf)?;
        if read == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the results file shrank during the download (truncated in place, by copytruncate say)",
            ));
        }
        self.remaining = self.remaining.saturating_sub(read as u64);
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_at_the_limit_and_come_back_when_dropped() {
        let taken = AtomicUsize::new(0);
        let first = Slot::take(&taken, 2);
        let second = Slot::take(&taken, 2);
        assert!(first.is_some() && second.is_some());
        assert!(Slot::take(&taken, 2).is_none());
        drop(first);
        assert!(Slot::take(&taken, 2).is_some());
        assert_eq!(taken.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_download_past_its_deadline_fails() {
        let mut late = Download::new(io::Cursor::new(vec![1u8; 10]), 10);
        late.deadline = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(late.read(&mut [0; 4]).unwrap_err().kind(), io::ErrorKind::TimedOut);
        let mut timely = Download::new(io::Cursor::new(vec![1u8; 10]), 10);
        assert_eq!(timely.read(&mut [0; 4]).unwrap(), 4);
        assert_eq!(download_time(20_000_000), Duration::from_secs(30 + 305));
    }

    #[test]
    fn a_download_that_comes_up_short_fails_instead_of_ending() {
        let mut whole = Download::new(io::Cursor::new(vec![1u8; 10]), 10);
        assert_eq!(io::copy(&mut whole, &mut io::sink()).unwrap(), 10);
        let mut shrunk = Download::new(io::Cursor::new(vec![1u8; 6]), 10);
        let err = io::copy(&mut shrunk, &mut io::sink()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
