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
//! * its record is not blank (the owner is gone, cleanly or not) and some
//!   host process still runs with that uid: what an exec'd payload left
//!   behind.
//!
//! The kernel tells the last case (getpriority with PRIO_USER: whether any
//! task has the id as its real uid), so a record left by a supervisor that
//! was killed outright costs the next allocator one system call; `cordon
//! gc` blanks those no process runs as any more ([`clear_left_records`]).
//!
//! A supervisor blanks the record (overwrites it with spaces) when nothing
//! of the sandbox runs any more: its init was reaped, or reported that it
//! killed and reaped every other process of the namespace and now only
//! exits (the CLI does not wait for that exit, a few hundred microseconds
//! of namespace teardown in the kernel that runs no code of the payload's;
//! init's zombie is then reaped by whoever adopts it, which on some hosts
//! takes a second, and counts only against the id's process limit).
//! Records are never removed by cordon; one an administrator removed while
//! it was held is seen as taken by whoever had it open (its link count is
//! 0). A dropped [`crate::Prepared`] leaves `0 0`: no owner, but its
//! children may still run as the id, which the next allocator checks. `cordon exec` replaces itself with the
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
    /// Blank it: the sandbox's pid namespace is gone (supervised runs).
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
                write_record(fd, &own_record());
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            match self.release {
                // Blanked, not removed: the last close of an unlinked file
                // costs about half a millisecond, and the few files of the
                // window are reused.
                Release::Clear => write_record(&fd, ""),
                Release::Linger => write_record(&fd, "0 0"),
            };
            // Closing releases the flock.
            drop(fd);
        }
    }
}

fn errno() -> Errno {
    Errno::last()
}

/// Every record is written at this width, padded with spaces; a blank one
/// (only spaces and its newline) is free. A record is overwritten in place,
/// never truncated: truncating it freed and the next write allocated the
/// file's page, 20-50 microseconds at each end of every launch.
const RECORD_LEN: usize = 32;

/// Before writing a record that held `old` (what [`lock_and_read`] read):
/// a longer file is not one of ours, and is cut to what the write covers,
/// so that nothing of it outlives that write.
fn fit(fd: &OwnedFd, old: &str) {
    if old.len() > RECORD_LEN {
        // SAFETY: our fd, locked by us.
        unsafe { libc::ftruncate(fd.as_raw_fd(), RECORD_LEN as libc::off_t) };
    }
}

/// Write `text` (at most `RECORD_LEN - 1` bytes: "PID START" is at most
/// 28) as the record, padded; whether it was all written.
fn write_record(fd: &OwnedFd, text: &str) -> bool {
    let mut buf = [b' '; RECORD_LEN];
    buf[RECORD_LEN - 1] = b'\n';
    let text = text.trim_end().as_bytes();
    let n = text.len().min(RECORD_LEN - 1);
    buf[..n].copy_from_slice(&text[..n]);
    // SAFETY: our fd; buf is valid for its length.
    unsafe { libc::pwrite(fd.as_raw_fd(), buf.as_ptr().cast(), RECORD_LEN, 0) == RECORD_LEN as isize }
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

/// The record directory if it exists (one call, no symlink followed), and
/// whether it is root's and private.
fn existing_id_dir() -> Option<Result<OwnedFd, String>> {
    let fd = crate::sys::openat2(
        libc::AT_FDCWD,
        c"/run/cordon/ids",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        crate::sys::RESOLVE_NO_SYMLINKS,
    )
    .ok()?;
    // SAFETY: a new fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Some(check_private(&fd, ID_DIR).map(|()| fd))
}

fn open_id_dir() -> Result<OwnedFd, String> {
    // The common case: the directory exists.
    if let Some(dir) = existing_id_dir() {
        return dir;
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

/// Whether a host process (any thread, a zombie too) has `id` as its real
/// uid. The kernel walks its task list for it: getpriority(PRIO_USER, id)
/// fails with ESRCH when there is none. Unlike a pass over /proc, nothing
/// can hide from that walk, not a name that is not UTF-8 nor a process that
/// keeps forking and exiting (each new task is linked after the walk's
/// position). Only the real uid is asked: a sandbox's processes run with
/// the id as every uid and gid, and cannot change them. Any answer but
/// ESRCH (an error included) counts as in use.
fn id_in_use(id: u32) -> bool {
    if id == 0 {
        // getpriority's "the caller's uid"; and root is always in use.
        return true;
    }
    // SAFETY: getpriority takes integers. The raw call: it returns 20 -
    // nice (1 to 40) for a user with processes, never -1 but on an error.
    let r = unsafe {
        libc::syscall(
            libc::SYS_getpriority,
            libc::PRIO_USER as libc::c_long,
            libc::c_long::from(id),
        )
    };
    !(r == -1 && errno().0 == libc::ESRCH)
}

/// Whether the process a record names (pid and start time) is alive.
fn owner_alive(record: &str) -> bool {
    let mut it = record.split_whitespace();
    let pid = it.next().and_then(|p| p.parse::<u32>().ok());
    let start = it.next().and_then(|s| s.parse::<u64>().ok());
    matches!((pid, start), (Some(pid), Some(start)) if pid != 0 && start_time(pid) == Some(start))
}

/// Try to take `id`; Ok(None) when it is taken. A record its owner left
/// is taken when no process runs as its id, checked while we hold its lock:
/// nobody else can take the id meanwhile, so whatever runs as it was
/// already running when we locked it.
fn try_claim(dir: &OwnedFd, id: u32, record: &str) -> Result<Option<OwnedFd>, String> {
    let fd = open_record(dir, id, libc::O_CREAT)
        .map_err(|e| format!("{ID_DIR}/{id}: {}", std::io::Error::from_raw_os_error(e.0)))?;
    let old = match lock_and_read(&fd) {
        Locked::Held => return Ok(None),
        Locked::Failed(e) => {
            return Err(format!(
                "{ID_DIR}/{id}: flock: {}",
                std::io::Error::from_raw_os_error(e.0)
            ))
        }
        Locked::Ours(old) => old,
    };
    if !old.trim().is_empty() && (owner_alive(&old) || id_in_use(id)) {
        return Ok(None);
    }
    fit(&fd, &old);
    if !write_record(&fd, record) {
        return Err(format!(
            "{ID_DIR}/{id}: write: {}",
            std::io::Error::from_raw_os_error(errno().0)
        ));
    }
    Ok(Some(fd))
}

/// Open `id`'s record in `dir` for reading and writing, never through a
/// symlink; `flags` adds to that (`O_CREAT`: made, mode 0600, if missing).
fn open_record(dir: &OwnedFd, id: u32, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let name = CString::new(id.to_string()).expect("digits");
    // SAFETY: name is a valid C string, dir a directory fd.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags,
            0o600,
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: fd is a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A record file, after [`lock_and_read`].
enum Locked {
    /// Someone else holds its lock, or it was removed meanwhile.
    Held,
    /// flock failed for another reason.
    Failed(Errno),
    /// Locked by us (until the fd is closed): what it held.
    Ours(String),
}

/// Take the record's lock without waiting, and read it.
fn lock_and_read(fd: &OwnedFd) -> Locked {
    // SAFETY: flock on our fd.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        let e = errno();
        return if e.0 == libc::EWOULDBLOCK {
            Locked::Held
        } else {
            Locked::Failed(e)
        };
    }
    // SAFETY: a zeroed stat is a valid out-buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is valid, st a valid out-pointer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 || st.st_nlink == 0 {
        // Its holder released (and removed) it between our open and our
        // lock: the name may already be someone else's new file.
        return Locked::Held;
    }
    let mut buf = [0u8; 64];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::pread(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    Locked::Ours(if n > 0 {
        String::from_utf8_lossy(&buf[..n as usize]).into_owned()
    } else {
        String::new()
    })
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
    // and once it is gone the record only has to be non-blank, so that the
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

/// `cordon gc`: blank the records whose owner is gone (a supervisor killed
/// outright, a `cordon exec` payload that ended) when no host process runs
/// as their id any more. Returns a line per record blanked.
/// Nothing when the directory does not exist or is not root's.
pub fn clear_left_records() -> Vec<String> {
    let Some(Ok(dir)) = existing_id_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return Vec::new();
    };
    // Each record is checked and blanked under its lock (see try_claim).
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Some(id) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // Only records that exist (no O_CREAT).
        let Ok(fd) = open_record(&dir, id, libc::O_NONBLOCK) else {
            continue;
        };
        let Locked::Ours(old) = lock_and_read(&fd) else {
            continue;
        };
        if old.trim().is_empty() || owner_alive(&old) || id_in_use(id) {
            continue;
        }
        fit(&fd, &old);
        if write_record(&fd, "") {
            out.push(format!(
                "host id {id}: cleared the record its owner left ({})",
                old.trim()
            ));
        }
    }
    out
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
    fn records_are_overwritten_in_place_at_one_width() {
        let path = std::env::temp_dir().join(format!("cordon-record-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let fd = OwnedFd::from(file);
        let read = || std::fs::read_to_string(&path).unwrap();
        // A foreign, longer file is cut before the first write.
        let long = "x".repeat(100);
        std::fs::write(&path, &long).unwrap();
        fit(&fd, &long);
        assert!(write_record(&fd, &own_record()));
        let rec = read();
        assert_eq!(rec.len(), RECORD_LEN, "{rec:?}");
        assert!(rec.ends_with('\n'));
        assert!(owner_alive(&rec), "padding hides the owner: {rec:?}");
        // Blanking keeps the width, and a blank record is free.
        assert!(write_record(&fd, ""));
        let rec = read();
        assert_eq!(rec.len(), RECORD_LEN);
        assert!(rec.trim().is_empty(), "{rec:?}");
        // The longest record fits: a 7-digit pid and a 20-digit start time.
        assert!(write_record(&fd, "4194304 18446744073709551615"));
        assert_eq!(read().trim_end(), "4194304 18446744073709551615");
        // A short record is fitted over a longer one without a remnant.
        assert!(write_record(&fd, "0 0"));
        assert_eq!(read().trim_end(), "0 0");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn records_of_live_processes_hold_their_id() {
        let me = own_record();
        assert!(owner_alive(&me));
        assert!(!owner_alive("0 0\n"));
        assert!(!owner_alive(""));
        assert!(
            !owner_alive(&format!("{} 1\n", std::process::id())),
            "start time must match"
        );
        // Root always runs something; an id of nobody's does not.
        assert!(id_in_use(0));
        assert!(!id_in_use(0x7fff_fff0));
        // SAFETY: getuid cannot fail.
        assert!(id_in_use(unsafe { libc::getuid() }));
    }
}
