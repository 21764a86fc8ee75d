//! Which of a host name's addresses to probe, and what each new lookup of it is worth logging.
//! Pure: the daemon asks the resolver (getaddrinfo) and feeds in what it returned, at start,
//! on SIGHUP and every `--resolve-every`.

use std::fmt;
use std::net::IpAddr;

use log::Level;

use crate::config::{self, Family};

/// What a lookup of a host name returned: its addresses in the resolver's order, or the
/// resolver's words for why it found none.
pub type Lookup = Result<Vec<IpAddr>, String>;

/// Why a lookup gave no address to probe. Worded to follow the host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The resolver failed.
    Lookup(String),
    /// The resolver found no address of the family asked for.
    NoAddress { family: Family, found: Vec<IpAddr> },
    /// The address chosen cannot measure one host's latency (see [`config::unprobeable`]).
    Unprobeable { address: IpAddr, problem: &'static str },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Lookup(err) => write!(f, "cannot resolve: {}", err.escape_debug()),
            Failure::NoAddress { family, found } => {
                let found: Vec<String> = found.iter().map(ToString::to_string).collect();
                let found = if found.is_empty() { "none".into() } else { found.join(", ") };
                match family {
                    Family::Auto => write!(f, "has no address (found {found})"),
                    Family::Ipv4 => {
                        write!(f, "has no IPv4 address (found {found}); family ipv6 or auto probes another")
                    }
                    Family::Ipv6 => {
                        write!(f, "has no IPv6 address (found {found}); family ipv4 or auto probes another")
                    }
                }
            }
            Failure::Unprobeable { address, problem } => write!(f, "resolves to {address}, which {problem}"),
        }
    }
}

/// The address to probe among those a lookup `found`: with [`Family::Auto`], the first IPv4
/// address if there is one, else the first IPv6 address; otherwise the first of the family.
pub fn choose(family: Family, found: &[IpAddr]) -> Result<IpAddr, Failure> {
    let first_v4 = found.iter().find(|address| address.is_ipv4());
    let first_v6 = found.iter().find(|address| address.is_ipv6());
    let chosen = match family {
        Family::Auto => first_v4.or(first_v6),
        Family::Ipv4 => first_v4,
        Family::Ipv6 => first_v6,
    };
    let address = *chosen.ok_or_else(|| Failure::NoAddress { family, found: found.to_vec() })?;
    match config::unprobeable(address) {
        Some(problem) => Err(Failure::Unprobeable { address, problem }),
        None => Ok(address),
    }
}

/// What one target's lookups have given so far: the address last resolved, and whether the
/// latest lookups failed. A failure keeps the last good address, and is logged once per
/// outage.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Resolution {
    last_good: Option<IpAddr>,
    failing: bool,
}

/// A lookup worth a log line; its `Display` is that line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// The first lookup that gave an address.
    Resolved { host: String, address: IpAddr },
    /// A lookup gave another address than the one before.
    Changed { host: String, old: IpAddr, new: IpAddr },
    /// The first failure since the last success (or since start); `kept` is still probed.
    Failed { host: String, failure: Failure, kept: Option<IpAddr> },
    /// A success after failures; `was` is the address kept meanwhile.
    Recovered { host: String, address: IpAddr, was: Option<IpAddr> },
}

impl LogEvent {
    pub fn level(&self) -> Level {
        match self {
            LogEvent::Failed { .. } => Level::Warn,
            _ => Level::Info,
        }
    }
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogEvent::Resolved { host, address } => write!(f, "{host} resolves to {address}"),
            LogEvent::Changed { host, old, new } => write!(f, "{host} now resolves to {new} (was {old})"),
            LogEvent::Failed { host, failure, kept: Some(kept) } => {
                write!(f, "{host} {failure}; probing {kept}, its last address, until it resolves again")
            }
            LogEvent::Failed { host, failure, kept: None } => {
                write!(f, "{host} {failure}; its probes are recorded as timeout until it resolves")
            }
            LogEvent::Recovered { host, address, was: Some(was) } if was != address => {
                write!(f, "{host} resolves again, to {address} (was {was})")
            }
            LogEvent::Recovered { host, address, .. } => write!(f, "{host} resolves again, to {address}"),
        }
    }
}

impl Resolution {
    /// The address probed now: the last one a lookup gave, if any did.
    pub fn address(&self) -> Option<IpAddr> {
        self.last_good
    }

    /// Takes in the outcome of a lookup of `host`: returns the address to probe from now on
    /// (none until a lookup has given one) and what to log, if anything.
    pub fn update(
        &mut self,
        host: &str,
        family: Family,
        lookup: Lookup,
    ) -> (Option<IpAddr>, Option<LogEvent>) {
        let host = host.to_string();
        let event = match lookup.map_err(Failure::Lookup).and_then(|found| choose(family, &found)) {
            Ok(address) => {
                let event = match (self.failing, self.last_good) {
                    (true, was) => Some(LogEvent::Recovered { host, address, was }),
                    (false, None) => Some(LogEvent::Resolved { host, address }),
                    (false, Some(old)) if old != address => {
                        Some(LogEvent::Changed { host, old, new: address })
                    }
                    (false, Some(_)) => None,
                };
                self.last_good = Some(address);
                self.failing = false;
                event
            }
            Err(failure) => {
                let event =
                    (!self.failing).then_some(LogEvent::Failed { host, failure, kept: self.last_good });
                self.failing = true;
                event
            }
        };
        (self.last_good, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ips(texts: &[&str]) -> Vec<IpAddr> {
        texts.iter().map(|text| ip(text)).collect()
    }

    #[test]
    fn choose_takes_the_first_address_of_the_family() {
        let v4_first = ips(&["198.51.100.2", "2001:db8::7", "198.51.100.3", "2001:db8::8"]);
        let v6_first = ips(&["2001:db8::7", "198.51.100.2", "2001:db8::8"]);
        let v6_only = ips(&["2001:db8::7", "2001:db8::8"]);
        let v4_only = ips(&["198.51.100.2"]);
        let cases: &[(Family, &[IpAddr], Result<IpAddr, String>)] = &[
            (Family::Auto, &v4_first, Ok(ip("198.51.100.2"))),
            // IPv4 is preferred even where the resolver lists IPv6 first.
            (Family::Auto, &v6_first, Ok(ip("198.51.100.2"))),
            (Family::Auto, &v6_only, Ok(ip("2001:db8::7"))),
            (Family::Auto, &[], Err("has no address (found none)".into())),
            (Family::Ipv4, &v6_first, Ok(ip("198.51.100.2"))),
            (
                Family::Ipv4,
                &v6_only,
                Err("has no IPv4 address (found 2001:db8::7, 2001:db8::8); family ipv6 or auto probes another"
                    .into()),
            ),
            (Family::Ipv6, &v4_first, Ok(ip("2001:db8::7"))),
            (
                Family::Ipv6,
                &v4_only,
                Err("has no IPv6 address (found 198.51.100.2); family ipv4 or auto probes another".into()),
            ),
            (
                Family::Auto,
                &ips(&["0.0.0.0", "198.51.100.2"]),
                Err("resolves to 0.0.0.0, which is the unspecified address, not a host; give the target's \
                     address"
                    .into()),
            ),
            (
                Family::Ipv6,
                &ips(&["198.51.100.2", "fe80::1"]),
                Err("resolves to fe80::1, which is a link-local address and needs its interface, as \
                     ADDRESS%INTERFACE like fe80::1%eth0"
                    .into()),
            ),
        ];
        for (family, found, want) in cases {
            let got = choose(*family, found).map_err(|failure| failure.to_string());
            assert_eq!(&got, want, "{family} {found:?}");
        }
    }

    /// A run of lookups of one host, each with the address to probe after it and the line
    /// logged, if any.
    #[test]
    fn each_outage_and_change_is_logged_once() {
        let (a, b) = ("198.51.100.2", "198.51.100.3");
        let refused = || Err("Name or service not known".to_string());
        const FIRST: (Level, &str) = (Level::Info, "db.test resolves to 198.51.100.2");
        const KEPT: (Level, &str) = (
            Level::Warn,
            "db.test cannot resolve: Name or service not known; probing 198.51.100.2, its last address, \
             until it resolves again",
        );
        const NONE_YET: &str = "its probes are recorded as timeout until it resolves";
        let unresolved = format!("db.test cannot resolve: Name or service not known; {NONE_YET}");
        let unprobeable = format!(
            "db.test resolves to 0.0.0.0, which is the unspecified address, not a host; give the target's \
             address; {NONE_YET}"
        );
        type Step<'a> = (Lookup, Option<&'a str>, Option<(Level, &'a str)>);
        let runs: Vec<(&str, Vec<Step>)> = vec![
            (
                "steady",
                vec![
                    (Ok(ips(&[a])), Some(a), Some(FIRST)),
                    (Ok(ips(&[a])), Some(a), None),
                    (Ok(ips(&[a, b])), Some(a), None),
                ],
            ),
            (
                "moved",
                vec![
                    (Ok(ips(&[a])), Some(a), Some(FIRST)),
                    (
                        Ok(ips(&[b])),
                        Some(b),
                        Some((Level::Info, "db.test now resolves to 198.51.100.3 (was 198.51.100.2)")),
                    ),
                    (Ok(ips(&[b])), Some(b), None),
                ],
            ),
            (
                "an outage keeps the last good address and warns once",
                vec![
                    (Ok(ips(&[a])), Some(a), Some(FIRST)),
                    (refused(), Some(a), Some(KEPT)),
                    (refused(), Some(a), None),
                    // No address of the family is a failure like the others.
                    (Ok(ips(&["2001:db8::7"])), Some(a), None),
                    (Ok(ips(&[a])), Some(a), Some((Level::Info, "db.test resolves again, to 198.51.100.2"))),
                    (refused(), Some(a), Some(KEPT)),
                    (
                        Ok(ips(&[b])),
                        Some(b),
                        Some((Level::Info, "db.test resolves again, to 198.51.100.3 (was 198.51.100.2)")),
                    ),
                ],
            ),
            (
                "unresolved from the start",
                vec![
                    (refused(), None, Some((Level::Warn, &unresolved))),
                    (Ok(vec![]), None, None),
                    (Ok(ips(&[a])), Some(a), Some((Level::Info, "db.test resolves again, to 198.51.100.2"))),
                ],
            ),
            (
                "an unprobeable address is a failure",
                vec![
                    (Ok(ips(&["0.0.0.0"])), None, Some((Level::Warn, &unprobeable))),
                    (refused(), None, None),
                ],
            ),
        ];
        for (run, steps) in runs {
            let mut resolution = Resolution::default();
            for (i, (lookup, address, log)) in steps.into_iter().enumerate() {
                let (got_address, event) = resolution.update("db.test", Family::Ipv4, lookup);
                assert_eq!(got_address, address.map(ip), "{run}, step {i}: address");
                let got_log = event.map(|event| (event.level(), event.to_string()));
                assert_eq!(
                    got_log,
                    log.map(|(level, line)| (level, line.to_string())),
                    "{run}, step {i}: log"
                );
            }
        }
    }

    #[test]
    fn resolver_words_stay_on_one_line() {
        let mut resolution = Resolution::default();
        let (_, event) = resolution.update("db.test", Family::Auto, Err("bad\nERROR forged".into()));
        let line = event.map(|event| event.to_string()).unwrap_or_default();
        assert!(line.contains("cannot resolve: bad\\nERROR forged"), "{line}");
    }
}
