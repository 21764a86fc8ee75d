//! Giving up every capability once the sockets that need one are open, as iputils `ping`
//! does: a flaw found later in the HTTP or ICMP handling then has no privilege to use.
//! nix has no `capget`/`capset`, so the syscalls are made through libc here, each `unsafe`
//! block with its reason.
#![allow(unsafe_code)]

use std::fmt;

use nix::errno::Errno;

/// `<linux/capability.h>`: the header version whose data is two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// A step of the drop that failed: the daemon then does not start, rather than run with a
/// privilege it means not to have.
#[derive(Debug, PartialEq, Eq)]
pub struct PrivilegeError {
    /// The call that failed, with its argument where one varies.
    operation: String,
    errno: Errno,
}

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capabilities: {}: {}; a seccomp filter or security module that refuses it must \
             allow prctl, capget and capset",
            self.operation,
            self.errno.desc()
        )
    }
}

impl std::error::Error for PrivilegeError {}

/// What `drop_all` did beyond emptying the process's own sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounding {
    /// The bounding set was emptied (the process held CAP_SETPCAP: started as root).
    Emptied,
    /// The bounding set was left as it was: emptying it needs CAP_SETPCAP, which an
    /// unprivileged start (file capabilities, a unit's ambient set) does not hold.
    Kept,
}

/// Makes the capabilities the process is permitted also effective, so that a binary given
/// `setcap cap_net_raw+p` (permitted, not effective: the kernel grants it, the program
/// decides when to use it, as iputils `ping` does) opens a raw socket.
pub fn use_permitted() -> Result<(), PrivilegeError> {
    let mut data = capget()?;
    for set in &mut data {
        set.effective = set.permitted;
    }
    capset(&data)
}

fn capget() -> Result<[CapData; 2], PrivilegeError> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: both pointers are valid for the call: the header for reading and writing (the
    // kernel writes its preferred version there on EINVAL), the data for writing the two
    // entries that version 3 fills.
    let got = unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) };
    Errno::result(got).map_err(|errno| PrivilegeError { operation: "capget".into(), errno })?;
    Ok(data)
}

fn capset(data: &[CapData; 2]) -> Result<(), PrivilegeError> {
    let mut header = CapHeader { version: CAPABILITY_VERSION_3, pid: 0 };
    // SAFETY: both pointers are valid for the call: the header for reading and writing (the
    // kernel writes its preferred version there on EINVAL), the data for reading the two
    // entries that version 3 expects.
    let set = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) };
    Errno::result(set).map(drop).map_err(|errno| PrivilegeError { operation: "capset".into(), errno })
}

/// Leaves the calling thread, which must be the process's only one, with no capability and
/// no way to regain one:
/// - the bounding set is emptied when CAP_SETPCAP allows it (a start as root), so that no
///   `execve` can grant anything, not even uid 0's implicit full set;
/// - `no_new_privs` is set, so that an `execve` of a set-uid or file-capability binary grants
///   nothing either when the bounding set could not be emptied (the daemon execs nothing);
/// - the ambient set is cleared, then the effective, permitted and inheritable sets.
///
/// Securebits are left alone: they only govern what uid 0 gains across `execve` and uid
/// changes, which the empty bounding set and `no_new_privs` already bring to nothing, and
/// the permitted set, once empty, cannot be raised again by any means. A process started
/// as root keeps uid 0 itself, and with it the owner's rights on root's files: the unit's
/// DynamicUser= is what avoids that.
///
/// Capabilities are per thread: a thread that exists at the call keeps its own.
pub fn drop_all() -> Result<Bounding, PrivilegeError> {
    let bounding = empty_bounding_set()?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(|errno| PrivilegeError { operation: "prctl(PR_SET_NO_NEW_PRIVS)".into(), errno })?;
    // SAFETY: PR_CAP_AMBIENT takes integer arguments only and touches no memory of ours.
    let cleared = unsafe {
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0)
    };
    // A kernel older than 4.3 has no ambient set, so nothing to clear.
    match Errno::result(cleared) {
        Ok(_) | Err(Errno::EINVAL) => {}
        Err(errno) => {
            return Err(PrivilegeError { operation: "prctl(PR_CAP_AMBIENT_CLEAR_ALL)".into(), errno });
        }
    }
    capset(&[CapData::default(); 2])?;
    Ok(bounding)
}

fn empty_bounding_set() -> Result<Bounding, PrivilegeError> {
    // Capabilities are numbered from 0 up to the kernel's last, past which reads fail.
    for capability in 0.. {
        // SAFETY: PR_CAPBSET_READ/DROP take integer arguments only.
        let held = unsafe { libc::prctl(libc::PR_CAPBSET_READ, capability as libc::c_ulong, 0, 0, 0) };
        match Errno::result(held) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(Errno::EINVAL) => break,
            Err(errno) => {
                return Err(PrivilegeError {
                    operation: format!("prctl(PR_CAPBSET_READ, {capability})"),
                    errno,
                });
            }
        }
        // SAFETY: as above.
        let dropped = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, capability as libc::c_ulong, 0, 0, 0) };
        match Errno::result(dropped) {
            Ok(_) => {}
            // Without CAP_SETPCAP no capability can be dropped, the first one included.
            Err(Errno::EPERM) => return Ok(Bounding::Kept),
            Err(errno) => {
                return Err(PrivilegeError {
                    operation: format!("prctl(PR_CAPBSET_DROP, {capability})"),
                    errno,
                });
            }
        }
    }
    Ok(Bounding::Emptied)
}
