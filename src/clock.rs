//! Local wall-clock time, read from the system. The seed's lines carry local time, so the
//! timezone database has to be consulted; `localtime_r` does that without another crate.
#![allow(unsafe_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::line::LocalTime;

/// Converts `at` to the local timezone (`TZ`, else /etc/localtime).
pub fn local(at: SystemTime) -> LocalTime {
    let seconds = match at.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs() as i64,
        Err(before) => -(before.duration().as_secs() as i64),
    };
    local_from_unix(seconds)
}

/// Converts `seconds` since the Unix epoch (an instant, as an RFC 3339 time with its offset
/// names one) to the local timezone.
pub fn local_from_unix(seconds: i64) -> LocalTime {
    let seconds = seconds as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value for a plain C struct of integers and a
    // nullable pointer; `localtime_r` only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call; `localtime_r` is the
    // thread-safe variant and keeps no reference to them.
    let converted = unsafe { libc::localtime_r(&seconds, &mut tm) };
    if converted.is_null() {
        // Only a year outside `int` range fails; show the epoch rather than invent a date.
        return LocalTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0 };
    }
    LocalTime {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u8,
        day: tm.tm_mday as u8,
        hour: tm.tm_hour as u8,
        minute: tm.tm_min as u8,
        // A leap second shows as :60 in some zones; the line format has no room for it.
        second: tm.tm_sec.min(59) as u8,
    }
}

/// The local timezone's offset from UTC, in seconds east, at local time `at`. An hour that
/// happens twice (the end of summer time) takes the offset `mktime` picks for it.
pub fn offset(at: &LocalTime) -> i32 {
    // SAFETY: as in `local`, an all-zero `tm` is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = at.year - 1900;
    tm.tm_mon = i32::from(at.month) - 1;
    tm.tm_mday = i32::from(at.day);
    tm.tm_hour = i32::from(at.hour);
    tm.tm_min = i32::from(at.minute);
    tm.tm_sec = i32::from(at.second);
    // Unknown: let the timezone database say whether summer time was in force.
    tm.tm_isdst = -1;
    // SAFETY: `tm` is valid for the call; `mktime` normalises it in place and fills
    // `tm_gmtoff`, keeping no reference to it.
    let seconds = unsafe { libc::mktime(&mut tm) };
    if seconds == -1 { 0 } else { tm.tm_gmtoff as i32 }
}
