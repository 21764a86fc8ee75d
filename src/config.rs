//! Command-line flags and `LATENCY_*` environment variables → a validated [`Config`].
//! A flag wins over its variable; every rejection names the flag (or variable), the value and
//! what is allowed, in one line.

pub mod duration;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use crate::line::Name;

/// The interval when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest interval accepted: a results file line every 100 ms is already a flood.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest timeout accepted: no reply arrives in less.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest timeout accepted: a later reply measures nothing useful, and `/latency`
/// callers wait as long.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// The timeout when none is given, unless half the interval is shorter.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often host names are resolved again when no period is given.
pub const DEFAULT_RESOLVE_EVERY: Duration = Duration::from_secs(5 * 60);
/// The shortest period accepted: more often only loads the resolver.
pub const MIN_RESOLVE_EVERY: Duration = Duration::from_secs(1);
/// The longest period accepted: a moved host would be missed for longer than any DNS TTL lasts.
pub const MAX_RESOLVE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// The HTTP connections one client may hold when no number is given: each holds a thread, and
/// the unit's `TasksMax=512` leaves room for many clients of this many.
pub const DEFAULT_MAX_CONNS_PER_CLIENT: NonZeroUsize = NonZeroUsize::new(32).expect("32 is not zero");
/// The longest interface name Linux accepts (IFNAMSIZ less its terminating NUL).
const MAX_ZONE_LEN: usize = 15;

/// Everything the daemon needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// What to probe, in the order given, each name once; none runs the daemon idle until one
    /// is configured.
    pub targets: Vec<Target>,
    /// Which address of a host name is probed.
    pub family: Family,
    /// How often host names are resolved again (besides at start and on SIGHUP).
    pub resolve_every: Duration,
    pub interval: Duration,
    pub timeout: Duration,
    pub listen: SocketAddr,
    pub results: PathBuf,
    /// HTTP connections one client (an IPv4 address, an IPv6 /64) may hold at once.
    pub max_conns_per_client: NonZeroUsize,
    /// Whether each appended line is forced to disk before the next.
    pub sync: SyncPolicy,
}

/// One host to probe and the name its lines and `?target=` use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The `NAME` of `NAME=HOST`, or the `HOST` as written.
    pub name: Name,
    pub host: Host,
}

/// A target's `HOST`: an address, probed as it is, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    /// A link-local IPv6 address and the interface it is on, as written after the `%`.
    Scoped {
        address: Ipv6Addr,
        zone: String,
    },
    /// A host name, resolved at start, on SIGHUP and every `resolve_every`.
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(address) => address.fmt(f),
            Host::Scoped { address, zone } => write!(f, "{address}%{zone}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// Which of a host name's addresses is probed. Addresses given as such are probed as they are,
/// whatever the family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The name's first IPv4 address if it has one, else its first IPv6 address.
    Auto,
    Ipv4,
    Ipv6,
}

impl Family {
    const ALL: [Family; 3] = [Family::Auto, Family::Ipv4, Family::Ipv6];
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Auto => "auto",
            Family::Ipv4 => "ipv4",
            Family::Ipv6 => "ipv6",
        })
    }
}

/// When appended lines reach the disk itself, not only the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// When the kernel writes them back (within about 30 s): a power loss can cost those.
    None,
    /// `fdatasync` after each line: a line is on disk before the next probe's.
    Line,
}

impl SyncPolicy {
    const ALL: [SyncPolicy; 2] = [SyncPolicy::None, SyncPolicy::Line];
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncPolicy::None => "none",
            SyncPolicy::Line => "line",
        })
    }
}

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Config),
    Help,
    Version,
}

/// A rejected setting: where it came from, its value and why.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// `--interval` or `LATENCY_INTERVAL`.
    pub source: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    /// The source and the value are the user's text: control characters are escaped, so that
    /// the message stays one line and cannot forge others in the log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = self.source.escape_debug();
        if self.value.is_empty() {
            write!(f, "{source}: {}", self.reason)
        } else {
            write!(f, "{source} {}: {}", self.value.escape_debug(), self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The listen address when none is given: every IPv4 address.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 5000));
/// Where the results file goes when neither a path nor systemd's state directory is given.
pub const DEFAULT_RESULTS_DIR: &str = "/var/lib/latency";
const RESULTS_FILE_NAME: &str = "results.txt";

/// A rule a setting's value must follow, worded as every document states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    AtLeast(Duration),
    AtMost(Duration),
    ShorterThanInterval,
    /// At least this many connections.
    Fewest(usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::AtLeast(min) => write!(f, "at least {}", duration::format(*min)),
            Limit::AtMost(max) => write!(f, "at most {}", duration::format(*max)),
            Limit::ShorterThanInterval => f.write_str("shorter than the interval"),
            Limit::Fewest(min) => write!(f, "at least {min} connection"),
        }
    }
}

/// One setting, as parsed and as documented. `--help` is written from these, and
/// `tests/docs_agree.rs` holds the man page, `/etc/default/latency` and the README to them.
pub struct Setting {
    pub flag: &'static str,
    pub env: &'static str,
    /// What the value is, in usage lines: `HOST`, `DUR`.
    pub placeholder: &'static str,
    pub about: &'static str,
    /// The value used when none is given (outside systemd, at the default interval), as an
    /// operator would write it; `None` when there is none.
    pub default: fn() -> Option<String>,
    /// How the default varies, as the docs say it after the value.
    pub default_varies: &'static str,
    pub limits: &'static [Limit],
}

impl Setting {
    /// The default as every document states it.
    pub fn documented_default(&self) -> String {
        let value = (self.default)().unwrap_or_else(|| "none".into());
        format!("{value}{}", self.default_varies)
    }
}

pub const TARGET: Setting = Setting {
    flag: "--target",
    env: "LATENCY_TARGET",
    placeholder: "[NAME=]HOST",
    about: "What to probe: an IPv4 or IPv6 address or a host name, with an optional NAME for \
            its lines; repeat the flag, or list several separated by commas or spaces; \
            without one, /latency answers 503",
    default: || None,
    default_varies: "",
    limits: &[],
};
pub const FAMILY: Setting = Setting {
    flag: "--family",
    env: "LATENCY_FAMILY",
    placeholder: "FAMILY",
    about: "Which address of a host name to probe: auto (its IPv4 address if it has one, else \
            its IPv6 one), ipv4 or ipv6; an address given as such is probed as it is",
    default: || Some(Family::Auto.to_string()),
    default_varies: "",
    limits: &[],
};
pub const RESOLVE_EVERY: Setting = Setting {
    flag: "--resolve-every",
    env: "LATENCY_RESOLVE_EVERY",
    placeholder: "DUR",
    about: "How often host names are resolved again, besides at start and on SIGHUP",
    default: || Some(duration::format(DEFAULT_RESOLVE_EVERY)),
    default_varies: "",
    limits: &[Limit::AtLeast(MIN_RESOLVE_EVERY), Limit::AtMost(MAX_RESOLVE_EVERY)],
};
pub const INTERVAL: Setting = Setting {
    flag: "--interval",
    env: "LATENCY_INTERVAL",
    placeholder: "DUR",
    about: "Time between scheduled probes",
    default: || Some(duration::format(DEFAULT_INTERVAL)),
    default_varies: "",
    limits: &[Limit::AtLeast(MIN_INTERVAL)],
};
pub const TIMEOUT: Setting = Setting {
    flag: "--timeout",
    env: "LATENCY_TIMEOUT",
    placeholder: "DUR",
    about: "How long a probe waits for its reply",
    default: || Some(duration::format(DEFAULT_TIMEOUT.min(DEFAULT_INTERVAL / 2))),
    default_varies: ", or half the interval if that is shorter",
    limits: &[Limit::AtLeast(MIN_TIMEOUT), Limit::AtMost(MAX_TIMEOUT), Limit::ShorterThanInterval],
};
pub const LISTEN: Setting = Setting {
    flag: "--listen",
    env: "LATENCY_LISTEN",
    placeholder: "ADDR:PORT",
    about: "HTTP listen address",
    default: || Some(DEFAULT_LISTEN.to_string()),
    default_varies: "",
    limits: &[],
};
pub const RESULTS: Setting = Setting {
    flag: "--results",
    env: "LATENCY_RESULTS",
    placeholder: "PATH",
    about: "Results file, created with its directory",
    default: || Some(format!("{DEFAULT_RESULTS_DIR}/{RESULTS_FILE_NAME}")),
    default_varies: ", or $STATE_DIRECTORY/results.txt under systemd",
    limits: &[],
};
pub const MAX_CONNS_PER_CLIENT: Setting = Setting {
    flag: "--max-conns-per-client",
    env: "LATENCY_MAX_CONNS_PER_CLIENT",
    placeholder: "N",
    about: "HTTP connections one client (an IPv4 address, an IPv6 /64) may hold at once; more \
            are answered 503 at once, so that one client cannot take the threads (each \
            connection holds one) every other client needs",
    default: || Some(DEFAULT_MAX_CONNS_PER_CLIENT.to_string()),
    default_varies: "",
    limits: &[Limit::Fewest(1)],
};
pub const SYNC: Setting = Setting {
    flag: "--sync",
    env: "LATENCY_SYNC",
    placeholder: "WHEN",
    about: "When appended lines are forced to disk: none (the kernel writes them back within \
            about 30 s, and a power loss can cost those) or line (fdatasync after each line)",
    default: || Some(SyncPolicy::None.to_string()),
    default_varies: "",
    limits: &[],
};
pub const SETTINGS: [&Setting; 9] =
    [&TARGET, &FAMILY, &RESOLVE_EVERY, &INTERVAL, &TIMEOUT, &LISTEN, &RESULTS, &SYNC, &MAX_CONNS_PER_CLIENT];

/// The `--help` text, written from [`SETTINGS`].
pub fn usage() -> String {
    let mut text = String::from(
        "Usage: latency [OPTIONS]
       latency doctor [OPTIONS]   check what the daemon needs, each problem with its fix

Measures ICMP round-trip time to one or more targets, appends one line per probe to a
results file and serves them over HTTP (GET /latency, GET /latency-results[?tail=N];
with several targets, ?target=NAME picks one, and each line carries its NAME).

Options (each also read from the environment variable shown; the flag wins):
",
    );
    for setting in SETTINGS {
        let flag = format!("{} {}", setting.flag, setting.placeholder);
        let limits: Vec<String> = setting.limits.iter().map(Limit::to_string).collect();
        let limits = if limits.is_empty() { String::new() } else { format!("; {}", limits.join(", ")) };
        text += &format!("  {flag:<20} {}\n", setting.env);
        text += &wrap(&format!("{}{limits}.", setting.about), "      ");
        text += &format!("      Default: {}.\n", setting.documented_default());
    }
    text += "  -h, --help           print this help
  -V, --version        print the version

DUR is a whole number with a unit: 250ms, 1s, 5m, 1h.
Signals: SIGTERM/SIGINT stop; SIGHUP reopens the results file and resolves host names again.
Log level: RUST_LOG=debug|info|warn|error (default info).
";
    text
}

/// `text` in lines of at most 80 columns (a longer word stays whole), each after `indent`.
fn wrap(text: &str, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + line.len() + 1 + word.len() > 80 {
            out += &format!("{indent}{line}\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    out + &format!("{indent}{line}\n")
}

/// A raw value and the name it was given under, for error messages.
struct Given {
    source: String,
    value: String,
}

impl Given {
    fn error(&self, reason: impl Into<String>) -> ConfigError {
        ConfigError { source: self.source.clone(), value: self.value.clone(), reason: reason.into() }
    }
}

/// Parses `args` (without the program name) with `env` as the fallback for each flag.
pub fn parse<I, S>(args: I, env: impl Fn(&str) -> Option<String>) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut flags: Vec<(&'static Setting, String)> = Vec::new();
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
        let (name, inline_value) = match arg.split_once('=') {
            Some((name, value)) => (name.to_string(), Some(value.to_string())),
            None => (arg.clone(), None),
        };
        let setting = SETTINGS.iter().find(|s| s.flag == name).ok_or_else(|| ConfigError {
            source: arg.clone(),
            value: String::new(),
            reason: "unknown option; see latency --help".into(),
        })?;
        let value = match inline_value.or_else(|| args.next()) {
            Some(value) => value,
            None => {
                return Err(ConfigError {
                    source: name,
                    value: String::new(),
                    reason: "needs a value; see latency --help".into(),
                });
            }
        };
        flags.push((setting, value));
    }
    // The last of a flag given twice wins, except --target, which adds a target each time.
    let given = |setting: &Setting| -> Option<Given> {
        if let Some((_, value)) = flags.iter().rev().find(|(s, _)| s.flag == setting.flag) {
            return Some(Given { source: setting.flag.into(), value: value.clone() });
        }
        env(setting.env)
            .filter(|value| !value.is_empty())
            .map(|value| Given { source: setting.env.into(), value })
    };

    let target_flags: Vec<Given> = flags
        .iter()
        .filter(|(s, _)| s.flag == TARGET.flag)
        .map(|(_, value)| Given { source: TARGET.flag.into(), value: value.clone() })
        .collect();
    let targets = match (target_flags.is_empty(), given(&TARGET)) {
        (false, _) => parse_targets(&target_flags)?,
        (true, Some(variable)) => parse_targets(&[variable])?,
        (true, None) => Vec::new(),
    };
    let family = match given(&FAMILY) {
        Some(g) => Family::ALL
            .into_iter()
            .find(|family| family.to_string() == g.value)
            .ok_or_else(|| g.error("expected auto, ipv4 or ipv6"))?,
        None => Family::Auto,
    };
    let resolve_every = match given(&RESOLVE_EVERY) {
        Some(given) => parse_duration(&given, DEFAULT_RESOLVE_EVERY, |every| {
            at_least(every, MIN_RESOLVE_EVERY)?;
            at_most(every, MAX_RESOLVE_EVERY)
        })?,
        None => DEFAULT_RESOLVE_EVERY,
    };
    let interval = match given(&INTERVAL) {
        Some(given) => parse_duration(&given, DEFAULT_INTERVAL, |interval| at_least(interval, MIN_INTERVAL))?,
        None => DEFAULT_INTERVAL,
    };
    // `--interval 1s` alone must work: the default gives way to a short interval.
    let default_timeout = DEFAULT_TIMEOUT.min(interval / 2);
    let timeout = match given(&TIMEOUT) {
        Some(given) => parse_duration(&given, default_timeout, |timeout| check_timeout(timeout, interval))?,
        None => default_timeout,
    };
    let listen = match given(&LISTEN) {
        Some(g) => g.value.parse().map_err(|_| {
            g.error("expected ADDRESS:PORT with an IP address, like 0.0.0.0:5000 or 127.0.0.1:8080")
        })?,
        None => DEFAULT_LISTEN,
    };
    let results = match given(&RESULTS) {
        Some(g) => parse_results_path(&g)?,
        None => default_results_path(env("STATE_DIRECTORY")),
    };
    let max_conns_per_client = match given(&MAX_CONNS_PER_CLIENT) {
        Some(g) => match g.value.parse::<usize>() {
            Ok(count) => {
                NonZeroUsize::new(count).ok_or_else(|| g.error(format!("must be {}", Limit::Fewest(1))))?
            }
            Err(_) => {
                return Err(g.error(format!(
                    "expected a whole number of connections, like {DEFAULT_MAX_CONNS_PER_CLIENT}"
                )));
            }
        },
        None => DEFAULT_MAX_CONNS_PER_CLIENT,
    };
    let sync = match given(&SYNC) {
        Some(g) => SyncPolicy::ALL
            .into_iter()
            .find(|sync| sync.to_string() == g.value)
            .ok_or_else(|| g.error("expected none (the default) or line (fdatasync after each line)"))?,
        None => SyncPolicy::None,
    };
    Ok(Command::Run(Config {
        targets,
        family,
        resolve_every,
        interval,
        timeout,
        listen,
        results,
        sync,
        max_conns_per_client,
    }))
}

/// The targets of each `--target` value, or of `LATENCY_TARGET`: entries separated by commas
/// and/or white space. An error names the one entry at fault.
fn parse_targets(givens: &[Given]) -> Result<Vec<Target>, ConfigError> {
    let mut targets: Vec<(Target, &str)> = Vec::new();
    for given in givens {
        let mut entries = given
            .value
            .split(|c: char| c == ',' || c.is_ascii_whitespace())
            .filter(|e| !e.is_empty())
            .peekable();
        // `LATENCY_TARGET=` means no target; `--target=` is a mistake.
        if entries.peek().is_none() && given.source == TARGET.flag {
            return Err(given.error(format!("names no target: expected [NAME=]HOST, {TARGET_EXAMPLES}")));
        }
        for entry in entries {
            let entry_given = Given { source: given.source.clone(), value: entry.to_string() };
            let target = parse_target(&entry_given)?;
            if let Some((_, first)) = targets.iter().find(|(other, _)| other.name == target.name) {
                return Err(entry_given.error(format!(
                    "the name {} is taken by {first}: give each target a name of its own, as NAME=HOST",
                    target.name
                )));
            }
            targets.push((target, entry));
        }
    }
    Ok(targets.into_iter().map(|(target, _)| target).collect())
}

const TARGET_EXAMPLES: &str =
    "like 198.51.100.2, 2001:db8::7, fe80::1%eth0, db.example.org or db=198.51.100.2";

/// One `HOST` or `NAME=HOST` entry.
fn parse_target(given: &Given) -> Result<Target, ConfigError> {
    let (name, host) = match given.value.split_once('=') {
        Some(("", _)) => return Err(given.error(format!("the NAME before = is empty; {TARGET_EXAMPLES}"))),
        Some((_, "")) => return Err(given.error(format!("the HOST after = is empty; {TARGET_EXAMPLES}"))),
        Some((name, host)) => (Some(name), host),
        None => (None, given.value.as_str()),
    };
    let host = parse_host(given, host)?;
    let name = match name {
        Some(name) => name.parse::<Name>().map_err(|err| given.error(format!("the NAME {err}")))?,
        // The characters of a valid HOST are all allowed in a name; only its length may not be.
        None => given
            .value
            .parse::<Name>()
            .map_err(|err| given.error(format!("as a NAME, {err}; give a shorter one, as NAME=HOST")))?,
    };
    Ok(Target { name, host })
}

/// An IPv4 or IPv6 address (an IPv6 one with `%zone`) or a host name.
fn parse_host(given: &Given, host: &str) -> Result<Host, ConfigError> {
    if host.contains(':') {
        return parse_ipv6(given, host);
    }
    let valid = host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        && !host.starts_with(['-', '.']);
    if !valid {
        return Err(given.error(format!("expected an IP address or a host name, {TARGET_EXAMPLES}")));
    }
    // The resolver reads `010.0.0.1` as 8.0.0.1 and `1.2.3` as 1.2.0.3 (inet_aton): a value
    // that looks like an address must be a plain dotted quad, or the wrong host gets probed.
    let last_label = host.rsplit('.').next().unwrap_or(host);
    let numeric = last_label.bytes().all(|b| b.is_ascii_digit()) || last_label.starts_with("0x");
    if !numeric {
        return Ok(Host::Name(host.to_string()));
    }
    let address = host.parse::<Ipv4Addr>().map_err(|_| {
        given.error("looks like an IPv4 address but is not four decimal numbers 0-255, like 198.51.100.2")
    })?;
    probeable(given, IpAddr::V4(address))
}

fn parse_ipv6(given: &Given, host: &str) -> Result<Host, ConfigError> {
    let (address, zone) = match host.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (host, None),
    };
    let address: Ipv6Addr = address.parse().map_err(|_| {
        given.error("expected an IPv6 address (without brackets), like 2001:db8::7 or fe80::1%eth0")
    })?;
    let Some(zone) = zone else { return probeable(given, IpAddr::V6(address)) };
    let zone_ok = !zone.is_empty()
        && zone.len() <= MAX_ZONE_LEN
        && zone.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !zone_ok {
        return Err(given.error(format!(
            "expected the name of an interface after %, like fe80::1%eth0 (at most {MAX_ZONE_LEN} \
             letters, digits, . _ or -)"
        )));
    }
    if !address.is_unicast_link_local() {
        probeable(given, IpAddr::V6(address))?;
        return Err(given.error(
            "has an interface after %, which only a link-local address (fe80::/10) takes: leave it out",
        ));
    }
    Ok(Host::Scoped { address, zone: zone.to_string() })
}

fn probeable(given: &Given, address: IpAddr) -> Result<Host, ConfigError> {
    match unprobeable(address) {
        Some(problem) => Err(given.error(problem)),
        None => Ok(Host::Ip(address)),
    }
}

/// Why echo requests to `address` cannot measure one host's latency, if they cannot.
pub fn unprobeable(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(address) if address.is_unspecified() => {
            Some("is the unspecified address, not a host; give the target's address")
        }
        IpAddr::V4(address) if address.is_broadcast() || address.is_multicast() => Some(
            "is a broadcast or multicast address, which many hosts or none answer; give one host's address",
        ),
        IpAddr::V6(address) if address.is_unspecified() => {
            Some("is the unspecified address, not a host; give the target's address")
        }
        IpAddr::V6(address) if address.is_multicast() => {
            Some("is a multicast address, which many hosts or none answer; give one host's address")
        }
        // An ICMPv6 socket cannot send to one; the IPv4 address itself can be probed.
        IpAddr::V6(address) if address.to_ipv4_mapped().is_some() => {
            Some("is an IPv4-mapped IPv6 address; give the IPv4 address itself, like 198.51.100.2")
        }
        // The kernel refuses to send to one without the interface it is on.
        IpAddr::V6(address) if address.is_unicast_link_local() => {
            Some("is a link-local address and needs its interface, as ADDRESS%INTERFACE like fe80::1%eth0")
        }
        _ => None,
    }
}

/// Parses a duration and checks it with `check`. A hint suggests only values `check` allows:
/// `default` (which it must allow), or the readings of a number given without a unit.
fn parse_duration(
    given: &Given,
    default: Duration,
    check: impl Fn(Duration) -> Result<(), String>,
) -> Result<Duration, ConfigError> {
    let value = duration::parse(&given.value).map_err(|err| {
        given.error(match err {
            duration::Error::NoNumber => format!("{err}, like {}", duration::format(default)),
            duration::Error::MissingUnit(number) => missing_unit(number, default, &check),
            duration::Error::Invalid(_) => err.to_string(),
        })
    })?;
    check(value).map_err(|reason| given.error(reason))?;
    Ok(value)
}

/// The hint for a number without a unit: the readings of it that are allowed, or why neither
/// is, and an allowed value.
fn missing_unit(number: u64, default: Duration, check: impl Fn(Duration) -> Result<(), String>) -> String {
    match (check(Duration::from_secs(number)), check(Duration::from_millis(number))) {
        (Ok(()), Ok(())) => format!("missing unit: write {number}s or {number}ms"),
        (Ok(()), Err(_)) => format!("missing unit: write {number}s"),
        (Err(_), Ok(())) => format!("missing unit: write {number}ms"),
        (Err(_), Err(reason)) => format!(
            "missing unit, and neither {number}s nor {number}ms is allowed ({reason}): write, say, {}, the default",
            duration::format(default)
        ),
    }
}

fn at_least(value: Duration, minimum: Duration) -> Result<(), String> {
    if value < minimum {
        return Err(format!("must be at least {}", duration::format(minimum)));
    }
    Ok(())
}

fn at_most(value: Duration, maximum: Duration) -> Result<(), String> {
    if value > maximum {
        return Err(format!("must be at most {}", duration::format(maximum)));
    }
    Ok(())
}

fn check_timeout(timeout: Duration, interval: Duration) -> Result<(), String> {
    at_least(timeout, MIN_TIMEOUT)?;
    at_most(timeout, MAX_TIMEOUT).map_err(|err| {
        format!("{err}: a later reply measures nothing useful, and /latency callers wait as long")
    })?;
    if timeout >= interval {
        return Err(format!(
            "must be shorter than the interval ({}), so that a probe ends before the next starts",
            duration::format(interval)
        ));
    }
    Ok(())
}

fn parse_results_path(given: &Given) -> Result<PathBuf, ConfigError> {
    let path = PathBuf::from(&given.value);
    if given.value.ends_with('/') || path.file_name().is_none() {
        return Err(given.error("expected a file path, like /var/lib/latency/results.txt"));
    }
    // The path appears in log lines, where a newline would start a forged one.
    if given.value.chars().any(char::is_control) {
        return Err(given.error("must not contain control characters such as a newline"));
    }
    Ok(path)
}

/// systemd's `StateDirectory=` exports `STATE_DIRECTORY`, a colon-separated list of which the
/// first entry is ours.
fn default_results_path(state_directory: Option<String>) -> PathBuf {
    let dir = state_directory
        .as_deref()
        .and_then(|dirs| dirs.split(':').next())
        .filter(|dir| !dir.is_empty())
        .unwrap_or(DEFAULT_RESULTS_DIR);
    PathBuf::from(dir).join(RESULTS_FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        match parse(args.iter().copied(), |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))?
        {
            Command::Run(config) => Ok(config),
            other => panic!("expected a config, got {other:?}"),
        }
    }

    type Args<'a> = &'a [&'a str];
    type Env<'a> = &'a [(&'a str, &'a str)];

    fn ip(name: &str, address: &str) -> Target {
        Target { name: name.parse().unwrap(), host: Host::Ip(address.parse().unwrap()) }
    }

    fn named(name: &str, host: &str) -> Target {
        Target { name: name.parse().unwrap(), host: Host::Name(host.into()) }
    }

    fn scoped(name: &str, address: &str, zone: &str) -> Target {
        Target {
            name: name.parse().unwrap(),
            host: Host::Scoped { address: address.parse().unwrap(), zone: zone.into() },
        }
    }

    #[test]
    fn targets_are_listed_with_commas_white_space_and_repeated_flags() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], Vec<Target>);
        let cases: Vec<Case> = vec![
            (
                &[],
                &[("LATENCY_TARGET", "198.51.100.2,203.0.113.9")],
                vec![ip("198.51.100.2", "198.51.100.2"), ip("203.0.113.9", "203.0.113.9")],
            ),
            (
                &[],
                &[("LATENCY_TARGET", "198.51.100.2 203.0.113.9")],
                vec![ip("198.51.100.2", "198.51.100.2"), ip("203.0.113.9", "203.0.113.9")],
            ),
            // Empty entries between separators are no entries.
            (
                &[],
                &[("LATENCY_TARGET", " ,198.51.100.2,, \t203.0.113.9 ,\n")],
                vec![ip("198.51.100.2", "198.51.100.2"), ip("203.0.113.9", "203.0.113.9")],
            ),
            (&[], &[("LATENCY_TARGET", " , ")], vec![]),
            (
                &["--target", "db-2=db.example.org", "--target", "198.51.100.2,gw=203.0.113.1"],
                &[],
                vec![
                    named("db-2", "db.example.org"),
                    ip("198.51.100.2", "198.51.100.2"),
                    ip("gw", "203.0.113.1"),
                ],
            ),
            (&["--target=db=198.51.100.2"], &[], vec![ip("db", "198.51.100.2")]),
            // Any --target replaces the whole variable.
            (
                &["--target", "198.51.100.2"],
                &[("LATENCY_TARGET", "a=203.0.113.9,b=203.0.113.10")],
                vec![ip("198.51.100.2", "198.51.100.2")],
            ),
            // The default NAME is the HOST as written.
            (&["--target", "2001:DB8::7"], &[], vec![ip("2001:DB8::7", "2001:db8::7")]),
            (&["--target", "::1,localhost"], &[], vec![ip("::1", "::1"), named("localhost", "localhost")]),
            (&["--target", "fe80::1%eth0"], &[], vec![scoped("fe80::1%eth0", "fe80::1", "eth0")]),
            (&["--target", "gw=fe80::1%br-lan.10"], &[], vec![scoped("gw", "fe80::1", "br-lan.10")]),
            (&["--target", "a.b_C-9:e%f=198.51.100.2"], &[], vec![ip("a.b_C-9:e%f", "198.51.100.2")]),
            // Names are told apart by case, like the lines that carry them.
            (
                &["--target", "DB=198.51.100.2,db=198.51.100.2"],
                &[],
                vec![ip("DB", "198.51.100.2"), ip("db", "198.51.100.2")],
            ),
            // The family is for names: an address is probed as it is.
            (&["--family", "ipv4", "--target", "2001:db8::7"], &[], vec![ip("2001:db8::7", "2001:db8::7")]),
        ];
        for (args, env, targets) in cases {
            assert_eq!(run(args, env).map(|config| config.targets), Ok(targets), "{args:?} {env:?}");
        }
    }

    #[test]
    fn family_values() {
        let cases: &[(Args, Env, Family)] = &[
            (&[], &[], Family::Auto),
            (&["--family", "auto"], &[], Family::Auto),
            (&["--family", "ipv4"], &[], Family::Ipv4),
            (&["--family=ipv6"], &[], Family::Ipv6),
            (&[], &[("LATENCY_FAMILY", "ipv6")], Family::Ipv6),
            (&["--family", "ipv4"], &[("LATENCY_FAMILY", "ipv6")], Family::Ipv4),
        ];
        for (args, env, family) in cases {
            assert_eq!(run(args, env).map(|config| config.family), Ok(*family), "{args:?} {env:?}");
        }
    }

    #[test]
    fn sync_values() {
        let cases: &[(Args, Env, SyncPolicy)] = &[
            (&[], &[], SyncPolicy::None),
            (&["--sync", "none"], &[], SyncPolicy::None),
            (&["--sync=line"], &[], SyncPolicy::Line),
            (&[], &[("LATENCY_SYNC", "line")], SyncPolicy::Line),
            (&["--sync", "none"], &[("LATENCY_SYNC", "line")], SyncPolicy::None),
        ];
        for (args, env, sync) in cases {
            assert_eq!(run(args, env).map(|config| config.sync), Ok(*sync), "{args:?} {env:?}");
        }
    }

    #[test]
    fn resolve_every_values() {
        let cases: &[(Args, Env, u64)] = &[
            (&[], &[], 300),
            (&["--resolve-every", "1s"], &[], 1),
            (&["--resolve-every", "24h"], &[], 86_400),
            (&[], &[("LATENCY_RESOLVE_EVERY", "30s")], 30),
            (&["--resolve-every", "1m"], &[("LATENCY_RESOLVE_EVERY", "30s")], 60),
        ];
        for (args, env, secs) in cases {
            let every = run(args, env).map(|config| config.resolve_every);
            assert_eq!(every, Ok(Duration::from_secs(*secs)), "{args:?} {env:?}");
        }
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let config = run(&[], &[]).unwrap();
        assert_eq!(
            config,
            Config {
                targets: Vec::new(),
                family: Family::Auto,
                resolve_every: Duration::from_secs(300),
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(2),
                listen: "0.0.0.0:5000".parse().unwrap(),
                results: "/var/lib/latency/results.txt".into(),
                max_conns_per_client: NonZeroUsize::new(32).unwrap(),
                sync: SyncPolicy::None,
            }
        );
    }

    #[test]
    fn flags_win_over_environment_and_both_forms_work() {
        let env = [("LATENCY_TARGET", "203.0.113.9"), ("LATENCY_INTERVAL", "5s")];
        let config = run(&["--target", "198.51.100.2", "--interval=10s"], &env).unwrap();
        assert_eq!(config.targets, [ip("198.51.100.2", "198.51.100.2")]);
        assert_eq!(config.interval, Duration::from_secs(10));
        let config = run(&[], &env).unwrap();
        assert_eq!(config.targets, [ip("203.0.113.9", "203.0.113.9")]);
        assert_eq!(config.interval, Duration::from_secs(5));
    }

    #[test]
    fn the_default_timeout_gives_way_to_a_short_interval() {
        let cases = [("60s", 2_000), ("4s", 2_000), ("1s", 500), ("100ms", 50)];
        for (interval, timeout) in cases {
            let config = run(&["--interval", interval], &[]).unwrap();
            assert_eq!(config.timeout, Duration::from_millis(timeout), "{interval}");
        }
    }

    #[test]
    fn state_directory_sets_the_default_results_path() {
        let config = run(&[], &[("STATE_DIRECTORY", "/var/lib/latency:/var/lib/other")]).unwrap();
        assert_eq!(config.results, PathBuf::from("/var/lib/latency/results.txt"));
        let config = run(&[], &[("STATE_DIRECTORY", "/srv/state")]).unwrap();
        assert_eq!(config.results, PathBuf::from("/srv/state/results.txt"));
    }

    #[test]
    fn empty_environment_values_mean_unset() {
        let config = run(&[], &[("LATENCY_TARGET", ""), ("LATENCY_INTERVAL", "")]).unwrap();
        assert_eq!(config.targets, []);
        assert_eq!(config.interval, Duration::from_secs(60));
    }

    #[test]
    fn duration_hints_suggest_only_allowed_values() {
        // The arguments (the setting at fault last), the message, and the values it suggests.
        type Case<'a> = (&'a [&'a str], &'a str, &'a [&'a str]);
        let cases: &[Case] = &[
            (
                &["--interval", "0"],
                "--interval 0: missing unit, and neither 0s nor 0ms is allowed (must be at least 100ms): \
                 write, say, 1m, the default",
                &["1m"],
            ),
            (&["--interval", "50"], "--interval 50: missing unit: write 50s", &["50s"]),
            (&["--interval", "500"], "--interval 500: missing unit: write 500s or 500ms", &["500s", "500ms"]),
            (
                &["--timeout", "0"],
                "--timeout 0: missing unit, and neither 0s nor 0ms is allowed (must be at least 1ms): \
                 write, say, 2s, the default",
                &["2s"],
            ),
            (
                &["--interval", "1s", "--timeout", "0"],
                "--timeout 0: missing unit, and neither 0s nor 0ms is allowed (must be at least 1ms): \
                 write, say, 500ms, the default",
                &["500ms"],
            ),
            (&["--timeout", "5"], "--timeout 5: missing unit: write 5s or 5ms", &["5s", "5ms"]),
            (&["--timeout", "90"], "--timeout 90: missing unit: write 90ms", &["90ms"]),
            (
                &["--interval", "200ms", "--timeout", "1000"],
                "--timeout 1000: missing unit, and neither 1000s nor 1000ms is allowed (must be shorter \
                 than the interval (200ms), so that a probe ends before the next starts): write, say, \
                 100ms, the default",
                &["100ms"],
            ),
            (
                &["--interval", "fast"],
                "--interval fast: expected a whole number followed by ms, s, m or h, like 1m",
                &["1m"],
            ),
            (
                &["--interval", "200ms", "--timeout", "fast"],
                "--timeout fast: expected a whole number followed by ms, s, m or h, like 100ms",
                &["100ms"],
            ),
        ];
        for (args, message, suggested) in cases {
            assert_eq!(run(args, &[]).expect_err(message).to_string(), *message);
            for value in *suggested {
                let mut fixed = args.to_vec();
                fixed[args.len() - 1] = value;
                assert!(run(&fixed, &[]).is_ok(), "{message}: {fixed:?} is refused");
            }
        }
    }

    #[test]
    fn each_documented_default_is_what_an_empty_command_line_gets() {
        let defaults = run(&[], &[]).unwrap();
        for setting in SETTINGS {
            match (setting.default)() {
                Some(value) => {
                    assert_eq!(run(&[setting.flag, &value], &[]), Ok(defaults.clone()), "{}", setting.flag)
                }
                None => assert_eq!(defaults.targets, [], "{} has no default", setting.flag),
            }
        }
    }

    #[test]
    fn each_documented_limit_is_enforced_at_its_bound() {
        let ms = Duration::from_millis;
        for setting in SETTINGS {
            // A long interval leaves room for the longest timeout.
            let interval = if setting.flag == INTERVAL.flag { "100ms" } else { "2h" };
            for limit in setting.limits {
                let dur = duration::format;
                let (inside, outside, interval) = match *limit {
                    Limit::AtLeast(min) => (dur(min), dur(min - ms(1)), interval),
                    Limit::AtMost(max) => (dur(max), dur(max + ms(1)), interval),
                    Limit::ShorterThanInterval => (dur(ms(9_999)), dur(ms(10_000)), "10s"),
                    Limit::Fewest(min) => (min.to_string(), (min - 1).to_string(), interval),
                };
                let args = |value: &str| run(&["--interval", interval, setting.flag, value], &[]);
                assert!(args(&inside).is_ok(), "{} {limit}: {:?}", setting.flag, args(&inside));
                let err = args(&outside).expect_err(&format!("{} {limit}", setting.flag));
                assert!(
                    err.reason.starts_with(&format!("must be {limit}")),
                    "{} {limit}: {err}",
                    setting.flag
                );
            }
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"], |_| None), Ok(Command::Help));
        assert_eq!(parse(["-V"], |_| None), Ok(Command::Version));
    }

    #[test]
    fn names_are_at_most_64_characters() {
        let name = "n".repeat(crate::line::NAME_MAX);
        let host = format!("{}.org", "h".repeat(crate::line::NAME_MAX - 4));
        let targets = |entry: &str| run(&["--target", entry], &[]).map(|config| config.targets);
        assert_eq!(targets(&format!("{name}=198.51.100.2")), Ok(vec![ip(&name, "198.51.100.2")]));
        assert_eq!(targets(&host), Ok(vec![named(&host, &host)]));
        let err = targets(&format!("{name}n=198.51.100.2")).expect_err("a NAME of 65");
        assert!(err.reason.contains("is not a target name (it is 65 characters long)"), "{err}");
        // A host name of 65 characters needs a NAME of its own.
        let longer = format!("h{host}");
        let err = targets(&longer).expect_err("a HOST of 65");
        assert!(
            err.reason.contains("(it is 65 characters long)") && err.reason.ends_with("as NAME=HOST"),
            "{err}"
        );
        assert_eq!(targets(&format!("h={longer}")), Ok(vec![named("h", &longer)]));
    }

    #[test]
    fn bad_values_name_source_value_and_rule() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--interval", "0"], &[], "--interval 0: missing unit"),
            (&["--interval", "0s"], &[], "--interval 0s: must be at least 100ms"),
            (&["--timeout", "0ms"], &[], "--timeout 0ms: must be at least 1ms"),
            (&["--listen", "nonsense"], &[], "--listen nonsense: expected ADDRESS:PORT"),
            (&["--listen", "localhost:5000"], &[], "--listen localhost:5000: expected ADDRESS:PORT"),
            (&["--target", "bad_host!"], &[], "--target bad_host!: expected an IP address or a host name"),
            (&["--target="], &[], "--target: names no target"),
            (&["--target", "010.0.0.1"], &[], "--target 010.0.0.1: looks like an IPv4 address"),
            (&["--target", "1.2.3"], &[], "--target 1.2.3: looks like an IPv4 address"),
            (&["--target", "0x7f.1"], &[], "--target 0x7f.1: looks like an IPv4 address"),
            (&["--target", "198.51.100.256"], &[], "--target 198.51.100.256: looks like an IPv4 address"),
            (
                &["--timeout", "5s", "--interval", "5s"],
                &[],
                "--timeout 5s: must be shorter than the interval (5s)",
            ),
            (&["--results", "/var/lib/"], &[], "--results /var/lib/: expected a file path"),
            (
                &["--results", "/tmp/x\nERROR forged"],
                &[],
                "--results /tmp/x\\nERROR forged: must not contain",
            ),
            (&["--bogus"], &[], "--bogus: unknown option"),
            (&["--target"], &[], "--target: needs a value"),
            (&[], &[("LATENCY_INTERVAL", "fast")], "LATENCY_INTERVAL fast: expected a whole number"),
            (
                &[],
                &[("LATENCY_TIMEOUT", "45s"), ("LATENCY_INTERVAL", "30s")],
                "LATENCY_TIMEOUT 45s: must be shorter than the interval (30s)",
            ),
            (&["--interval", "2h", "--timeout", "61s"], &[], "--timeout 61s: must be at most 1m"),
            (&["--target", "0.0.0.0"], &[], "--target 0.0.0.0: is the unspecified address"),
            (&["--target", "255.255.255.255"], &[], "--target 255.255.255.255: is a broadcast or multicast"),
            (&["--target", "224.0.0.1"], &[], "--target 224.0.0.1: is a broadcast or multicast"),
            (&["--interval", "5s\nINFO forged"], &[], "--interval 5s\\nINFO forged: "),
            (&["--bogus\u{1b}[2J"], &[], "--bogus\\u{1b}[2J: unknown option"),
            (&["--target", " , "], &[], "--target  , : names no target"),
            (&[], &[("LATENCY_TARGET", "198.51.100.2,bad!")], "LATENCY_TARGET bad!: expected an IP address"),
            (&["--target", "=198.51.100.2"], &[], "--target =198.51.100.2: the NAME before = is empty"),
            (&["--target", "db="], &[], "--target db=: the HOST after = is empty"),
            (
                &["--target", "db#1=198.51.100.2"],
                &[],
                "--target db#1=198.51.100.2: the NAME \"db#1\" is not a target name (it holds '#')",
            ),
            (&["--target", "db=bad!"], &[], "--target db=bad!: expected an IP address"),
            (&["--target", "a=b=198.51.100.2"], &[], "--target a=b=198.51.100.2: expected an IP address"),
            (
                &[],
                &[("LATENCY_TARGET", "db=198.51.100.2 db=203.0.113.9")],
                "LATENCY_TARGET db=203.0.113.9: the name db is taken by db=198.51.100.2",
            ),
            (
                &["--target", "198.51.100.2", "--target", "198.51.100.2=203.0.113.9"],
                &[],
                "--target 198.51.100.2=203.0.113.9: the name 198.51.100.2 is taken by 198.51.100.2",
            ),
            (
                &["--target", "198.51.100.2=203.0.113.9,198.51.100.2"],
                &[],
                "--target 198.51.100.2: the name 198.51.100.2 is taken by 198.51.100.2=203.0.113.9",
            ),
            (&["--target", "2001:db8::zz"], &[], "--target 2001:db8::zz: expected an IPv6 address"),
            (
                &["--target", "[2001:db8::7]"],
                &[],
                "--target [2001:db8::7]: expected an IPv6 address (without brackets)",
            ),
            (&["--target", "::"], &[], "--target ::: is the unspecified address"),
            (&["--target", "ff02::1"], &[], "--target ff02::1: is a multicast address"),
            (&["--target", "ff02::1%eth0"], &[], "--target ff02::1%eth0: is a multicast address"),
            (&["--target", "::ffff:198.51.100.2"], &[], "--target ::ffff:198.51.100.2: is an IPv4-mapped"),
            (
                &["--target", "fe80::1"],
                &[],
                "--target fe80::1: is a link-local address and needs its interface",
            ),
            (&["--target", "2001:db8::7%eth0"], &[], "--target 2001:db8::7%eth0: has an interface after %"),
            (&["--target", "fe80::1%"], &[], "--target fe80::1%: expected the name of an interface"),
            (
                &["--target", "fe80::1%eth/0"],
                &[],
                "--target fe80::1%eth/0: expected the name of an interface",
            ),
            (
                &["--target", "fe80::1%abcdefghijklmnop"],
                &[],
                "--target fe80::1%abcdefghijklmnop: expected the name",
            ),
            (&["--family", "IPv4"], &[], "--family IPv4: expected auto, ipv4 or ipv6"),
            (&[], &[("LATENCY_FAMILY", "inet6")], "LATENCY_FAMILY inet6: expected auto, ipv4 or ipv6"),
            (&["--resolve-every", "999ms"], &[], "--resolve-every 999ms: must be at least 1s"),
            (&["--resolve-every", "25h"], &[], "--resolve-every 25h: must be at most 24h"),
            (&["--resolve-every", "30"], &[], "--resolve-every 30: missing unit: write 30s"),
            (
                &[],
                &[("LATENCY_SYNC", "bogus")],
                "LATENCY_SYNC bogus: expected none (the default) or line (fdatasync after each line)",
            ),
            (&["--sync", "Line"], &[], "--sync Line: expected none (the default) or line"),
        ];
        for (args, env, message) in cases {
            let err = run(args, env).expect_err(message);
            assert!(err.to_string().starts_with(message), "{args:?}: got '{err}', want '{message}'");
            assert!(!err.to_string().contains('\n'));
        }
    }
}
