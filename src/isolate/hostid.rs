//! One host uid/gid per root-started sandbox, taken from a range reserved
//! for cordon. Parent side only (it allocates and may block briefly on the
//! file system, never on the payload).
//!
//! Each id of the range has a record file, `/run/cordon/ids/<id>` (the
//! directory is root's, mode 0700). An id is taken while
//!
//! * its record is `flock`ed (`LOCK_EX`): a supervisor holds the lock for
//!   the whole run, so a crashed supervisor releases it at once; or
//! * its record names a process (pid and start time) that is still alive:
//!   `cordon exec` writes its own pid, which it keeps across `execve`, and
//!   cannot hold a lock fd without handing it to the payload; or
//! * its record is not empty (the owner is gone, cleanly or not) and some
//!   host process still runs with that uid or gid: what an exec'd payload
//!   left behind.
//!
//! A supervisor empties the record when nothing of the sandbox runs any
//! more: its init was reaped, or reported that it killed and reaped every
//! other process of the namespace and now only exits (the CLI does not
//! wait for that exit, a few hundred microseconds of namespace teardown in
//! the kernel that runs no code of the payload's). Records are never removed by
//! cordon; one an administrator removed while it was held is seen as taken
//! by whoever had it open (its link count is 0). A dropped [`crate::Prepared`]
//! leaves `0 0`: no owner, but its children may still run as the id, which
//! the next allocator checks. `cordon exec` replaces itself with the
//! payload, which keeps the pid and start time its record names.
//!
//! Allocation starts at a random id among the range's first 256, so that
//! concurrent cordons rarely try the same id first while the records stay
//! few.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::sys::Errno;

/// Environment variable that sets the range: `START-END` (inclusive) or
/// `START:COUNT`.
pub const RANGE_ENV: &str = "CORDON_ID_RANGE";

/// Default range: 65536 ids from 0x70000000 (1879048192), above the
/// container ranges systemd documents (0x80000–0x6FFFFFFF) and below its
/// foreign range (0x7FFE0000).
pub const DEFAULT_RANGE: IdRange = IdRange {
    start: 0x7000_0000,
    count: 0x1_0000,
};

/// Allocation starts at a random id among the range's first `WINDOW`.
const WINDOW: u32 = 256;

/// Where the records live.
pub const ID_DIR: &str = "/run/cordon/ids";

/// A range of host ids: `start .. start + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdRange {
    /// First id.
    pub start: u32,
    /// How many.
    pub count: u32,
}

impl IdRange {
    /// Parse `START-END` (inclusive) or `START:COUNT`, refusing ranges
    /// that hold an id with a special meaning (0, 65534, 65535, 2^32-1).
    pub fn parse(s: &str) -> Result<IdRange, String> {
        let num = |v: &str| {
            v.trim()
                .parse::<u64>()
                .map_err(|_| format!("{v:?} is not a number"))
        };
        let (start, count) = if let Some((a, b)) = s.split_once('-') {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(format!("the range {s:?} ends before it starts"));
            }
            (a, b - a + 1)
        } else if let Some((a, n)) = s.split_once(':') {
            (num(a)?, num(n)?)
        } else {
            return Err(format!("expected START-END or START:COUNT, not {s:?}"));
        };
        if count == 0 {
            return Err("the range is empty".to_string());
        }
        let end = start + count - 1;
        if end >= u64::from(u32::MAX) {
            return Err("the range must end below 4294967295".to_string());
        }
        for special in [0u64, 65534, 65535] {
            if (start..=end).contains(&special) {
                return Err(format!(
                    "the range holds {special}, which is {}",
                    match special {
                        0 => "root",
                        65534 => "nobody (the overflow id)",
                        _ => "the 16-bit -1",
                    }
                ));
            }
        }
        Ok(IdRange {
            start: start as u32,
            count: count as u32,
        })
    }

    /// The range from [`RANGE_ENV`], or [`DEFAULT_RANGE`].
    pub fn from_env() -> Result<IdRange, String> {
        match std::env::var(RANGE_ENV) {
            Ok(v) => IdRange::parse(&v).map_err(|e| format!("{RANGE_ENV}={v:?}: {e}")),
            Err(std::env::VarError::NotPresent) => Ok(DEFAULT_RANGE),
            Err(_) => Err(format!("{RANGE_ENV} is not valid UTF-8")),
        }
    }
}

/// What happens to the record when the lease is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Empty it: the sandbox's pid namespace is gone (supervised runs).
    Clear,
    /// Keep it, owner cleared: processes may still run as the id (the
    /// pre-exec API's children); the next allocator checks for them.
    /// `cordon exec` never drops its lease: its record keeps naming it
    /// (the payload, after `execve`).
    Linger,
}

/// A host id held for one sandbox; released on drop.
#[derive(Debug)]
pub struct Lease {
    id: u32,
    fd: Option<OwnedFd>,
    release: Release,
}

impl Lease {
    /// The host uid (and gid: the same number).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Choose what dropping the lease does to the record.
    pub fn set_release(&mut self, r: Release) {
        self.release = r;
        if r == Release::Linger {
            // Outliving our lock: the record must tell whether we live.
            if let Some(fd) = &self.fd {
                let rec = own_record();
                // SAFETY: our own fd; rec is valid for its length.
                unsafe {
                    libc::ftruncate(fd.as_raw_fd(), 0);
                    libc::pwrite(fd.as_raw_fd(), rec.as_ptr().cast(), rec.len(), 0);
                }
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            match self.release {
                Release::Clear => {
                    // Emptied, not removed: the last close of an unlinked
                    // file costs about half a millisecond, and the few
                    // files of the window are reused.
                    // SAFETY: our own fd.
                    unsafe { libc::ftruncate(fd.as_raw_fd(), 0) };
                }
                Release::Linger => {
                    let keep = b"0 0\n";
                    // SAFETY: our own fd; keep is valid for its length.
                    unsafe {
                        libc::ftruncate(fd.as_raw_fd(), 0);
                        libc::pwrite(fd.as_raw_fd(), keep.as_ptr().cast(), keep.len(), 0);
                    }
                }
            }
            // Closing releases the flock.
            drop(fd);
        }
    }
}

fn errno() -> Errno {
    Errno::last()
}

/// Open (creating) a root-owned directory that nobody else may write,
/// without following symlinks.
fn open_private_dir(parent: libc::c_int, name: &str, mode: u32) -> Result<OwnedFd, String> {
    let c = CString::new(name).map_err(|_| "NUL in path".to_string())?;
    let open = || {
        // SAFETY: c is a valid C string; parent is a directory fd or
        // AT_FDCWD; O_NOFOLLOW refuses a symlink planted in its place.
        unsafe {
            libc::openat(
                parent,
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        }
    };
    let mut fd = open();
    if fd < 0 && errno().0 == libc::ENOENT {
        // SAFETY: as above.
        let r = unsafe { libc::mkdirat(parent, c.as_ptr(), mode) };
        if r < 0 && errno().0 != libc::EEXIST {
            return Err(format!(
                "mkdir {name}: {}",
                std::io::Error::from_raw_os_error(errno().0)
            ));
        }
        fd = open();
    }
    if fd < 0 {
        return Err(format!(
            "open {name}: {}",
            std::io::Error::from_raw_os_error(errno().0)
        ));
    }
    // SAFETY: fd is a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    check_private(&fd, name)?;
    Ok(fd)
}

/// A directory owned by root that nobody else may write.
fn check_private(fd: &OwnedFd, name: &str) -> Result<(), String> {
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, st is a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
        return Err(format!(
            "stat {name}: {}",
            std::io::Error::from_raw_os_error(errno().0)
        ));
    }
    if st.st_uid != 0 || st.st_mode & 0o022 != 0 {
        return Err(format!(
            "{name} is owned by uid {} with mode {:o}: expected root's, writable by root only",
            st.st_uid,
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

fn open_id_dir() -> Result<OwnedFd, String> {
    // The common case in one call: the directory exists.
    if let Ok(fd) = crate::sys::openat2(
        libc::AT_FDCWD,
        c"/run/cordon/ids",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        crate::sys::RESOLVE_NO_SYMLINKS,
    ) {
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        check_private(&fd, ID_DIR)?;
        return Ok(fd);
    }
    let run = open_private_dir(libc::AT_FDCWD, "/run/cordon", 0o755)?;
    open_private_dir(run.as_raw_fd(), "ids", 0o700).map_err(|e| format!("/run/cordon/{e}"))
}

/// The start time (clock ticks after boot) of `pid`, if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    // Fields after the command: state is field 3, starttime field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// `pid start_time` of this process: what a record holds.
fn own_record() -> String {
    let pid = std::process::id();
    format!("{pid} {}\n", start_time(pid).unwrap_or(0))
}

/// Whether any host process runs with `id` as one of its uids or gids.
fn id_in_use(id: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        // Cannot tell: treat it as in use.
        return true;
    };
    for e in dir.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().filter(|s| s.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        for line in status.lines() {
            let ids = line.strip_prefix("Uid:").or_else(|| line.strip_prefix("Gid:"));
            if let Some(ids) = ids {
                if ids.split_whitespace().any(|v| v.parse() == Ok(id)) {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether the record's owner is gone and nothing runs as `id`.
fn record_is_stale(record: &str, id: u32) -> bool {
    let mut it = record.split_whitespace();
    let pid = it.next().and_then(|p| p.parse::<u32>().ok());
    let start = it.next().and_then(|s| s.parse::<u64>().ok());
    if let (Some(pid), Some(start)) = (pid, start) {
        if pid != 0 && start_time(pid) == Some(start) {
            return false;
        }
    }
    !id_in_use(id)
}

/// Try to take `id`; Ok(None) when it is taken.
fn try_claim(dir: &OwnedFd, id: u32, record: &str) -> Result<Option<OwnedFd>, String> {
    let name = CString::new(id.to_string()).expect("digits");
    // SAFETY: name is a valid C string, dir a directory fd.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(format!(
            "{ID_DIR}/{id}: {}",
            std::io::Error::from_raw_os_error(errno().0)
        ));
    }
    // SAFETY: fd is a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: flock on our fd.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        let e = errno();
        if e.0 == libc::EWOULDBLOCK {
            return Ok(None);
        }
        return Err(format!(
            "{ID_DIR}/{id}: flock: {}",
            std::io::Error::from_raw_os_error(e.0)
        ));
    }
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, st a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 || st.st_nlink == 0 {
        // Its holder released (and removed) it between our open and our
        // lock: the name may already be someone else's new file.
        return Ok(None);
    }
    let mut buf = [0u8; 64];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    let old = if n > 0 {
        String::from_utf8_lossy(&buf[..n as usize]).into_owned()
    } else {
        String::new()
    };
    if !old.trim().is_empty() && !record_is_stale(&old, id) {
        return Ok(None);
    }
    // SAFETY: our fd; record is valid for its length.
    let ok = unsafe {
        libc::ftruncate(fd.as_raw_fd(), 0) == 0
            && libc::pwrite(fd.as_raw_fd(), record.as_ptr().cast(), record.len(), 0) == record.len() as isize
    };
    if !ok {
        return Err(format!(
            "{ID_DIR}/{id}: write: {}",
            std::io::Error::from_raw_os_error(errno().0)
        ));
    }
    Ok(Some(fd))
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: b is valid for 4 bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 4, libc::GRND_NONBLOCK) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        std::process::id().wrapping_mul(2_654_435_761)
    }
}

/// Take a free id of `range` for this process. The lease keeps the
/// record locked until it is dropped.
pub fn allocate(range: IdRange) -> Result<Lease, String> {
    let dir = open_id_dir()?;
    // A supervisor's record needs no start time: its lock says it lives,
    // and once it is gone the record only has to be non-empty, so that the
    // next allocator looks for processes left running as the id.
    let record = format!("{} 0\n", std::process::id());
    // A random start among the first WINDOW ids: concurrent cordons rarely
    // try the same id first, and the records stay few (each id of the
    // range used once leaves a file behind).
    let offset = random_u32() % range.count.min(WINDOW);
    for i in 0..range.count {
        let id = range.start + (offset + i) % range.count;
        if let Some(fd) = try_claim(&dir, id, &record)? {
            return Ok(Lease {
                id,
                fd: Some(fd),
                release: Release::Clear,
            });
        }
    }
    Err(format!(
        "all {} host ids of {}..={} are in use by other sandboxes; widen the range with {RANGE_ENV}=START-END",
        range.count,
        range.start,
        range.start + (range.count - 1)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_refuse_special_ids() {
        assert_eq!(
            IdRange::parse("100000-100009"),
            Ok(IdRange {
                start: 100000,
                count: 10
            })
        );
        assert_eq!(
            IdRange::parse("100000:10"),
            Ok(IdRange {
                start: 100000,
                count: 10
            })
        );
        assert_eq!(IdRange::parse("7:1"), Ok(IdRange { start: 7, count: 1 }));
        for bad in [
            "",
            "5",
            "x-9",
            "9-5",
            "10:0",
            "0:5",
            "65000-70000",
            "4294967290-4294967295",
            "1:4294967295",
        ] {
            assert!(IdRange::parse(bad).is_err(), "{bad:?} accepted");
        }
        const { assert!(DEFAULT_RANGE.start > 65535) };
        assert_eq!(IdRange::parse("1879048192:65536"), Ok(DEFAULT_RANGE));
    }

    #[test]
    fn records_of_live_processes_hold_their_id() {
        let me = own_record();
        // An id no process uses: only the record's liveness matters.
        let id = 0x7fff_fff0;
        assert!(!record_is_stale(&me, id));
        assert!(record_is_stale("0 0\n", id));
        assert!(
            record_is_stale(&format!("{} 1\n", std::process::id()), id),
            "start time must match"
        );
        // pid 1 exists and runs as uid 0: a dead owner's record for id 0
        // stays taken while something runs as that id.
        assert!(!record_is_stale("999999999 5\n", 0));
    }
}
