//! Named sets of system calls, in the spirit of systemd's `SystemCallFilter=`
//! sets, so that a policy can say `@file-read` instead of listing thirty
//! calls.
//!
//! The groups in [`DEFAULT_ELIGIBLE`] are meant to be combined: together
//! they let ordinary programs (shells, coreutils, python3, perl, the C
//! toolchain, git, make) run. Some of their calls are only safe with the
//! argument rules cordon's policies add (`clone` without namespace flags,
//! `socket` limited to some families, `ioctl` without `TIOCSTI`/`TIOCLINUX`,
//! `personality` limited to harmless personas).
//!
//! The other groups reach into other processes, the kernel or the machine
//! (`@debug`, `@mount`, `@namespace`, `@module`, `@privileged`, ...) or are
//! obsolete; none is part of a default, and a policy that allows one should
//! say why.

use std::sync::OnceLock;

use super::arch::Arch;
use super::names;

/// A named set of system calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group's name, with its `@`, e.g. `"@file-read"`.
    pub name: &'static str,
    /// One sentence saying what the group is for.
    pub description: &'static str,
    /// The system calls it holds, by name; a name that does not exist on
    /// an architecture (`open`, `fork`, ... on aarch64) is skipped there.
    pub syscalls: &'static [&'static str],
    /// Other groups (with their `@`) whose calls it also holds.
    pub includes: &'static [&'static str],
}

/// The groups that can be part of a default policy: together they let
/// ordinary programs run, and none holds a call that reaches outside the
/// sandbox (given cordon's argument rules).
pub const DEFAULT_ELIGIBLE: &[&str] = &[
    "@default",
    "@file-read",
    "@file-write",
    "@process",
    "@signal",
    "@network",
    "@ipc",
    "@time",
    "@memory",
    "@io-event",
    "@system-info",
    "@credentials",
    "@resources",
    "@terminal",
    "@aio",
];

/// Every group, in a stable order: the default-eligible ones first, then the
/// dangerous or obsolete ones.
pub const GROUPS: &[Group] = &[
    Group {
        name: "@default",
        description: "What any dynamically linked program needs to start, allocate memory, report an error and exit.",
        syscalls: &[
            "access",
            "arch_prctl",
            "brk",
            "clock_getres",
            "clock_gettime",
            "clock_nanosleep",
            "close",
            "dup",
            "dup2",
            "dup3",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "faccessat",
            "faccessat2",
            "fcntl",
            "fstat",
            "futex",
            "get_robust_list",
            "getcwd",
            "getegid",
            "geteuid",
            "getgid",
            "getpid",
            "getppid",
            "getrandom",
            "getrlimit",
            "gettid",
            "gettimeofday",
            "getuid",
            "lseek",
            "lstat",
            "madvise",
            "membarrier",
            "mmap",
            "mprotect",
            "mremap",
            "munmap",
            "nanosleep",
            "newfstatat",
            "open",
            "openat",
            "pread64",
            "prlimit64",
            "read",
            "readlink",
            "readlinkat",
            "restart_syscall",
            "rseq",
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigreturn",
            "sched_getaffinity",
            "sched_yield",
            "set_robust_list",
            "set_tid_address",
            "sigaltstack",
            "stat",
            "statx",
            "time",
            "uname",
            "uretprobe",
            "write",
            "writev",
        ],
        includes: &[],
    },
    Group {
        name: "@file-read",
        description: "Opening, reading and inspecting files and directories, and watching them with inotify.",
        syscalls: &[
            "access",
            "chdir",
            "close",
            "close_range",
            "copy_file_range",
            "faccessat",
            "faccessat2",
            "fadvise64",
            "fchdir",
            "fgetxattr",
            "flistxattr",
            "fstat",
            "fstatfs",
            "getcwd",
            "getdents",
            "getdents64",
            "getxattr",
            "getxattrat",
            "inotify_add_watch",
            "inotify_init",
            "inotify_init1",
            "inotify_rm_watch",
            "lgetxattr",
            "listxattr",
            "listxattrat",
            "llistxattr",
            "lseek",
            "lstat",
            "mmap",
            "newfstatat",
            "open",
            "openat",
            "openat2",
            "pread64",
            "preadv",
            "preadv2",
            "read",
            "readahead",
            "readlink",
            "readlinkat",
            "readv",
            "sendfile",
            "splice",
            "stat",
            "statfs",
            "statx",
            "tee",
        ],
        includes: &[],
    },
    Group {
        name: "@file-write",
        description: "Writing files and changing the file system tree: creating, renaming, linking, removing, truncating, syncing, and changing modes, owners, times and extended attributes.",
        syscalls: &[
            "chmod",
            "chown",
            "creat",
            "fallocate",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "fchown",
            "fchownat",
            "fdatasync",
            "flock",
            "fremovexattr",
            "fsetxattr",
            "fsync",
            "ftruncate",
            "futimesat",
            "lchown",
            "link",
            "linkat",
            "lremovexattr",
            "lsetxattr",
            "mkdir",
            "mkdirat",
            "mknod",
            "mknodat",
            "pwrite64",
            "pwritev",
            "pwritev2",
            "removexattr",
            "removexattrat",
            "rename",
            "renameat",
            "renameat2",
            "rmdir",
            "setxattr",
            "setxattrat",
            "symlink",
            "symlinkat",
            "sync",
            "sync_file_range",
            "syncfs",
            "truncate",
            "umask",
            "unlink",
            "unlinkat",
            "utime",
            "utimensat",
            "utimes",
            "write",
            "writev",
        ],
        includes: &[],
    },
    Group {
        name: "@process",
        description: "Creating, running, waiting for and signalling processes, process groups and sessions, and scheduling them (clone needs cordon's rule refusing namespace flags; clone3 is not here).",
        syscalls: &[
            "capget",
            "clone",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "fork",
            "get_thread_area",
            "getcpu",
            "getpgid",
            "getpgrp",
            "getpriority",
            "getrusage",
            "getsid",
            "kill",
            "personality",
            "pidfd_open",
            "pidfd_send_signal",
            "prctl",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_getattr",
            "sched_getparam",
            "sched_getscheduler",
            "sched_rr_get_interval",
            "sched_setaffinity",
            "sched_setattr",
            "sched_setparam",
            "sched_setscheduler",
            "set_thread_area",
            "setpgid",
            "setpriority",
            "setsid",
            "tgkill",
            "times",
            "tkill",
            "vfork",
            "wait4",
            "waitid",
        ],
        includes: &[],
    },
    Group {
        name: "@signal",
        description: "Handling, blocking, waiting for and sending signals.",
        syscalls: &[
            "alarm",
            "kill",
            "pause",
            "rt_sigaction",
            "rt_sigpending",
            "rt_sigprocmask",
            "rt_sigqueueinfo",
            "rt_sigreturn",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_tgsigqueueinfo",
            "sigaltstack",
            "signalfd",
            "signalfd4",
            "tgkill",
            "tkill",
        ],
        includes: &[],
    },
    Group {
        name: "@network",
        description: "Sockets: creating, connecting, listening, sending and receiving (socket needs cordon's rules limiting the address families).",
        syscalls: &[
            "accept",
            "accept4",
            "bind",
            "connect",
            "getpeername",
            "getsockname",
            "getsockopt",
            "listen",
            "recvfrom",
            "recvmmsg",
            "recvmsg",
            "sendmmsg",
            "sendmsg",
            "sendto",
            "setsockopt",
            "shutdown",
            "socket",
            "socketpair",
        ],
        includes: &[],
    },
    Group {
        name: "@ipc",
        description: "Inter-process communication: pipes, eventfds, futexes, memfds, System V and POSIX message queues, semaphores and shared memory.",
        syscalls: &[
            "eventfd",
            "eventfd2",
            "futex",
            "futex_requeue",
            "futex_wait",
            "futex_waitv",
            "futex_wake",
            "memfd_create",
            "mq_getsetattr",
            "mq_notify",
            "mq_open",
            "mq_timedreceive",
            "mq_timedsend",
            "mq_unlink",
            "msgctl",
            "msgget",
            "msgrcv",
            "msgsnd",
            "pipe",
            "pipe2",
            "semctl",
            "semget",
            "semop",
            "semtimedop",
            "shmat",
            "shmctl",
            "shmdt",
            "shmget",
        ],
        includes: &[],
    },
    Group {
        name: "@time",
        description: "Reading clocks, sleeping, and timers (setting the system clock is in @clock).",
        syscalls: &[
            "alarm",
            "clock_getres",
            "clock_gettime",
            "clock_nanosleep",
            "getitimer",
            "gettimeofday",
            "nanosleep",
            "setitimer",
            "time",
            "timer_create",
            "timer_delete",
            "timer_getoverrun",
            "timer_gettime",
            "timer_settime",
            "timerfd_create",
            "timerfd_gettime",
            "timerfd_settime",
        ],
        includes: &[],
    },
    Group {
        name: "@memory",
        description: "Managing the process's own memory: mapping, protecting, locking, advising, memory policy and protection keys.",
        syscalls: &[
            "brk",
            "get_mempolicy",
            "madvise",
            "map_shadow_stack",
            "mbind",
            "membarrier",
            "memfd_create",
            "mincore",
            "mlock",
            "mlock2",
            "mlockall",
            "mmap",
            "mprotect",
            "mremap",
            "mseal",
            "msync",
            "munlock",
            "munlockall",
            "munmap",
            "pkey_alloc",
            "pkey_free",
            "pkey_mprotect",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        includes: &[],
    },
    Group {
        name: "@io-event",
        description: "Waiting for file descriptors to become ready: poll, select and epoll, and eventfds.",
        syscalls: &[
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_wait",
            "eventfd",
            "eventfd2",
            "poll",
            "ppoll",
            "pselect6",
            "select",
        ],
        includes: &[],
    },
    Group {
        name: "@system-info",
        description: "Reading information about the system and the process's resource use (not the kernel log).",
        syscalls: &["getcpu", "getrusage", "sched_getaffinity", "sysinfo", "times", "uname"],
        includes: &[],
    },
    Group {
        name: "@credentials",
        description: "Reading and changing user and group ids and reading capabilities (inside cordon there are no capabilities to use and no_new_privs is set, so nothing can be gained).",
        syscalls: &[
            "capget",
            "getegid",
            "geteuid",
            "getgid",
            "getgroups",
            "getresgid",
            "getresuid",
            "getuid",
            "setfsgid",
            "setfsuid",
            "setgid",
            "setgroups",
            "setregid",
            "setresgid",
            "setresuid",
            "setreuid",
            "setuid",
        ],
        includes: &[],
    },
    Group {
        name: "@resources",
        description: "Reading and changing resource limits, priorities, I/O priorities and CPU affinity.",
        syscalls: &[
            "getpriority",
            "getrlimit",
            "ioprio_get",
            "ioprio_set",
            "prlimit64",
            "sched_setaffinity",
            "setpriority",
            "setrlimit",
        ],
        includes: &[],
    },
    Group {
        name: "@terminal",
        description: "Device and terminal control with ioctl; rules refusing TIOCSTI and TIOCLINUX (which inject input) need \"ioctl\" allowed by name as well, or they refuse every ioctl.",
        syscalls: &["ioctl"],
        includes: &[],
    },
    Group {
        name: "@aio",
        description: "Linux native asynchronous I/O (io_uring is in @io-uring).",
        syscalls: &["io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit"],
        includes: &[],
    },
    Group {
        name: "@debug",
        description: "Dangerous: inspecting and changing other processes (ptrace, their memory, their file descriptors) and kernel performance counters.",
        syscalls: &[
            "kcmp",
            "lookup_dcookie",
            "perf_event_open",
            "pidfd_getfd",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        includes: &[],
    },
    Group {
        name: "@mount",
        description: "Dangerous: mounting, unmounting and moving file systems and changing the root directory.",
        syscalls: &[
            "chroot",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "listmount",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "open_tree_attr",
            "pivot_root",
            "statmount",
            "umount2",
        ],
        includes: &[],
    },
    Group {
        name: "@namespace",
        description: "Dangerous: creating and entering namespaces, and clone3 (whose flags a seccomp rule cannot check).",
        syscalls: &["clone3", "setns", "unshare"],
        includes: &[],
    },
    Group {
        name: "@module",
        description: "Dangerous: loading and unloading kernel modules.",
        syscalls: &["delete_module", "finit_module", "init_module"],
        includes: &[],
    },
    Group {
        name: "@reboot",
        description: "Dangerous: rebooting the machine and loading a new kernel.",
        syscalls: &["kexec_file_load", "kexec_load", "reboot"],
        includes: &[],
    },
    Group {
        name: "@swap",
        description: "Dangerous: enabling and disabling swap.",
        syscalls: &["swapoff", "swapon"],
        includes: &[],
    },
    Group {
        name: "@keyring",
        description: "Dangerous: the kernel keyring, which is not namespaced and is a frequent source of kernel bugs.",
        syscalls: &["add_key", "keyctl", "request_key"],
        includes: &[],
    },
    Group {
        name: "@bpf",
        description: "Dangerous: loading eBPF programs and maps into the kernel.",
        syscalls: &["bpf"],
        includes: &[],
    },
    Group {
        name: "@io-uring",
        description: "Dangerous: io_uring, whose operations bypass seccomp and which is a frequent source of kernel bugs.",
        syscalls: &["io_uring_enter", "io_uring_register", "io_uring_setup"],
        includes: &[],
    },
    Group {
        name: "@clock",
        description: "Dangerous: setting and adjusting the system clock.",
        syscalls: &["adjtimex", "clock_adjtime", "clock_settime", "settimeofday"],
        includes: &[],
    },
    Group {
        name: "@privileged",
        description: "Dangerous: calls that act on the whole machine or need privilege (modules, reboot, swap, mounts, the clock, host names, I/O ports, quotas, the kernel log, file handles, userfaultfd, eBPF, perf, fanotify, device nodes).",
        syscalls: &[
            "acct",
            "adjtimex",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "fanotify_init",
            "fanotify_mark",
            "ioperm",
            "iopl",
            "lookup_dcookie",
            "mknod",
            "mknodat",
            "name_to_handle_at",
            "nfsservctl",
            "open_by_handle_at",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "settimeofday",
            "syslog",
            "userfaultfd",
            "vhangup",
        ],
        includes: &["@module", "@reboot", "@swap", "@mount"],
    },
    Group {
        name: "@sandbox",
        description: "Installing further sandboxing on oneself: Landlock rulesets and seccomp filters.",
        syscalls: &["landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "seccomp"],
        includes: &[],
    },
    Group {
        name: "@obsolete",
        description: "Obsolete or never implemented calls that no current program needs.",
        syscalls: &[
            "_sysctl",
            "afs_syscall",
            "create_module",
            "epoll_ctl_old",
            "epoll_wait_old",
            "get_kernel_syms",
            "getpmsg",
            "nfsservctl",
            "putpmsg",
            "query_module",
            "security",
            "sysfs",
            "tuxcall",
            "uselib",
            "ustat",
            "vserver",
        ],
        includes: &[],
    },
];

/// Look up a group by its name, with the `@` (`"@file-read"`).
pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

/// Expand `"@name"` to the sorted, deduplicated syscall numbers it holds
/// on the native architecture, following `includes`. An unknown group is an
/// error with a suggestion: `unknown group "@fle-read" (did you mean
/// "@file-read"?)`.
pub fn expand(name: &str) -> Result<Vec<u32>, String> {
    expand_for(Arch::native_or_err()?, name)
}

/// [`expand`] for the given architecture: names the architecture does not
/// have are skipped (aarch64 has `openat` but no `open`), names no
/// architecture has are an error.
pub fn expand_for(arch: Arch, name: &str) -> Result<Vec<u32>, String> {
    expanded(arch, name).map(<[u32]>::to_vec)
}

/// Words in a set of system call numbers: every number of both tables
/// is below `64 * WORDS` (checked when the sets are made).
const WORDS: usize = 8;

/// A set of system call numbers, one bit each.
type Bits = [u64; WORDS];

/// `a == b`, usable in a const.
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The index in [`GROUPS`] of the group `name` includes; a name that is
/// no group stops the build.
const fn included(name: &str) -> usize {
    let mut i = 0;
    while i < GROUPS.len() {
        if str_eq(GROUPS[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("a group includes a group that does not exist")
}

/// The numbers of group `root` on `arch`, following `includes`. Names the
/// architecture lacks are skipped; a name no architecture has stops the
/// build. Run by the compiler: a launch used to spend a fifth of its
/// start-up instructions expanding the default policy's groups.
const fn expand_const(arch: Arch, root: usize) -> Bits {
    let mut bits: Bits = [0; WORDS];
    let mut seen = [false; GROUPS.len()];
    let mut todo = [0usize; GROUPS.len()];
    let mut pending = 1;
    todo[0] = root;
    seen[root] = true;
    while pending > 0 {
        pending -= 1;
        let g = &GROUPS[todo[pending]];
        let mut i = 0;
        while i < g.syscalls.len() {
            let name = g.syscalls[i];
            if let Some(nr) = arch.syscall_nr_const(name) {
                assert!(
                    (nr as usize) < 64 * WORDS,
                    "a system call number does not fit in Bits"
                );
                bits[nr as usize / 64] |= 1 << (nr % 64);
            } else {
                let mut known = false;
                let mut a = 0;
                while a < Arch::ALL.len() {
                    known |= Arch::ALL[a].syscall_nr_const(name).is_some();
                    a += 1;
                }
                if !known {
                    panic!("{}", name);
                }
            }
            i += 1;
        }
        let mut j = 0;
        while j < g.includes.len() {
            let k = included(g.includes[j]);
            if !seen[k] {
                seen[k] = true;
                todo[pending] = k;
                pending += 1;
            }
            j += 1;
        }
    }
    bits
}

/// [`expand_const`] for every group.
const fn expand_all(arch: Arch) -> [Bits; GROUPS.len()] {
    let mut out = [[0; WORDS]; GROUPS.len()];
    let mut i = 0;
    while i < GROUPS.len() {
        out[i] = expand_const(arch, i);
        i += 1;
    }
    out
}

/// Every group's numbers, per architecture (in [`Arch::ALL`]'s order).
static BITS: [[Bits; GROUPS.len()]; 2] = [expand_all(Arch::X86_64), expand_all(Arch::Aarch64)];

/// The numbers in a set, ascending.
fn numbers(bits: &Bits) -> Box<[u32]> {
    let mut out = Vec::with_capacity(bits.iter().map(|w| w.count_ones() as usize).sum());
    for (w, &word) in bits.iter().enumerate() {
        let mut rest = word;
        while rest != 0 {
            out.push(w as u32 * 64 + rest.trailing_zeros());
            rest &= rest - 1;
        }
    }
    out.into_boxed_slice()
}

/// [`expand_for`] without the copy: each group's numbers are listed once
/// per architecture and process, from the sets the compiler made.
pub fn expanded(arch: Arch, name: &str) -> Result<&'static [u32], String> {
    /// Per group, its numbers as a list, made on first use.
    type Lists = OnceLock<Vec<OnceLock<Box<[u32]>>>>;
    static CACHE: [Lists; 2] = [OnceLock::new(), OnceLock::new()];
    let Some(i) = GROUPS.iter().position(|g| g.name == name) else {
        let hint = names::suggest(name, GROUPS.iter().map(|g| g.name))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        return Err(format!("unknown group \"{name}\"{hint}"));
    };
    let a = match arch {
        Arch::X86_64 => 0,
        Arch::Aarch64 => 1,
    };
    let per_group = CACHE[a].get_or_init(|| GROUPS.iter().map(|_| OnceLock::new()).collect());
    Ok(per_group[i].get_or_init(|| numbers(&BITS[a][i])))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Calls that reach outside the sandbox (or are a large kernel attack
    /// surface) and must never be in a default-eligible group.
    const DANGEROUS: &[&str] = &[
        "ptrace",
        "process_vm_readv",
        "process_vm_writev",
        "mount",
        "umount2",
        "pivot_root",
        "chroot",
        "unshare",
        "setns",
        "clone3",
        "bpf",
        "perf_event_open",
        "userfaultfd",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "keyctl",
        "add_key",
        "request_key",
        "kexec_load",
        "kexec_file_load",
        "init_module",
        "finit_module",
        "delete_module",
        "reboot",
        "swapon",
        "swapoff",
        "open_by_handle_at",
        "name_to_handle_at",
    ];

    fn nr(name: &str) -> u32 {
        names::syscall_nr(name).unwrap_or_else(|| panic!("no syscall {name}"))
    }

    /// The expansion the compiler makes equals one done at run time
    /// through `includes` with [`Arch::syscall_nr`].
    #[test]
    fn compiled_sets_equal_a_run_time_expansion() {
        for arch in Arch::ALL {
            for root in GROUPS {
                let mut want = BTreeSet::new();
                let mut seen = vec![root.name];
                let mut todo = vec![root];
                while let Some(g) = todo.pop() {
                    for s in g.syscalls {
                        match arch.syscall_nr(s) {
                            Some(nr) => {
                                want.insert(nr);
                            }
                            None => assert!(
                                Arch::ALL.iter().any(|a| a.syscall_nr(s).is_some()),
                                "{}: {s} is no system call",
                                g.name
                            ),
                        }
                    }
                    for inc in g.includes {
                        if !seen.contains(inc) {
                            seen.push(inc);
                            todo.push(group(inc).unwrap());
                        }
                    }
                }
                let got = expanded(arch, root.name).unwrap();
                assert_eq!(got, want.into_iter().collect::<Vec<_>>(), "{arch} {}", root.name);
                assert!(!got.is_empty(), "{arch} {}", root.name);
            }
            for (nr, name) in arch.syscalls() {
                assert_eq!(arch.syscall_nr_const(name), Some(nr), "{arch} {name}");
                assert!((nr as usize) < 64 * WORDS, "{arch} {name} {nr}");
            }
            assert_eq!(arch.syscall_nr_const("no_such_call"), None);
            assert_eq!(arch.syscall_nr_const(""), None);
        }
    }

    #[test]
    fn groups_expand_per_architecture_once() {
        for arch in Arch::ALL {
            for g in GROUPS {
                let first = expanded(arch, g.name).unwrap();
                assert!(first.windows(2).all(|w| w[0] < w[1]), "{arch} {}", g.name);
                let again = expanded(arch, g.name).unwrap();
                assert!(std::ptr::eq(first, again), "{arch} {}: expanded twice", g.name);
                assert_eq!(expand_for(arch, g.name).unwrap(), first);
                for s in g.syscalls {
                    if let Some(nr) = arch.syscall_nr(s) {
                        assert!(first.contains(&nr), "{arch} {}: {s}", g.name);
                    }
                }
            }
        }
        let a = Arch::Aarch64;
        let read = expanded(a, "@file-read").unwrap();
        assert!(read.contains(&a.syscall_nr("openat").unwrap()));
        assert!(read.contains(&a.syscall_nr("getxattrat").unwrap()));
        // open and stat do not exist on aarch64: skipped, not an error.
        assert_eq!(a.syscall_nr("open"), None);
        assert!(expanded(a, "@default").is_ok());
        assert!(expand_for(a, "@fle-read").unwrap_err().contains("@file-read"));
        let write = expanded(Arch::X86_64, "@file-write").unwrap();
        for n in ["setxattrat", "removexattrat"] {
            assert!(write.contains(&Arch::X86_64.syscall_nr(n).unwrap()), "{n}");
        }
        let mount = expanded(Arch::X86_64, "@mount").unwrap();
        assert!(mount.contains(&Arch::X86_64.syscall_nr("open_tree_attr").unwrap()));
    }

    #[test]
    fn every_name_is_a_syscall_and_every_include_a_group() {
        for g in GROUPS {
            assert!(g.name.starts_with('@') && g.name.len() > 1, "{}", g.name);
            assert!(
                !g.description.is_empty() && g.description.ends_with('.'),
                "{}",
                g.name
            );
            assert!(
                !g.syscalls.is_empty() || !g.includes.is_empty(),
                "{} is empty",
                g.name
            );
            for s in g.syscalls {
                assert!(
                    names::syscall_nr(s).is_some(),
                    "{}: {s} is not an x86_64 syscall",
                    g.name
                );
            }
            for w in g.syscalls.windows(2) {
                assert!(
                    w[0] < w[1],
                    "{}: {} and {} out of order or repeated",
                    g.name,
                    w[0],
                    w[1]
                );
            }
            for inc in g.includes {
                assert!(group(inc).is_some(), "{}: includes unknown {inc}", g.name);
            }
        }
        for d in DANGEROUS {
            nr(d);
        }
    }

    #[test]
    fn group_names_are_unique() {
        for (i, g) in GROUPS.iter().enumerate() {
            assert!(GROUPS[..i].iter().all(|h| h.name != g.name), "{} twice", g.name);
            assert_eq!(group(g.name), Some(g));
        }
        for name in DEFAULT_ELIGIBLE {
            assert!(group(name).is_some(), "{name}");
        }
    }

    #[test]
    fn no_group_includes_itself() {
        // Depth-first search for a cycle through `includes`.
        fn visit(g: &Group, path: &mut Vec<&'static str>) {
            for inc in g.includes {
                assert!(!path.contains(inc), "cycle: {} -> {inc}", path.join(" -> "));
                path.push(inc);
                visit(group(inc).unwrap(), path);
                path.pop();
            }
        }
        for g in GROUPS {
            visit(g, &mut vec![g.name]);
        }
    }

    #[test]
    fn expansion_is_sorted_deduplicated_and_follows_includes() {
        for g in GROUPS {
            let v = expand(g.name).unwrap();
            assert!(v.windows(2).all(|w| w[0] < w[1]), "{}", g.name);
            for s in g.syscalls {
                assert!(v.contains(&nr(s)), "{}: {s}", g.name);
            }
            for inc in g.includes {
                for n in expand(inc).unwrap() {
                    assert!(v.contains(&n), "{}: {n} from {inc}", g.name);
                }
            }
        }
        let privileged = expand("@privileged").unwrap();
        for s in [
            "mount",
            "pivot_root",
            "init_module",
            "reboot",
            "swapon",
            "acct",
            "iopl",
        ] {
            assert!(privileged.contains(&nr(s)), "{s}");
        }
        assert_eq!(expand("@terminal"), Ok(vec![16]));
        assert_eq!(expand("@bpf"), Ok(vec![321]));
    }

    #[test]
    fn default_eligible_groups_hold_nothing_dangerous() {
        for name in DEFAULT_ELIGIBLE {
            let v = expand(name).unwrap();
            for d in DANGEROUS {
                assert!(!v.contains(&nr(d)), "{name} holds {d}");
            }
        }
        // Nor anything from the groups documented as dangerous, except the
        // overlap on purpose: mknod/mknodat (fifos) are in @file-write and
        // also listed under @privileged (device nodes need CAP_MKNOD).
        let mut eligible = BTreeSet::new();
        for name in DEFAULT_ELIGIBLE {
            eligible.extend(expand(name).unwrap());
        }
        for bad in [
            "@debug",
            "@mount",
            "@namespace",
            "@module",
            "@reboot",
            "@swap",
            "@keyring",
            "@bpf",
            "@io-uring",
            "@clock",
            "@privileged",
            "@sandbox",
            "@obsolete",
        ] {
            for n in expand(bad).unwrap() {
                let s = names::syscall_name(n).unwrap();
                assert!(
                    !eligible.contains(&n) || matches!(s, "mknod" | "mknodat"),
                    "{bad}: {s} is default-eligible"
                );
            }
        }
    }

    #[test]
    fn default_eligible_groups_cover_ordinary_programs() {
        let mut eligible = BTreeSet::new();
        for name in DEFAULT_ELIGIBLE {
            eligible.extend(expand(name).unwrap());
        }
        for s in [
            "execve",
            "openat",
            "read",
            "write",
            "close",
            "mmap",
            "brk",
            "clone",
            "vfork",
            "wait4",
            "pipe2",
            "dup2",
            "getdents64",
            "ioctl",
            "socket",
            "connect",
            "rt_sigaction",
            "fcntl",
            "newfstatat",
            "statx",
            "getrandom",
            "prlimit64",
            "sysinfo",
            "umask",
            "rename",
            "unlink",
            "mkdir",
            "utimensat",
            "fchmod",
            "chdir",
            "getpgrp",
            "setpgid",
            "kill",
            "pselect6",
            "epoll_wait",
            "clock_nanosleep",
            "getgroups",
            "sched_getaffinity",
            "futex",
            "set_robust_list",
            "rseq",
            "exit_group",
            "close_range",
            "copy_file_range",
        ] {
            assert!(eligible.contains(&nr(s)), "{s} is not default-eligible");
        }
        // clone3 stays out: cordon answers it with ENOSYS so libc falls back
        // to clone, whose flags a rule can check.
        assert!(!eligible.contains(&nr("clone3")));
    }

    #[test]
    fn unknown_groups_get_suggestions() {
        assert_eq!(
            expand("@fle-read").unwrap_err(),
            "unknown group \"@fle-read\" (did you mean \"@file-read\"?)"
        );
        assert_eq!(
            expand("default").unwrap_err(),
            "unknown group \"default\" (did you mean \"@default\"?)"
        );
        assert_eq!(
            expand("@NETWORK").unwrap_err(),
            "unknown group \"@NETWORK\" (did you mean \"@network\"?)"
        );
        assert_eq!(
            expand("@everything").unwrap_err(),
            "unknown group \"@everything\""
        );
        assert!(group("@nope").is_none());
        assert!(group("file-read").is_none());
    }
}
