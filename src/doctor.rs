//! `latency doctor`: why the daemon does not work, in one command. This module decides, from
//! facts gathered by `doctor/system.rs`, what each check says: OK, PROBLEM (with the command
//! that fixes it) or NOTE, in a fixed order. It reads nothing and opens nothing itself.

pub mod system;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use crate::config::duration;
use crate::net::PingGroupRange;
use crate::packet::Family;

/// Where the installed package keeps the daemon's settings (the unit's EnvironmentFile).
pub const DEFAULTS_FILE: &str = "/etc/default/latency";
/// `<linux/capability.h>`
const CAP_NET_RAW: u32 = 13;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Something that stops the daemon working as configured.
    Problem,
    /// Worth knowing, but the daemon works: the other socket kind, say.
    Note,
}

/// One line of the report, and for a problem the command that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub text: String,
    pub fix: Option<String>,
}

impl Check {
    fn ok(text: impl Into<String>) -> Check {
        Check { status: Status::Ok, text: text.into(), fix: None }
    }

    fn note(text: impl Into<String>) -> Check {
        Check { status: Status::Note, text: text.into(), fix: None }
    }

    fn problem(text: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { status: Status::Problem, text: text.into(), fix: Some(fix.into()) }
    }
}

impl fmt::Display for Check {
    /// `OK      text`, and under a problem `        fix: command`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.status {
            Status::Ok => "OK",
            Status::Problem => "PROBLEM",
            Status::Note => "NOTE",
        };
        write!(f, "{word:<8}{}", self.text)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n{:<8}fix: {fix}", "")?;
        }
        Ok(())
    }
}

/// The exit status of a report: 0 when nothing is a problem.
pub fn exit_code(checks: &[Check]) -> u8 {
    u8::from(checks.iter().any(|check| check.status == Status::Problem))
}

/// What opening each kind of ICMP socket of one family gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sockets {
    pub family: Family,
    pub raw: Result<(), Errno>,
    pub datagram: Result<(), Errno>,
    /// A configured target has an address of this family.
    pub needed: bool,
}

impl Sockets {
    pub fn any(&self) -> bool {
        self.raw.is_ok() || self.datagram.is_ok()
    }
}

/// Whether CAP_NET_RAW is in each of the process's sets, as /proc/self/status shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetRaw {
    pub effective: bool,
    pub bounding: bool,
    pub ambient: bool,
}

impl NetRaw {
    /// Reads the `CapEff`, `CapBnd` and `CapAmb` lines of a /proc/PID/status text.
    pub fn from_status(status: &str) -> Option<NetRaw> {
        let held = |set: &str| -> Option<bool> {
            let line = status.lines().find_map(|line| line.strip_prefix(set)?.strip_prefix(':'))?;
            let mask = u64::from_str_radix(line.trim(), 16).ok()?;
            Some(mask & (1 << CAP_NET_RAW) != 0)
        };
        Some(NetRaw { effective: held("CapEff")?, bounding: held("CapBnd")?, ambient: held("CapAmb")? })
    }
}

/// Who runs the doctor, for the commands it suggests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    pub user: String,
    pub gid: u32,
    /// The running binary, for `setcap`.
    pub binary: PathBuf,
}

/// The socket checks: one line per family, then CAP_NET_RAW, then `ping_group_range`.
/// One kind of socket that opens suffices; the other is then a note.
pub fn socket_checks(
    families: &[Sockets],
    net_raw: Option<NetRaw>,
    range: Option<PingGroupRange>,
    who: &Who,
) -> Vec<Check> {
    let setcap = format!("sudo setcap cap_net_raw+p {}", who.binary.display());
    let widen = range
        .filter(|range| range.widened_to(who.gid) != *range)
        .map(|range| format!("sudo sysctl -w net.ipv4.ping_group_range='{}'", range.widened_to(who.gid)));
    let mut checks = Vec::new();
    for sockets in families {
        let name = format!("{} socket", sockets.family.protocol());
        match (sockets.raw, sockets.datagram) {
            (Ok(()), Ok(())) => checks.push(Check::ok(format!("{name}: raw (datagram too)"))),
            (Ok(()), Err(datagram)) => {
                checks.push(Check::ok(format!("{name}: raw")));
                checks.push(Check::note(format!(
                    "{name}: no datagram socket ({}); not needed while the raw one opens",
                    datagram.desc()
                )));
            }
            (Err(raw), Ok(())) => {
                checks.push(Check::ok(format!("{name}: datagram")));
                checks.push(Check::note(format!(
                    "{name}: no raw socket ({}); the datagram one serves (for a raw one: {setcap})",
                    raw.desc()
                )));
            }
            (Err(raw), Err(datagram)) => {
                let text = format!("{name}: none opens (raw: {}; datagram: {})", raw.desc(), datagram.desc());
                if sockets.needed {
                    checks.push(Check::problem(text, widen.clone().unwrap_or_else(|| setcap.clone())));
                } else {
                    checks.push(Check::note(format!("{text}; no target needs one")));
                }
            }
        }
    }
    let wanting = families.iter().any(|sockets| sockets.needed && !sockets.any());
    let raw_missing = families.iter().any(|sockets| sockets.raw.is_err());
    checks.push(match net_raw {
        None => Check::note("CAP_NET_RAW: /proc/self/status unreadable"),
        Some(caps) => {
            let text = format!(
                "CAP_NET_RAW: {}effective, {}in the bounding set, {}ambient",
                if caps.effective { "" } else { "not " },
                if caps.bounding { "" } else { "not " },
                if caps.ambient { "" } else { "not " }
            );
            match (caps.effective, caps.bounding) {
                (true, _) => Check::ok(text),
                (false, _) if !wanting => Check::note(format!("{text}; not needed while a socket opens")),
                // Nothing started from here can have it: a file capability is cut by the
                // bounding set too.
                (false, false) => Check::problem(
                    format!("{text}: nothing started from here can have it"),
                    "run it where CAP_NET_RAW is in the bounding set (the unit keeps it: \
                     CapabilityBoundingSet=CAP_NET_RAW), or use ping sockets (below)",
                ),
                (false, true) => Check::problem(text, setcap.clone()),
            }
        }
    });
    let gid = who.gid;
    checks.push(match range {
        None => Check::note("net.ipv4.ping_group_range: unreadable"),
        Some(range) if range.widened_to(gid) == range => {
            Check::ok(format!("net.ipv4.ping_group_range '{range}' lets group {gid} use ping sockets"))
        }
        Some(range) => {
            let text = format!("net.ipv4.ping_group_range '{range}' leaves out group {gid}");
            match widen.clone() {
                Some(fix) if wanting => Check::problem(text, fix),
                _ if raw_missing => Check::note(format!(
                    "{text}; widened, it would also allow: {}",
                    widen.unwrap_or_default()
                )),
                _ => Check::note(format!("{text}; not needed while raw sockets open")),
            }
        }
    });
    checks
}

/// What became of one configured target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Echo {
    /// Its host name did not give an address to probe: the resolver's words.
    Unresolved(String),
    /// No socket of the address's family: not probed.
    NoSocket(IpAddr),
    /// The prober could not be run: why.
    NotProbed(String),
    /// One echo request sent: its round trip, or none.
    Probed { address: String, rtt: Option<Duration> },
}

/// One target: its NAME, its HOST as written, and what probing it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetEcho {
    pub name: String,
    pub host: String,
    pub echo: Echo,
}

/// A line per target, or one problem when none is configured.
pub fn target_checks(targets: &[TargetEcho], timeout: Duration) -> Vec<Check> {
    if targets.is_empty() {
        return vec![Check::problem(
            "target: none configured, /latency answers 503",
            format!(
                "set LATENCY_TARGET=HOST in {DEFAULTS_FILE} (or pass --target HOST), then: sudo systemctl \
                 restart latency"
            ),
        )];
    }
    targets
        .iter()
        .map(|target| {
            let what = if target.name == target.host {
                format!("target {}", target.host)
            } else {
                format!("target {} ({})", target.name, target.host)
            };
            match &target.echo {
                Echo::Unresolved(reason) => Check::problem(
                    format!("{what}: {reason}"),
                    format!(
                        "correct the name (getent ahosts {} shows what the resolver says), or give an IP address",
                        target.host
                    ),
                ),
                Echo::NoSocket(address) => Check::problem(
                    format!("{what}: {address} not probed: no {} socket", Family::of(*address).protocol()),
                    "see the socket lines above",
                ),
                Echo::NotProbed(reason) => Check::problem(
                    format!("{what}: not probed: {reason}"),
                    "fix what the reason says, then run latency doctor again",
                ),
                Echo::Probed { address, rtt } => {
                    let at = if *address == target.host { String::new() } else { format!(" {address}") };
                    match rtt {
                        Some(rtt) => Check::ok(format!(
                            "{what}:{at} answered one echo in {:.2} ms",
                            rtt.as_secs_f64() * 1e3
                        )),
                        None => Check::problem(
                            format!("{what}:{at} did not answer one echo within {}", duration::format(timeout)),
                    format!(
                        "check that {address} is up and that no firewall drops ICMP echo on the way: ping -c 3 \
                         {address}"
                            ),
                        ),
                    }
                }
            }
        })
        .collect()
}

/// The results path as found: a results file (or none yet) that can be written, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Results {
    /// A results file (or an empty one), writable.
    Ours { bytes: u64 },
    /// No file yet; `creatable_in` is the nearest existing directory, which can be written.
    Absent { creatable_in: PathBuf },
    /// Not a results file: the store's own reason.
    NotOurs(String),
    /// It, or the directory it would be made in, cannot be written: the error.
    NotWritable { path: PathBuf, reason: String },
}

/// Where the unit keeps the results file (`StateDirectory=latency`): written by the service's
/// own user, not by whoever runs the doctor.
pub const STATE_DIRECTORIES: [&str; 2] = ["/var/lib/latency", "/var/lib/private/latency"];

/// Whether root can write a file (or, with `search`, enter and write a directory) owned by
/// `uid`:`gid` with `mode`, holding no capability, as the daemon started by root does once its
/// sockets are open: the mode bits alone decide then, as for any user (the owner's if root
/// owns it, else the group's if its group is root's, else the others').
pub fn writable_by_root_without_capabilities(uid: u32, gid: u32, mode: u32, search: bool) -> bool {
    let need = if search { 0o3 } else { 0o2 };
    let bits = if uid == 0 {
        mode >> 6
    } else if gid == 0 {
        mode >> 3
    } else {
        mode
    };
    bits & need == need
}

pub fn results_check(path: &Path, found: &Results, who: &Who) -> Check {
    let shown = path.display();
    let choose =
        format!("choose another results path: --results PATH, or LATENCY_RESULTS=PATH in {DEFAULTS_FILE}");
    match found {
        Results::Ours { bytes } => {
            Check::ok(format!("results file {shown}: results lines ({bytes} bytes), writable"))
        }
        Results::Absent { creatable_in } => Check::ok(format!(
            "results file {shown}: absent; the daemon creates it ({} is writable)",
            creatable_in.display()
        )),
        Results::NotOurs(reason) => Check::problem(format!("results file {reason}"), choose),
        Results::NotWritable { path: blocked, reason } => Check::problem(
            format!("results file {shown}: {} is not writable by {} ({reason})", blocked.display(), who.user),
            format!("sudo chown {} {}, or {choose}", who.user, blocked.display()),
        ),
    }
}

/// Who holds the listen address, when binding it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Free,
    /// In use by a process that listens on the port.
    Held {
        pid: u32,
        program: String,
        service: bool,
    },
    /// In use, by no process this user can see.
    HeldUnseen,
    /// Binding failed otherwise (no such address here, say): the error.
    Unusable(String),
}

pub fn listen_check(addr: SocketAddr, listen: &Listen) -> Check {
    let choose =
        format!("choose another: --listen ADDR:PORT, or LATENCY_LISTEN=ADDR:PORT in {DEFAULTS_FILE}");
    match listen {
        Listen::Free => Check::ok(format!("listen address {addr}: free")),
        Listen::Held { pid, service: true, .. } => {
            Check::ok(format!("listen address {addr}: held by the running latency service (pid {pid})"))
        }
        Listen::Held { pid, program, service: false } => Check::problem(
            format!("listen address {addr}: in use by {program} (pid {pid})"),
            format!("stop it (sudo kill {pid}), or {choose}"),
        ),
        Listen::HeldUnseen => Check::problem(
            format!("listen address {addr}: in use by a process not visible here"),
            format!("find it with: sudo ss -ltnp 'sport = :{}'; stop it, or {choose}", addr.port()),
        ),
        Listen::Unusable(reason) => Check::problem(
            format!("listen address {addr}: {reason}"),
            format!("use an address this host has (ip -brief address), or {choose}"),
        ),
    }
}

/// latency.service as `systemctl show -p LoadState,ActiveState,SubState,Result,ExecMainStatus`
/// writes it, and the last error line in its journal.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Unit {
    pub properties: Vec<(String, String)>,
    pub last_error: Option<String>,
}

impl Unit {
    /// Reads `NAME=value` lines.
    pub fn parse(show: &str, last_error: Option<String>) -> Unit {
        let properties = show
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        Unit { properties, last_error: last_error.filter(|line| !line.trim().is_empty()) }
    }

    fn get(&self, name: &str) -> &str {
        self.properties.iter().find(|(n, _)| n == name).map_or("", |(_, value)| value)
    }
}

/// The unit's line: `None` when systemd is not the service manager here.
pub fn unit_check(unit: Option<&Unit>) -> Check {
    let Some(unit) = unit else {
        return Check::note("systemd: not the service manager here (PID 1); no unit to check");
    };
    if unit.get("LoadState") == "not-found" {
        return Check::note("latency.service: not installed");
    }
    let state = unit.get("ActiveState");
    let text = format!(
        "latency.service: {state} ({}), result {}, exit status {}",
        unit.get("SubState"),
        unit.get("Result"),
        unit.get("ExecMainStatus")
    );
    if state == "active" {
        return Check::ok(text);
    }
    let text = match &unit.last_error {
        Some(line) => format!("{text}; last error: {line}"),
        None => text,
    };
    Check::problem(text, "fix what the lines above say, then: sudo systemctl restart latency")
}

/// The `NAME=value` settings of an environment file as systemd's EnvironmentFile= reads the
/// simple form: comments (`#`, `;`) and blank lines skipped, the value's surrounding quotes
/// removed.
pub fn parse_environment_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with(['#', ';']))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|&quote| value.strip_prefix(quote)?.strip_suffix(quote))
                .unwrap_or(value);
            (name.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

/// A setting's value for the doctor: the process environment first (as the daemon reads it),
/// then the environment file the unit gives the daemon. A flag, read by `config::parse`,
/// wins over both.
pub fn setting<'a>(
    name: &str,
    environment: Option<&'a str>,
    file: &'a [(String, String)],
) -> Option<&'a str> {
    environment
        .filter(|value| !value.is_empty())
        .or_else(|| file.iter().rev().find(|(n, _)| n == name).map(|(_, value)| value.as_str()))
}

/// The inodes of the sockets listening on `port`, from `/proc/net/tcp` or `/proc/net/tcp6`.
pub fn listening_inodes(text: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == LISTEN;
            let inode = fields.get(9)?.parse().ok()?;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port).then_some(inode)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Who {
        Who { user: "alice".into(), gid: 1000, binary: "/usr/bin/latency".into() }
    }

    fn range(low: u32, high: u32) -> Option<PingGroupRange> {
        Some(PingGroupRange { low, high })
    }

    fn sockets(family: Family, raw: bool, datagram: bool, needed: bool) -> Sockets {
        let result = |ok: bool, errno| if ok { Ok(()) } else { Err(errno) };
        Sockets { family, raw: result(raw, Errno::EPERM), datagram: result(datagram, Errno::EACCES), needed }
    }

    fn statuses(checks: &[Check]) -> Vec<Status> {
        checks.iter().map(|check| check.status).collect()
    }

    const HELD: NetRaw = NetRaw { effective: true, bounding: true, ambient: false };
    const NOT_HELD: NetRaw = NetRaw { effective: false, bounding: true, ambient: false };
    const NOT_BOUNDED: NetRaw = NetRaw { effective: false, bounding: false, ambient: false };

    #[test]
    fn one_socket_kind_suffices_and_the_other_is_a_note() {
        use Status::*;
        let cases = [
            // root: raw sockets, ping sockets closed.
            (sockets(Family::V4, true, false, true), HELD, range(1, 0), vec![Ok, Note, Ok, Note]),
            (sockets(Family::V4, true, true, true), HELD, range(0, 2000), vec![Ok, Ok, Ok]),
            // A user with ping sockets open to its group.
            (sockets(Family::V4, false, true, true), NOT_HELD, range(0, 2000), vec![Ok, Note, Note, Ok]),
            // Nothing opens: the socket, the capability and the sysctl are each a problem.
            (sockets(Family::V4, false, false, true), NOT_HELD, range(1, 0), vec![Problem, Problem, Problem]),
            // Nothing opens, but no target needs that family.
            (sockets(Family::V6, false, false, false), NOT_HELD, range(1, 0), vec![Note, Note, Note]),
        ];
        for (family, caps, current, expected) in cases {
            let checks = socket_checks(&[family], Some(caps), current, &who());
            assert_eq!(statuses(&checks), expected, "{checks:#?}");
            for check in &checks {
                assert_eq!(check.fix.is_some(), check.status == Problem, "{check}");
                assert!(!check.text.contains('\n'), "{check}");
            }
        }
    }

    #[test]
    fn no_socket_gives_the_commands_that_fix_it() {
        let checks = socket_checks(
            &[sockets(Family::V4, false, false, true)],
            Some(NOT_HELD),
            range(100, 200),
            &who(),
        );
        let fixes: Vec<&str> = checks.iter().filter_map(|check| check.fix.as_deref()).collect();
        assert_eq!(
            fixes,
            [
                "sudo sysctl -w net.ipv4.ping_group_range='100 1000'",
                "sudo setcap cap_net_raw+p /usr/bin/latency",
                "sudo sysctl -w net.ipv4.ping_group_range='100 1000'",
            ]
        );
        assert_eq!(
            checks[0].text,
            "ICMP socket: none opens (raw: Operation not permitted; datagram: Permission denied)"
        );
        assert_eq!(checks[2].text, "net.ipv4.ping_group_range '100 200' leaves out group 1000");
    }

    #[test]
    fn a_capability_the_bounding_set_lacks_cannot_be_given_by_setcap() {
        let checks =
            socket_checks(&[sockets(Family::V4, false, false, true)], Some(NOT_BOUNDED), None, &who());
        assert_eq!(checks[1].status, Status::Problem);
        assert!(
            checks[1].fix.as_deref().is_some_and(|fix| fix.contains("CapabilityBoundingSet")),
            "{}",
            checks[1]
        );
        // The range could not be read: no widening to offer, so setcap it is for the socket.
        assert_eq!(checks[0].fix.as_deref(), Some("sudo setcap cap_net_raw+p /usr/bin/latency"));
    }

    #[test]
    fn capability_sets_are_read_from_proc_status() {
        let status = "Name:\tlatency\nCapInh:\t0000000000000000\nCapPrm:\t0000000000002000\n\
                      CapEff:\t0000000000002000\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
        assert_eq!(
            NetRaw::from_status(status),
            Some(NetRaw { effective: true, bounding: true, ambient: false })
        );
        let none = status.replace("0000000000002000", "0000000000001000").replace("000001ffffffffff", "0");
        assert_eq!(NetRaw::from_status(&none), Some(NetRaw::default()));
        assert_eq!(NetRaw::from_status("CapEff:\tzz\n"), None);
        assert_eq!(NetRaw::from_status(""), None);
    }

    #[test]
    fn each_target_gets_a_line_and_none_is_a_problem() {
        let timeout = Duration::from_secs(2);
        let target = |name: &str, host: &str, echo| TargetEcho { name: name.into(), host: host.into(), echo };
        let answered = Echo::Probed { address: "198.51.100.2".into(), rtt: Some(Duration::from_micros(270)) };
        let lost = Echo::Probed { address: "198.51.100.9".into(), rtt: None };
        let cases = [
            (
                target("198.51.100.2", "198.51.100.2", answered.clone()),
                Status::Ok,
                "target 198.51.100.2: answered one echo in 0.27 ms",
                None,
            ),
            (
                target("db", "db.example.org", answered),
                Status::Ok,
                "target db (db.example.org): 198.51.100.2 answered one echo in 0.27 ms",
                None,
            ),
            (
                target("198.51.100.9", "198.51.100.9", lost),
                Status::Problem,
                "target 198.51.100.9: did not answer one echo within 2s",
                Some("ping -c 3 198.51.100.9"),
            ),
            (
                target("x.invalid", "x.invalid", Echo::Unresolved("cannot resolve: failed".into())),
                Status::Problem,
                "target x.invalid: cannot resolve: failed",
                Some("getent ahosts x.invalid"),
            ),
            (
                target("a", "198.51.100.2", Echo::NotProbed("read /dev/urandom: gone".into())),
                Status::Problem,
                "target a (198.51.100.2): not probed: read /dev/urandom: gone",
                Some("fix what the reason says"),
            ),
            (
                target("v6", "2001:db8::7", Echo::NoSocket("2001:db8::7".parse().unwrap())),
                Status::Problem,
                "target v6 (2001:db8::7): 2001:db8::7 not probed: no ICMPv6 socket",
                Some("socket lines"),
            ),
        ];
        for (target, status, text, fix) in cases {
            let checks = target_checks(std::slice::from_ref(&target), timeout);
            assert_eq!((checks[0].status, checks[0].text.as_str()), (status, text));
            if let Some(fix) = fix {
                assert!(checks[0].fix.as_deref().is_some_and(|f| f.contains(fix)), "{}", checks[0]);
            }
        }
        let none = target_checks(&[], timeout);
        assert_eq!(statuses(&none), [Status::Problem]);
        assert!(none[0].fix.as_deref().is_some_and(|fix| fix.contains("LATENCY_TARGET=HOST")));
    }

    #[test]
    fn results_listen_and_unit_lines() {
        let path = Path::new("/var/lib/latency/results.txt");
        let cases = [
            (results_check(path, &Results::Ours { bytes: 38 }, &who()), Status::Ok),
            (results_check(path, &Results::Absent { creatable_in: "/var/lib".into() }, &who()), Status::Ok),
            (
                results_check(path, &Results::NotOurs("/etc/passwd is not ...".into()), &who()),
                Status::Problem,
            ),
            (
                results_check(
                    path,
                    &Results::NotWritable {
                        path: "/var/lib/latency".into(),
                        reason: "Permission denied".into(),
                    },
                    &who(),
                ),
                Status::Problem,
            ),
        ];
        for (check, status) in cases {
            assert_eq!(check.status, status, "{check}");
        }
        let not_writable = results_check(
            path,
            &Results::NotWritable { path: "/var/lib/latency".into(), reason: "Permission denied".into() },
            &who(),
        );
        assert!(
            not_writable
                .fix
                .as_deref()
                .is_some_and(|fix| fix.starts_with("sudo chown alice /var/lib/latency"))
        );

        let addr: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        let held = |service| Listen::Held { pid: 42, program: "nc".into(), service };
        assert_eq!(listen_check(addr, &Listen::Free).status, Status::Ok);
        assert_eq!(listen_check(addr, &held(true)).status, Status::Ok);
        let other = listen_check(addr, &held(false));
        assert_eq!(
            (other.status, other.text.as_str()),
            (Status::Problem, "listen address 0.0.0.0:5000: in use by nc (pid 42)")
        );
        assert!(other.fix.as_deref().is_some_and(|fix| fix.starts_with("stop it (sudo kill 42)")));
        assert_eq!(listen_check(addr, &Listen::HeldUnseen).status, Status::Problem);

        let show =
            "LoadState=loaded\nActiveState=failed\nSubState=failed\nResult=exit-code\nExecMainStatus=1\n";
        let failed = unit_check(Some(&Unit::parse(show, Some("bind 0.0.0.0:5000: Address in use".into()))));
        assert_eq!(failed.status, Status::Problem);
        assert_eq!(
            failed.text,
            "latency.service: failed (failed), result exit-code, exit status 1; last error: bind 0.0.0.0:5000: \
             Address in use"
        );
        let active = show.replace("=failed", "=running").replace("ActiveState=running", "ActiveState=active");
        assert_eq!(unit_check(Some(&Unit::parse(&active, Some(" ".into())))).status, Status::Ok);
        assert_eq!(unit_check(Some(&Unit::parse("LoadState=not-found\n", None))).status, Status::Note);
        assert_eq!(unit_check(None).status, Status::Note);
    }

    #[test]
    fn the_report_prints_fixes_under_problems_and_exits_1_on_any() {
        let checks = vec![Check::ok("a"), Check::note("b"), Check::problem("c", "do d")];
        let text: Vec<String> = checks.iter().map(ToString::to_string).collect();
        assert_eq!(text, ["OK      a", "NOTE    b", "PROBLEM c\n        fix: do d"]);
        assert_eq!(exit_code(&checks), 1);
        assert_eq!(exit_code(&checks[..2]), 0);
    }

    #[test]
    fn the_environment_file_is_read_as_systemd_reads_it() {
        let text = "# comment\n; other\n\nLATENCY_TARGET=198.51.100.2\n  LATENCY_INTERVAL = 5s \n\
                    LATENCY_LISTEN=\"127.0.0.1:5000\"\nLATENCY_RESULTS='/srv/r.txt'\nno equals sign\n\
                    LATENCY_TARGET=198.51.100.3\n";
        let file = parse_environment_file(text);
        assert_eq!(setting("LATENCY_TARGET", None, &file), Some("198.51.100.3"), "the last one wins");
        assert_eq!(setting("LATENCY_INTERVAL", None, &file), Some("5s"));
        assert_eq!(setting("LATENCY_LISTEN", None, &file), Some("127.0.0.1:5000"));
        assert_eq!(setting("LATENCY_RESULTS", None, &file), Some("/srv/r.txt"));
        assert_eq!(setting("LATENCY_TARGET", Some("env"), &file), Some("env"), "the environment wins");
        assert_eq!(setting("LATENCY_TARGET", Some(""), &file), Some("198.51.100.3"), "unless empty");
        assert_eq!(setting("LATENCY_FAMILY", None, &file), None);
    }

    #[test]
    fn listeners_are_found_by_port_in_proc_net_tcp() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                   0: 0100007F:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n   \
                   1: 0100007F:1388 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n   \
                   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0\n";
        assert_eq!(listening_inodes(tcp, 5000), [4242]);
        assert_eq!(listening_inodes(tcp, 22), [99]);
        assert_eq!(listening_inodes(tcp, 80), Vec::<u64>::new());
        let tcp6 = "  sl  local_address                         remote_address                        st ...\n   \
                    0: 00000000000000000000000000000000:1388 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0\n";
        assert_eq!(listening_inodes(tcp6, 5000), [777]);
    }

    #[test]
    fn root_without_capabilities_writes_by_the_mode_bits_alone() {
        for (uid, gid, mode, search, writable) in [
            (0, 0, 0o600, false, true),
            (0, 0, 0o400, false, false),
            (65534, 65534, 0o600, false, false),
            (65534, 0, 0o660, false, true),
            (65534, 65534, 0o666, false, true),
            // The owner's bits alone apply to the owner, however open the others are.
            (0, 0, 0o066, false, false),
            (0, 0, 0o700, true, true),
            (0, 0, 0o600, true, false),
            (65534, 65534, 0o1777, true, true),
            (65534, 65534, 0o755, true, false),
        ] {
            assert_eq!(
                writable_by_root_without_capabilities(uid, gid, mode, search),
                writable,
                "{uid}:{gid} {mode:o} search {search}"
            );
        }
    }
}
