//! The architectures cordon compiles seccomp filters for, with their
//! system call tables (from the `syscalls` crate, generated from the
//! kernel's tables, current to Linux 6.18).
//!
//! A filter is tied to one architecture: it checks the audit architecture
//! of every call first (any other kills the process), and its numbers are
//! that architecture's. On x86_64 the x32 ABI shares the audit architecture
//! and is told apart by [`X32_SYSCALL_BIT`] in the number; aarch64 has no
//! such second ABI.

/// The Linux release the `syscalls` crate's tables are current to (its
/// generator's kernel; the crate does not export it: update with the crate).
pub const SYSCALL_TABLE_LINUX: &str = "6.18";

/// AUDIT_ARCH_X86_64 (`EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`,
/// linux/audit.h; libc does not define the AUDIT_ARCH_* constants).
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// AUDIT_ARCH_AARCH64 (`EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`,
/// linux/audit.h).
pub const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// The first x32 syscall number (`__X32_SYSCALL_BIT`, asm/unistd.h on x86_64).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// An architecture cordon has a system call table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    /// x86_64 (amd64); x32 calls are told apart by their number.
    X86_64,
    /// aarch64 (arm64).
    Aarch64,
}

/// One architecture's table, both ways, without a pointer in its statics:
/// each name is a slice of one string. A table of `&str`s would be
/// rewritten by the start-up relocation of the static-pie binary in every
/// cordon process (the four were 35 KB: nine pages copied, and kept, per
/// process); these sit in the read-only data as they are in the file.
#[derive(Clone, Copy)]
struct Table {
    /// Every name, one after another.
    names: &'static str,
    /// Sorted by number.
    by_nr: &'static [Entry],
    /// Indices into `by_nr`, in the order of their names.
    by_name: &'static [u16],
}

/// A system call: its number and where its name is in [`Table::names`].
#[derive(Clone, Copy)]
struct Entry {
    nr: u32,
    at: u16,
    len: u16,
}

impl Table {
    fn name(&self, e: Entry) -> &'static str {
        let at = usize::from(e.at);
        // The bounds of one name, cut from a `str` at its bounds (and
        // checked ASCII when the table was built): never None.
        self.names.get(at..at + usize::from(e.len)).unwrap_or_default()
    }
}

/// Every syscall of one of the crate's `Sysno` enums, by number, as an
/// array of `$n` entries, at compile time. (The crate's `Sysno::iter`
/// stops before the last call, so walk the numbers.)
macro_rules! by_nr {
    ($sysno:path, $n:expr) => {{
        use $sysno as S;
        let mut out: [(u32, &'static str); $n] = [(0, ""); $n];
        let mut id = S::first().id();
        let mut i = 0;
        while id <= S::last().id() {
            if let Some(s) = S::new(id as usize) {
                out[i] = (s.id() as u32, s.name());
                i += 1;
            }
            id += 1;
        }
        assert!(i == $n, "the table has as many calls as Sysno::count()");
        out
    }};
}

/// `a < b`, bytewise (the order of `str`'s `Ord`), usable in a const.
const fn str_lt(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The table sorted by name (an insertion sort, run by the compiler).
const fn by_name<const N: usize>(t: &[(u32, &'static str); N]) -> [(&'static str, u32); N] {
    let mut out: [(&'static str, u32); N] = [("", 0); N];
    let mut i = 0;
    while i < N {
        let (nr, name) = t[i];
        let mut j = i;
        while j > 0 && str_lt(name, out[j - 1].0) {
            out[j] = out[j - 1];
            j -= 1;
        }
        out[j] = (name, nr);
        i += 1;
    }
    out
}

/// The length of all the names together.
const fn names_len<const N: usize>(t: &[(u32, &'static str); N]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < N {
        len += t[i].1.len();
        i += 1;
    }
    len
}

/// All the names, one after another (each checked to be ASCII).
const fn names<const N: usize, const L: usize>(t: &[(u32, &'static str); N]) -> [u8; L] {
    let mut out = [0u8; L];
    let (mut i, mut at) = (0, 0);
    while i < N {
        let b = t[i].1.as_bytes();
        let mut k = 0;
        while k < b.len() {
            assert!(b[k].is_ascii(), "a system call name is ASCII");
            out[at] = b[k];
            at += 1;
            k += 1;
        }
        i += 1;
    }
    assert!(at == L, "the names fill the string");
    out
}

/// The entries, in the table's order (by number), pointing into the
/// string [`names`] makes of the same table.
const fn entries<const N: usize>(t: &[(u32, &'static str); N]) -> [Entry; N] {
    let mut out = [Entry { nr: 0, at: 0, len: 0 }; N];
    let (mut i, mut at) = (0, 0);
    while i < N {
        let len = t[i].1.len();
        assert!(at + len <= u16::MAX as usize, "the names fit a u16 offset");
        out[i] = Entry {
            nr: t[i].0,
            at: at as u16,
            len: len as u16,
        };
        at += len;
        i += 1;
    }
    out
}

/// The indices of the table's entries in the order of their names (an
/// insertion sort, run by the compiler).
const fn name_order<const N: usize>(t: &[(u32, &'static str); N]) -> [u16; N] {
    assert!(N <= u16::MAX as usize, "the indices fit a u16");
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        let mut j = i;
        while j > 0 && str_lt(t[i].1, t[out[j - 1] as usize].1) {
            out[j] = out[j - 1];
            j -= 1;
        }
        out[j] = i as u16;
        i += 1;
    }
    out
}

/// A string of ASCII bytes (checked by [`names`]), in a const.
const fn ascii(b: &'static [u8]) -> &'static str {
    match std::str::from_utf8(b) {
        Ok(s) => s,
        Err(_) => panic!("the names are ASCII"),
    }
}

const X86_64_N: usize = syscalls::x86_64::Sysno::count();
/// Built by the compiler, used only by it: in `const`s, which leave no
/// table of pointers in the binary.
const X86_64: [(u32, &str); X86_64_N] = by_nr!(syscalls::x86_64::Sysno, X86_64_N);
const X86_64_BY_NAME: [(&str, u32); X86_64_N] = by_name(&X86_64);
const X86_64_NAMES: [u8; names_len(&X86_64)] = names(&X86_64);
/// The names as a `str`, checked by the compiler (a `const`: used at run
/// time, it is the string's address, not a call).
const X86_64_STR: &str = ascii(&X86_64_NAMES);
static X86_64_ENTRIES: [Entry; X86_64_N] = entries(&X86_64);
static X86_64_ORDER: [u16; X86_64_N] = name_order(&X86_64);

const AARCH64_N: usize = syscalls::aarch64::Sysno::count();
const AARCH64: [(u32, &str); AARCH64_N] = by_nr!(syscalls::aarch64::Sysno, AARCH64_N);
const AARCH64_BY_NAME: [(&str, u32); AARCH64_N] = by_name(&AARCH64);
const AARCH64_NAMES: [u8; names_len(&AARCH64)] = names(&AARCH64);
const AARCH64_STR: &str = ascii(&AARCH64_NAMES);
static AARCH64_ENTRIES: [Entry; AARCH64_N] = entries(&AARCH64);
static AARCH64_ORDER: [u16; AARCH64_N] = name_order(&AARCH64);

impl Arch {
    /// Every supported architecture.
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture cordon is built for, if it has a table.
    pub const fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    /// The architecture cordon is built for, or an error saying that it
    /// has no system call table (so no filter can be built).
    pub fn native_or_err() -> Result<Arch, String> {
        Arch::native().ok_or_else(|| no_table(std::env::consts::ARCH))
    }

    /// The name used on the command line and in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Parse `x86_64` (or `amd64`) and `aarch64` (or `arm64`).
    pub fn parse(s: &str) -> Result<Arch, String> {
        match s {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            _ => Err(format!(
                "unknown architecture \"{s}\": expected x86_64 or aarch64"
            )),
        }
    }

    /// The AUDIT_ARCH_* value the kernel reports for its calls.
    pub const fn audit_arch(self) -> u32 {
        match self {
            Arch::X86_64 => AUDIT_ARCH_X86_64,
            Arch::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The bit that marks a call of a second ABI sharing the audit
    /// architecture (x32 on x86_64), if there is one.
    pub const fn x32_bit(self) -> Option<u32> {
        match self {
            Arch::X86_64 => Some(X32_SYSCALL_BIT),
            Arch::Aarch64 => None,
        }
    }

    fn table(self) -> Table {
        match self {
            Arch::X86_64 => Table {
                names: X86_64_STR,
                by_nr: &X86_64_ENTRIES,
                by_name: &X86_64_ORDER,
            },
            Arch::Aarch64 => Table {
                names: AARCH64_STR,
                by_nr: &AARCH64_ENTRIES,
                by_name: &AARCH64_ORDER,
            },
        }
    }

    /// [`Arch::syscall_nr`] for a const (the groups are expanded by the
    /// compiler: see `groups::BITS`).
    pub(crate) const fn syscall_nr_const(self, name: &str) -> Option<u32> {
        let t: &[(&str, u32)] = match self {
            Arch::X86_64 => &X86_64_BY_NAME,
            Arch::Aarch64 => &AARCH64_BY_NAME,
        };
        let (mut lo, mut hi) = (0, t.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if str_lt(t[mid].0, name) {
                lo = mid + 1;
            } else if str_lt(name, t[mid].0) {
                hi = mid;
            } else {
                return Some(t[mid].1);
            }
        }
        None
    }

    /// `(number, name)` of every system call, sorted by number.
    pub fn syscalls(self) -> impl ExactSizeIterator<Item = (u32, &'static str)> {
        let t = self.table();
        t.by_nr.iter().map(move |&e| (e.nr, t.name(e)))
    }

    /// Syscall number for a name, e.g. `"openat"` -> 257 on x86_64, 56 on
    /// aarch64.
    pub fn syscall_nr(self, name: &str) -> Option<u32> {
        let t = self.table();
        let entry = |i: u16| t.by_nr[usize::from(i)];
        t.by_name
            .binary_search_by(|&i| t.name(entry(i)).cmp(name))
            .ok()
            .map(|k| entry(t.by_name[k]).nr)
    }

    /// Name of a syscall number.
    pub fn syscall_name(self, nr: u32) -> Option<&'static str> {
        let t = self.table();
        t.by_nr
            .binary_search_by_key(&nr, |e| e.nr)
            .ok()
            .map(|i| t.name(t.by_nr[i]))
    }

    /// The highest syscall number in the table.
    pub fn known_max(self) -> u32 {
        self.table().by_nr.last().map_or(0, |e| e.nr)
    }
}

/// The error for a build on an architecture without a syscall table.
fn no_table(target_arch: &str) -> String {
    format!(
        "seccomp is not supported on {target_arch}: cordon has system call tables only for x86_64 and aarch64, and a filter with the wrong numbers would refuse or kill every payload"
    )
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_both_ways_and_unique() {
        for a in Arch::ALL {
            let t = a.table();
            assert!(t.by_nr.len() > 300, "{a}: {}", t.by_nr.len());
            assert!(t.by_nr.windows(2).all(|w| w[0].nr < w[1].nr), "{a}");
            let names: Vec<&str> = t
                .by_name
                .iter()
                .map(|&i| t.name(t.by_nr[usize::from(i)]))
                .collect();
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{a}");
            assert_eq!(names.len(), t.by_nr.len(), "{a}");
            for (nr, name) in a.syscalls() {
                assert!(
                    !name.is_empty()
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                    "{a} {nr}: {name:?}"
                );
                assert_eq!(a.syscall_nr(name), Some(nr), "{a} {name}");
                assert_eq!(a.syscall_name(nr), Some(name), "{a} {nr}");
                assert_eq!(a.syscall_nr_const(name), Some(nr), "{a} {name}");
            }
        }
    }

    #[test]
    fn the_tables_are_the_crates() {
        for (nr, name) in Arch::X86_64.syscalls() {
            let s = syscalls::x86_64::Sysno::new(nr as usize).expect("a number of the crate's table");
            assert_eq!(s.name(), name);
        }
        for (nr, name) in Arch::Aarch64.syscalls() {
            let s = syscalls::aarch64::Sysno::new(nr as usize).expect("a number of the crate's table");
            assert_eq!(s.name(), name);
        }
        assert_eq!(Arch::X86_64.syscalls().len(), syscalls::x86_64::Sysno::count());
        assert_eq!(Arch::Aarch64.syscalls().len(), syscalls::aarch64::Sysno::count());
    }

    #[test]
    fn known_numbers() {
        let x = Arch::X86_64;
        assert_eq!(x.syscall_nr("read"), Some(0));
        assert_eq!(x.syscall_nr("openat"), Some(257));
        assert_eq!(x.syscall_nr("open"), Some(2));
        assert_eq!(x.syscall_nr("uretprobe"), Some(335));
        assert_eq!(x.syscall_nr("setxattrat"), Some(463));
        assert_eq!(x.syscall_nr("getxattrat"), Some(464));
        assert_eq!(x.syscall_nr("listxattrat"), Some(465));
        assert_eq!(x.syscall_nr("removexattrat"), Some(466));
        assert_eq!(x.syscall_nr("open_tree_attr"), Some(467));
        // The last call of the table is there (the crate's iterator skips it).
        assert_eq!(x.syscall_name(469), Some("file_setattr"));
        assert_eq!(x.known_max(), 469);
        let a = Arch::Aarch64;
        assert_eq!(a.syscall_nr("io_setup"), Some(0));
        assert_eq!(a.syscall_nr("openat"), Some(56));
        assert_eq!(a.syscall_nr("execve"), Some(221));
        assert_eq!(a.syscall_nr("exit_group"), Some(94));
        assert_eq!(a.syscall_nr("write"), Some(64));
        assert_eq!(a.syscall_nr("clone3"), Some(435));
        assert_eq!(a.syscall_nr("setxattrat"), Some(463));
        assert_eq!(a.syscall_nr("open"), None, "aarch64 has only openat");
        assert_eq!(a.syscall_nr("fork"), None);
        assert_eq!(a.syscall_nr("uretprobe"), None);
        assert_eq!(a.syscall_name(469), Some("file_setattr"));
        assert_eq!(a.syscall_name(u32::MAX), None);
    }

    #[test]
    fn arch_constants_and_names() {
        assert_eq!(Arch::parse("x86_64"), Ok(Arch::X86_64));
        assert_eq!(Arch::parse("arm64"), Ok(Arch::Aarch64));
        assert!(Arch::parse("riscv64").unwrap_err().contains("x86_64 or aarch64"));
        for a in Arch::ALL {
            assert_eq!(Arch::parse(a.name()), Ok(a));
        }
        assert_eq!(Arch::X86_64.x32_bit(), Some(0x4000_0000));
        assert_eq!(Arch::Aarch64.x32_bit(), None);
        assert_ne!(Arch::X86_64.audit_arch(), Arch::Aarch64.audit_arch());
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Arch::native(), Some(Arch::X86_64));
        assert_eq!(Arch::native_or_err().ok(), Arch::native());
        let e = no_table("riscv64");
        assert!(e.contains("riscv64") && e.contains("x86_64 and aarch64"), "{e}");
        #[cfg(target_arch = "aarch64")]
        assert_eq!(Arch::native(), Some(Arch::Aarch64));
    }
}
