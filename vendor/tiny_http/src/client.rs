use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Instant;

use crate::common::{HTTPVersion, Header, Method};
use crate::util::refined_tcp_stream::HeadDeadline;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// latency patch: the longest request line or header line read, in bytes less the CRLF.
const MAX_LINE: usize = 8192;
/// latency patch: the most header lines a request may have.
const MAX_HEADERS: usize = 100;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // latency patch: when the head being read must be complete, shared with the read stream
    head_deadline: HeadDeadline,

    // latency patch: when the first head must be complete, counted from accept; taken by
    // the first `read`
    first_head_deadline: Option<Instant>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// latency patch: the request is in HTTP/2 or later
    VersionNotSupported,
    /// latency patch: the request line is longer than `MAX_LINE`
    RequestLineTooLong,
    /// latency patch: a header line is longer than `MAX_LINE`, or there are more than
    /// `MAX_HEADERS`
    HeadersTooLarge(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    /// latency patch: `accepted` is when the connection was accepted.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        accepted: Instant,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();
        let head_deadline = read_socket.head_deadline();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            head_deadline,
            first_head_deadline: Some(accepted + crate::HEAD_TIMEOUT),
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line. Fails with `too_long` past `MAX_LINE` bytes.
    fn read_next_line(&mut self, too_long: ReadError) -> Result<AsciiString, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(ReadError::ReadIoError)?,
                None => {
                    let eof = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                    return Err(ReadError::ReadIoError(eof));
                }
            };

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf).map_err(|_| {
                    let not_ascii = IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII");
                    ReadError::ReadIoError(not_ascii)
                });
            }

            // latency patch: upstream grew the line for as long as the client sent bytes
            // without a CRLF, so one connection could take all the memory there is.
            if buf.len() > MAX_LINE {
                return Err(too_long);
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // latency patch: the whole head must arrive in time; the per-read timeout alone let a
        // client sending a byte now and then hold the connection's thread forever. The first
        // head's time counts from accept: counted from when a thread got to the connection,
        // a connection that had waited for one (no new thread could start) got its time
        // anew, so silent connections queued behind the threads kept them for good.
        let deadline = self
            .first_head_deadline
            .take()
            .unwrap_or_else(|| Instant::now() + crate::HEAD_TIMEOUT);
        *self.head_deadline.lock().unwrap() = Some(deadline);

        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line(ReadError::RequestLineTooLong)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line(ReadError::HeadersTooLarge(version.clone()))?;

                    if line.is_empty() {
                        break;
                    };
                    // latency patch: the lines' length alone does not bound the head.
                    if headers.len() == MAX_HEADERS {
                        return Err(ReadError::HeadersTooLarge(version));
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                // latency patch: upstream took the first `Content-Length` that parsed, and
                // read none at all from `-1` or an overflowing value, so the body's bytes
                // were read as the next request. RFC 9112 section 6.3 wants 400 for these.
                let mut lengths = headers
                    .iter()
                    .filter(|h: &&Header| h.field.equiv("Content-Length"))
                    .map(|h| h.value.as_str());
                if let Some(first) = lengths.next() {
                    let valid = !first.is_empty()
                        && first.bytes().all(|b| b.is_ascii_digit())
                        && first.parse::<usize>().is_ok();
                    if !valid || lengths.any(|other| other != first) {
                        return Err(ReadError::WrongHeader(version));
                    }
                }

                headers
            };

            (method, path, version, headers)
        };

        // latency patch: upstream answered 505 after building the request, whose writer
        // the answer's writer then waited for: the connection hung for good.
        if version > (1, 1) {
            return Err(ReadError::VersionNotSupported);
        }

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            *self.remote_addr.as_ref().unwrap(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // latency patch: the head, and a small body read with it, are in; the body's reads
        // each get the client timeout.
        *self.head_deadline.lock().unwrap() = None;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        let rq = match self.read() {
            Err(ReadError::WrongRequestLine) => {
                let writer = self.sink.next().unwrap();
                let response = Response::new_empty(StatusCode(400));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None; // we don't know where the next request would start,
                             // se we have to close
            }

            Err(ReadError::WrongHeader(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = Response::new_empty(StatusCode(400));
                response.raw_print(writer, ver, &[], false, None).ok();
                return None; // we don't know where the next request would start,
                             // se we have to close
            }

            // latency patch: a read timing out fails with `WouldBlock` on Unix, and only on
            // Windows with `TimedOut`, so upstream closed the connection without its 408.
            Err(ReadError::ReadIoError(ref err))
                if matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) =>
            {
                // request timeout
                let writer = self.sink.next().unwrap();
                let response = Response::new_empty(StatusCode(408));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None; // closing the connection
            }

            Err(ReadError::ExpectationFailed(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = Response::new_empty(StatusCode(417));
                response.raw_print(writer, ver, &[], true, None).ok();
                return None; // TODO: should be recoverable, but needs handling in case of body
            }

            Err(ReadError::VersionNotSupported) => {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1\n".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None; // latency patch: what follows is no HTTP/1.x request
            }

            // latency patch: RFC 9112 section 3 wants 414 for a request-target longer than
            // the server will parse, the usual cause of a long request line.
            Err(ReadError::RequestLineTooLong) => {
                let writer = self.sink.next().unwrap();
                let response =
                    Response::from_string(format!("request line longer than {} bytes\n", MAX_LINE))
                        .with_status_code(StatusCode(414));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None; // the rest of the line is still unread
            }

            Err(ReadError::HeadersTooLarge(ver)) => {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(format!(
                    "request header fields too large: at most {} lines of {} bytes\n",
                    MAX_HEADERS, MAX_LINE
                ))
                .with_status_code(StatusCode(431));
                response.raw_print(writer, ver, &[], false, None).ok();
                return None; // the rest of the head is still unread
            }

            Err(ReadError::ReadIoError(_)) => return None,

            Ok(rq) => rq,
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // latency patch: a request with a body is the last on its connection. The body is
        // never read (`EqualReader`), so the next request could only be read from the body's
        // own bytes, which a client could fill with requests that a proxy in front never saw.
        let chunked = rq
            .headers()
            .iter()
            .any(|h| h.field.equiv("Transfer-Encoding"));
        if chunked || rq.body_length().is_some_and(|length| length > 0) {
            self.no_more_requests = true;
        }

        // returning the request
        Some(rq)
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
