//! The doctor's I/O: reads the configuration as the daemon would, gathers each fact with the
//! daemon's own code (sockets, resolver, prober, the store's check, the HTTP bind), asks
//! systemd about the unit, and prints what `doctor.rs` makes of it.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nix::unistd::{AccessFlags, User, access, getegid, geteuid};

use super::{
    Check, DEFAULTS_FILE, Echo, Listen, NetRaw, Results, STATE_DIRECTORIES, Sockets, TargetEcho, Unit, Who,
    exit_code, listen_check, listening_inodes, parse_environment_file, results_check, setting, socket_checks,
    target_checks, unit_check, writable_by_root_without_capabilities,
};
use crate::config::{self, Command as Parsed, Config, Host, SyncPolicy};
use crate::daemon::{self, START_LOOKUPS_WAIT};
use crate::engine::{self, Address, TargetSettings};
use crate::http::server::{self, ServerError};
use crate::line::{Form, Outcome};
use crate::monitor::Monitor;
use crate::net::SocketKind;
use crate::net::linux::{self, LinuxSocket};
use crate::packet::Family;
use crate::privilege;
use crate::prober::{Heartbeat, Prober, Settings};
use crate::resolve::{self, Failure};
use crate::store::{self, Store, StoreError};

/// `latency doctor [OPTIONS]`: the report on stdout, and the exit status (2: bad options).
pub fn run(args: &[String]) -> u8 {
    let file = match fs::read_to_string(DEFAULTS_FILE) {
        Ok(text) => parse_environment_file(&text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(err) => {
            eprintln!("latency doctor: read {DEFAULTS_FILE}: {err}; run it as root (sudo latency doctor)");
            return 2;
        }
    };
    let env = |name: &str| setting(name, std::env::var(name).ok().as_deref(), &file).map(str::to_string);
    let config = match config::parse(args.iter().cloned(), env) {
        Ok(Parsed::Run(config)) => config,
        Ok(Parsed::Help | Parsed::Version) => {
            print!("{}", config::usage());
            return 0;
        }
        Err(err) => {
            eprintln!("latency doctor: {err}");
            return 2;
        }
    };
    let checks = examine(&config);
    for check in &checks {
        println!("{check}");
    }
    exit_code(&checks)
}

fn examine(config: &Config) -> Vec<Check> {
    // As the daemon does: a binary given `setcap cap_net_raw+p` uses it.
    let raised = privilege::use_permitted();
    let who = who();
    let addresses = resolve_all(config);
    let families: Vec<Sockets> = [Family::V4, Family::V6]
        .into_iter()
        .map(|family| Sockets {
            family,
            raw: linux::can_open(family, SocketKind::Raw),
            datagram: linux::can_open(family, SocketKind::Datagram),
            needed: addresses.iter().any(|a| a.as_ref().is_ok_and(|a| Family::of(a.ip) == family)),
        })
        .collect();
    let status = fs::read_to_string("/proc/self/status").ok();
    let mut checks = Vec::new();
    if let Err(err) = raised {
        checks.push(Check::note(err.to_string()));
    }
    let net_raw = status.as_deref().and_then(NetRaw::from_status);
    checks.extend(socket_checks(&families, net_raw, linux::ping_group_range(), &who));
    let echoes = echo_all(config, &addresses, &families);
    checks.extend(target_checks(&echoes, config.timeout));
    checks.push(results_check(&config.results, &results(&config.results), &who));
    let unit = systemd_unit();
    checks.push(listen_check(config.listen, &listen(config, unit.as_ref())));
    checks.push(unit_check(unit.as_ref()));
    checks
}

fn who() -> Who {
    let uid = geteuid();
    let user = User::from_uid(uid).ok().flatten().map_or_else(|| uid.to_string(), |user| user.name);
    let binary = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("latency"));
    Who { user, gid: getegid().as_raw(), binary }
}

/// Each target's address to probe, or why it has none, as the daemon's start finds them.
fn resolve_all(config: &Config) -> Vec<Result<Address, String>> {
    let mut lookups = match daemon::lookup_all(config, Some(START_LOOKUPS_WAIT)) {
        Ok(lookups) => lookups,
        Err(err) => return config.targets.iter().map(|_| Err(err.to_string())).collect(),
    };
    config
        .targets
        .iter()
        .enumerate()
        .map(|(index, target)| match &target.host {
            Host::Ip(ip) => Ok(Address::from(*ip)),
            Host::Scoped { address, zone } => nix::net::if_::if_nametoindex(zone.as_str())
                .map(|scope_id| Address { ip: IpAddr::V6(*address), scope_id })
                .map_err(|errno| format!("no interface {zone} here ({})", errno.desc())),
            Host::Name(_) => match lookups[index].take() {
                Some(Ok(found)) => resolve::choose(config.family, &found).map(Address::from),
                Some(Err(reason)) => Err(Failure::Lookup(reason)),
                None => Err(Failure::Lookup(format!(
                    "no answer from the resolver within {}",
                    config::duration::format(START_LOOKUPS_WAIT)
                ))),
            }
            .map_err(|failure| failure.to_string()),
        })
        .collect()
}

/// One echo to each target that has an address and a socket of its family, all at once,
/// through the daemon's own prober. Its lines go to a scratch file that is then deleted: the
/// results file is not touched.
fn echo_all(config: &Config, addresses: &[Result<Address, String>], families: &[Sockets]) -> Vec<TargetEcho> {
    let has_socket = |ip: IpAddr| families.iter().any(|s| s.family == Family::of(ip) && s.any());
    let probed: Vec<usize> = (0..addresses.len())
        .filter(|&index| addresses[index].as_ref().is_ok_and(|a| has_socket(a.ip)))
        .collect();
    let rtts = if probed.is_empty() { Ok(Vec::new()) } else { probe(config, addresses, &probed) };
    config
        .targets
        .iter()
        .zip(addresses)
        .enumerate()
        .map(|(index, (target, address))| {
            let echo = match address {
                Err(reason) => Echo::Unresolved(reason.clone()),
                Ok(address) if !probed.contains(&index) => Echo::NoSocket(address.ip),
                Ok(address) => match &rtts {
                    Ok(rtts) => {
                        let at = probed.iter().position(|&i| i == index);
                        Echo::Probed { address: address.to_string(), rtt: at.and_then(|at| rtts[at]) }
                    }
                    Err(reason) => Echo::NotProbed(reason.clone()),
                },
            };
            TargetEcho { name: target.name.to_string(), host: target.host.to_string(), echo }
        })
        .collect()
}

/// The round trip of one echo to each of `probed` (indices into the targets), or why none
/// could be sent.
fn probe(
    config: &Config,
    addresses: &[Result<Address, String>],
    probed: &[usize],
) -> Result<Vec<Option<Duration>>, String> {
    // A directory of its own, made afresh (mkdtemp): a name someone else could have made
    // first, a link elsewhere say, would have root write where they chose.
    let scratch =
        nix::unistd::mkdtemp(&std::env::temp_dir().join("latency-doctor-XXXXXX")).map_err(|errno| {
            format!("make a scratch directory in {}: {}", std::env::temp_dir().display(), errno.desc())
        })?;
    let outcome = probe_with_scratch(config, addresses, probed, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    outcome
}

fn probe_with_scratch(
    config: &Config,
    addresses: &[Result<Address, String>],
    probed: &[usize],
    scratch: &Path,
) -> Result<Vec<Option<Duration>>, String> {
    let form = if config.targets.len() > 1 { Form::Named } else { Form::Seed };
    let store = Arc::new(
        Store::open(&scratch.join("results.txt"), form, SyncPolicy::None).map_err(|err| err.to_string())?,
    );
    let (socket, _) = LinuxSocket::open(&[Family::V4, Family::V6]).map_err(|err| err.to_string())?;
    let targets = config
        .targets
        .iter()
        .zip(addresses)
        .map(|(target, address)| TargetSettings { name: target.name.clone(), address: address.clone().ok() })
        .collect();
    let settings = Settings {
        engine: engine::Settings {
            targets,
            // One probe each, asked for below: no scheduled one besides the first.
            interval: Duration::from_secs(24 * 60 * 60),
            timeout: config.timeout,
            identity: daemon::identity().map_err(|err| err.to_string())?,
        },
        max_wait: Duration::from_millis(100),
    };
    let names: Vec<_> = config.targets.iter().map(|target| target.name.clone()).collect();
    let monitor = Arc::new(Monitor::new(&names, false));
    let (prober, handle) =
        Prober::new(socket, settings, store, monitor, Arc::new(Heartbeat::default()), Box::new(|_| {}));
    let thread = thread::Builder::new()
        .name("prober".into())
        .spawn(move || prober.run())
        .map_err(|err| format!("start the prober thread: {err}"))?;
    let lines = handle.probe(probed);
    handle.stop();
    let _ = thread.join();
    let lines = lines.map_err(|err| err.to_string())?;
    Ok(lines
        .iter()
        .map(|measured| match measured.line.outcome {
            Outcome::Reply(rtt) => Some(rtt),
            Outcome::Timeout => None,
        })
        .collect())
}

fn results(path: &Path) -> Results {
    let not_writable = |at: &Path, reason: String| Results::NotWritable { path: at.to_path_buf(), reason };
    match store::check_existing(path) {
        Ok(Some(bytes)) => match writable(path, AccessFlags::W_OK) {
            Ok(()) => Results::Ours { bytes },
            Err(reason) => not_writable(path, reason),
        },
        Ok(None) => {
            // The daemon creates the missing directories: the nearest one that exists must
            // let this user in and write.
            let existing = path.ancestors().skip(1).find(|dir| dir.is_dir()).unwrap_or(Path::new("/"));
            let existing = if existing.as_os_str().is_empty() { Path::new(".") } else { existing };
            match writable(existing, AccessFlags::W_OK | AccessFlags::X_OK) {
                Ok(()) => Results::Absent { creatable_in: existing.to_path_buf() },
                Err(reason) => not_writable(existing, reason),
            }
        }
        Err(StoreError::NotResults { path, reason }) => {
            Results::NotOurs(format!("{}: not a latency results file ({reason})", path.display()))
        }
        Err(StoreError::Open { path, err } | StoreError::Read { path, err }) => {
            not_writable(&path, err.to_string())
        }
        Err(err) => Results::NotOurs(err.to_string()),
    }
}

/// Whether the daemon, run as the doctor is, may write `path` (`how`: and enter it). Run as
/// root, it opens the file after giving up every capability, CAP_DAC_OVERRIDE with it, so
/// root's own `access` would say yes where the daemon is refused: the mode bits decide, unless
/// the path is the unit's, which the service's own user writes.
fn writable(path: &Path, how: AccessFlags) -> Result<(), String> {
    access(path, how).map_err(|errno| errno.desc().to_string())?;
    let unit_writes_it = STATE_DIRECTORIES.iter().any(|dir| path.starts_with(dir));
    if !geteuid().is_root() || unit_writes_it {
        return Ok(());
    }
    let metadata = fs::metadata(path).map_err(|err| err.to_string())?;
    let search = how.contains(AccessFlags::X_OK);
    if writable_by_root_without_capabilities(metadata.uid(), metadata.gid(), metadata.mode(), search) {
        return Ok(());
    }
    Err(format!(
        "owner uid {}, mode {:o}: root writes by the mode bits alone once the daemon has given up its capabilities",
        metadata.uid(),
        metadata.mode() & 0o7777
    ))
}

/// Whether the listen address can be bound, and if not, who holds it.
fn listen(config: &Config, unit: Option<&Unit>) -> Listen {
    let err = match server::bind(config.listen) {
        Ok(_bound) => return Listen::Free,
        Err(ServerError::Bind { err, .. }) => err,
    };
    if err.kind() != io::ErrorKind::AddrInUse {
        return Listen::Unusable(err.to_string());
    }
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| fs::read_to_string(table).ok())
        .flat_map(|text| listening_inodes(&text, config.listen.port()))
        .collect();
    let Some(pid) = holder(&inodes) else { return Listen::HeldUnseen };
    let program = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
    // Under systemd, the service is the unit's main process; elsewhere, a latency daemon.
    let service = program == "latency"
        && unit
            .is_none_or(|unit| unit.properties.iter().any(|(n, v)| n == "MainPID" && *v == pid.to_string()));
    Listen::Held { pid, program, service }
}

/// The process that has one of the sockets `inodes` open.
fn holder(inodes: &[u64]) -> Option<u32> {
    let wanted: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let fds = fs::read_dir(entry.path().join("fd")).ok()?;
        fds.flatten()
            .any(|fd| {
                fs::read_link(fd.path())
                    .is_ok_and(|link| wanted.iter().any(|w| link.as_os_str() == w.as_str()))
            })
            .then_some(pid)
    })
}

/// latency.service as systemd sees it, when systemd is the service manager here.
fn systemd_unit() -> Option<Unit> {
    let init = fs::read_to_string("/proc/1/comm").ok()?;
    if init.trim() != "systemd" {
        return None;
    }
    let show = Command::new("systemctl")
        .args([
            "show",
            "latency.service",
            "-p",
            "LoadState,ActiveState,SubState,Result,ExecMainStatus,MainPID",
        ])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let last_error = Command::new("journalctl")
        .args(["-u", "latency.service", "-p", "err", "-n", "1", "-o", "cat", "-q", "--no-pager"])
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).lines().last().unwrap_or_default().to_string());
    Some(Unit::parse(&String::from_utf8_lossy(&show.stdout), last_error))
}
