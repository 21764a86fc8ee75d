//! A results line as a JSON object, for `format=json`: the same facts as the line, typed.
//! `{"time":"2025-08-12T06:56:53+02:00","target":"db-2","address":"198.51.100.2",
//! "rtt_ms":0.27,"result":"reply"}`. Pure: the local UTC offset is passed in.

use std::io::{self, BufRead, Read};

use serde::Serialize;

use crate::engine::Measurement;
use crate::line::{Line, LocalTime, Outcome};

/// One probe, as JSON gives it.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// When the probe was sent: RFC 3339, local time with its UTC offset.
    pub time: String,
    /// The target's NAME; null for a seed-form line when the daemon has several targets.
    pub target: Option<&'a str>,
    /// Where the probe went; null when not known (the file does not keep it).
    pub address: Option<String>,
    /// Null for a probe without reply: a lost probe is never 0 ms.
    pub rtt_ms: Option<f64>,
    /// `reply`, `timeout`, or `error` (an ICMP error ended it; lines show it as timeout).
    pub result: &'static str,
    /// Which ICMP error, when `result` is `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

impl<'a> Record<'a> {
    /// A line read back from the file. `single` is the NAME of the only target, which
    /// seed-form lines do not carry; `offset` the UTC offset, in seconds, at a local time.
    fn from_line(line: &'a Line, single: Option<&'a str>, offset: i32) -> Record<'a> {
        let rtt_ms = match line.outcome {
            // One correctly rounded division: 70 µs is 0.07, where seconds times 1000 would
            // give 0.06999999999999999.
            Outcome::Reply(rtt) => Some(rtt.as_nanos() as f64 / 1e6),
            Outcome::Timeout => None,
        };
        let result = if rtt_ms.is_some() { "reply" } else { "timeout" };
        Record {
            time: rfc3339(&line.sent, offset),
            target: line.target.as_deref().or(single),
            address: None,
            rtt_ms,
            result,
            error: None,
        }
    }

    /// A probe just made, with what the line leaves out: the address and the error.
    pub fn from_measurement(
        measurement: &'a Measurement,
        single: Option<&'a str>,
        offset: i32,
    ) -> Record<'a> {
        let mut record = Record::from_line(&measurement.line, single, offset);
        record.address = measurement.address.map(|address| address.to_string());
        if let Some(error) = measurement.error {
            record.result = "error";
            record.error = Some(error.label());
        }
        record
    }

    /// The record and a newline: one line of NDJSON.
    pub fn ndjson(&self) -> Vec<u8> {
        // A struct of strings and numbers always serializes; a NaN cannot come from a Duration.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// `2025-08-12T06:56:53+02:00`; `Z` is not used, so that the offset always shows.
fn rfc3339(time: &LocalTime, offset: i32) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        time.year,
        time.month,
        time.day,
        time.hour,
        time.minute,
        time.second,
        minutes / 60,
        minutes % 60
    )
}

/// Results lines read from `lines`, given out as NDJSON records. A line that does not parse
/// (another program's, or cut short) is passed over: JSON readers get only what is sure.
pub struct NdJson<R, F> {
    lines: R,
    single: Option<Box<str>>,
    offset: F,
    line: Vec<u8>,
    out: Vec<u8>,
    given: usize,
}

impl<R: BufRead, F: FnMut(&LocalTime) -> i32> NdJson<R, F> {
    pub fn new(lines: R, single: Option<&str>, offset: F) -> Self {
        NdJson { lines, single: single.map(Box::from), offset, line: Vec::new(), out: Vec::new(), given: 0 }
    }

    /// Converts lines until one gives a record; false at the end.
    fn next_record(&mut self) -> io::Result<bool> {
        loop {
            self.line.clear();
            if self.lines.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(false);
            }
            let text = std::str::from_utf8(&self.line).unwrap_or_default();
            let Ok(line) = text.trim_end_matches('\n').parse::<Line>() else { continue };
            let offset = (self.offset)(&line.sent);
            self.out = Record::from_line(&line, self.single.as_deref(), offset).ndjson();
            self.given = 0;
            return Ok(true);
        }
    }
}

impl<R: BufRead, F: FnMut(&LocalTime) -> i32> Read for NdJson<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.given == self.out.len() && !self.next_record()? {
            return Ok(0);
        }
        let taken = (self.out.len() - self.given).min(buf.len());
        buf[..taken].copy_from_slice(&self.out[self.given..self.given + taken]);
        self.given += taken;
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Address;
    use crate::packet::icmp::ErrorKind;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    const SENT: LocalTime = LocalTime { year: 2025, month: 8, day: 12, hour: 6, minute: 56, second: 53 };

    #[test]
    fn times_carry_their_offset() {
        for (offset, expected) in [
            (0, "2025-08-12T06:56:53+00:00"),
            (7200, "2025-08-12T06:56:53+02:00"),
            (-34_200, "2025-08-12T06:56:53-09:30"),
            (20_700, "2025-08-12T06:56:53+05:45"),
        ] {
            assert_eq!(rfc3339(&SENT, offset), expected);
        }
    }

    #[test]
    fn a_measurement_gives_its_address_error_and_full_precision() {
        let line = |outcome| Line { sent: SENT, target: Some("db-2".parse().expect("a name")), outcome };
        let address = Some(Address::from(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2))));
        let reply = Measurement {
            target: 0,
            line: line(Outcome::Reply(Duration::from_nanos(273_400))),
            address,
            error: None,
        };
        assert_eq!(
            String::from_utf8(Record::from_measurement(&reply, None, 3600).ndjson()).expect("UTF-8"),
            "{\"time\":\"2025-08-12T06:56:53+01:00\",\"target\":\"db-2\",\"address\":\"198.51.100.2\",\
             \"rtt_ms\":0.2734,\"result\":\"reply\"}\n"
        );
        let refused = Measurement {
            target: 0,
            line: line(Outcome::Timeout),
            address,
            error: Some(ErrorKind::Unreachable(1)),
        };
        let json: serde_json::Value =
            serde_json::from_slice(&Record::from_measurement(&refused, None, 0).ndjson()).expect("JSON");
        assert_eq!(json["result"], "error");
        assert_eq!(json["error"], "host-unreachable");
        assert_eq!(json["rtt_ms"], serde_json::Value::Null, "a lost probe is never 0 ms");
    }

    #[test]
    fn file_lines_become_one_record_each_and_what_does_not_parse_is_passed_over() {
        let file = "[2025-08-12 06:56:53] Latency: 0.27 ms\n\
                    not a results line\n\
                    [2025-08-12 06:56:54] Latency: timeout\n\
                    [2025-08-12 06:56:55] db-2 Latency: 1.50 ms\n\
                    [2025-08-12 06:56:5";
        let mut offsets = Vec::new();
        let mut out = String::new();
        NdJson::new(file.as_bytes(), Some("solo"), |t: &LocalTime| {
            offsets.push(t.second);
            -3600
        })
        .read_to_string(&mut out)
        .expect("in memory");
        let records: Vec<serde_json::Value> =
            out.lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect();
        assert_eq!(records.len(), 3, "{out}");
        assert_eq!(records[0]["target"], "solo");
        assert_eq!(records[0]["rtt_ms"], 0.27);
        assert_eq!(records[0]["time"], "2025-08-12T06:56:53-01:00");
        assert_eq!(records[0]["address"], serde_json::Value::Null);
        assert_eq!(records[1]["result"], "timeout");
        assert_eq!(records[2]["target"], "db-2");
        assert_eq!(records[2]["rtt_ms"], 1.5);
        assert_eq!(offsets, [53, 54, 55]);
    }

    #[test]
    fn a_small_reader_buffer_still_gets_every_byte() {
        let file = "[2025-08-12 06:56:53] Latency: 0.27 ms\n[2025-08-12 06:56:54] Latency: 0.28 ms\n";
        let mut json = NdJson::new(file.as_bytes(), Some("a"), |_: &LocalTime| 0);
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        loop {
            let read = json.read(&mut buf).expect("in memory");
            if read == 0 {
                break;
            }
            out.extend_from_slice(&buf[..read]);
        }
        assert_eq!(String::from_utf8(out).expect("UTF-8").lines().count(), 2);
    }
}
