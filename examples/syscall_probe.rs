//! A test helper, built with the tests: makes one raw system call and
//! prints what happened, so tests can check a seccomp filter from inside
//! the sandbox without depending on what libc wraps.
//!
//! ```text
//! syscall_probe [--int80 | --x32] SYSCALL [ARG...]
//! ```
//! SYSCALL is a name (x86_64) or a number; ARGs are numbers or constants
//! (`AF_INET`, `"CLONE_NEWUSER|SIGCHLD"`). Prints `ok RET` or
//! `err ERRNO NAME`, and exits 0 either way. `--int80` makes the call
//! through the 32-bit `int 0x80` gate (i386 numbering), `--x32` with the
//! x32 bit set.
//!
//! ```text
//! syscall_probe --self
//! ```
//! Describes the calling process from system calls alone (no `/proc`,
//! which `cordon exec` has not), one `KEY VALUE...` line each:
//!
//! ```text
//! pid 1234                      getpid
//! uid 1000                      getuid
//! gid 1000                      getgid
//! CapEff 0000000000000000       capget (version 3), both effective words
//! NoNewPrivs 1                  prctl(PR_GET_NO_NEW_PRIVS)
//! Seccomp 2                     prctl(PR_GET_SECCOMP): 0 none, 2 filter
//! unshare(0) err 1 EPERM        a call cordon's policies refuse; a no-op
//!                               that returns `ok 0` without a filter
//! RLIMIT_NOFILE 1024 1024       getrlimit, soft and hard (`inf` unlimited)
//! RLIMIT_CORE 0 0
//! ```

use std::arch::asm;

fn usage() -> ! {
    eprintln!("usage: syscall_probe [--int80 | --x32] SYSCALL [ARG...]\n       syscall_probe --self");
    std::process::exit(2)
}

/// `ok RET` or `err ERRNO NAME` for a raw system call's return value.
fn describe(ret: i64) -> String {
    if (-4095..0).contains(&ret) {
        let e = (-ret) as u16;
        format!("err {e} {}", cordon::seccomp::names::errno_name(e).unwrap_or("?"))
    } else {
        format!("ok {ret}")
    }
}

/// A raw system call's return value, `-errno` on failure.
fn raw(ret: libc::c_long) -> i64 {
    if ret == -1 {
        -i64::from(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        ret
    }
}

/// The effective capability set (capget, version 3: two 32-bit words).
fn cap_eff() -> Result<u64, String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget with a version-3 header and room for its two data
    // structs, both owned by this frame.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) };
    if r != 0 {
        return Err(describe(raw(r)));
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

fn prctl_get(option: libc::c_int) -> i64 {
    // SAFETY: PR_GET_NO_NEW_PRIVS and PR_GET_SECCOMP take no pointers and
    // return the value.
    raw(unsafe { libc::syscall(libc::SYS_prctl, option, 0, 0, 0, 0) })
}

fn rlimit(resource: cordon::sys::Resource) -> String {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct owned by this frame.
    let ret = unsafe { libc::syscall(libc::SYS_getrlimit, resource, &mut r as *mut libc::rlimit) };
    if ret != 0 {
        return describe(raw(ret));
    }
    let v = |x: libc::rlim_t| {
        if x == libc::RLIM_INFINITY {
            "inf".to_string()
        } else {
            x.to_string()
        }
    };
    format!("{} {}", v(r.rlim_cur), v(r.rlim_max))
}

/// `--self`: what restricts this process, from system calls only.
fn describe_self() {
    // SAFETY: getpid/getuid/getgid take no arguments and cannot fail.
    let (pid, uid, gid) = unsafe {
        (
            libc::syscall(libc::SYS_getpid),
            libc::syscall(libc::SYS_getuid),
            libc::syscall(libc::SYS_getgid),
        )
    };
    let mut out = format!("pid {pid}\nuid {uid}\ngid {gid}\n");
    match cap_eff() {
        Ok(c) => out += &format!("CapEff {c:016x}\n"),
        Err(e) => out += &format!("CapEff {e}\n"),
    }
    out += &format!("NoNewPrivs {}\n", prctl_get(libc::PR_GET_NO_NEW_PRIVS));
    out += &format!("Seccomp {}\n", prctl_get(libc::PR_GET_SECCOMP));
    // unshare(0) changes nothing; cordon's policies refuse unshare whatever
    // the flags, so under them it fails with EPERM.
    // SAFETY: unshare with no flags is a no-op.
    let r = raw(unsafe { libc::syscall(libc::SYS_unshare, 0) });
    out += &format!("unshare(0) {}\n", describe(r));
    out += &format!("RLIMIT_NOFILE {}\n", rlimit(libc::RLIMIT_NOFILE));
    out += &format!("RLIMIT_CORE {}\n", rlimit(libc::RLIMIT_CORE));
    print!("{out}");
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--self") {
        if args.len() != 1 {
            usage();
        }
        describe_self();
        return;
    }
    let mode = match args.first().map(String::as_str) {
        Some("--int80") => {
            args.remove(0);
            "int80"
        }
        Some("--x32") => {
            args.remove(0);
            "x32"
        }
        _ => "x86_64",
    };
    let Some(call) = args.first() else { usage() };
    let nr = match call.parse::<u64>() {
        Ok(n) => n,
        Err(_) => match cordon::seccomp::names::syscall_nr(call) {
            Some(n) => u64::from(n),
            None => {
                eprintln!("syscall_probe: unknown syscall {call}");
                std::process::exit(2)
            }
        },
    };
    let mut a = [0u64; 6];
    for (i, s) in args.iter().skip(1).take(6).enumerate() {
        a[i] = match cordon::seccomp::names::parse_value(s) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("syscall_probe: argument {i}: {e}");
                std::process::exit(2)
            }
        };
    }
    let ret: i64;
    match mode {
        "int80" => {
            let r: u32;
            // SAFETY: a raw 32-bit system call with integer arguments; the
            // tests only make calls that take no pointers (or null ones).
            unsafe {
                asm!(
                    "push rbx",
                    "mov ebx, {a0:e}",
                    "int 0x80",
                    "pop rbx",
                    a0 = in(reg) a[0] as u32,
                    inlateout("eax") nr as u32 => r,
                    in("ecx") a[1] as u32,
                    in("edx") a[2] as u32,
                );
            }
            ret = i64::from(r as i32);
        }
        _ => {
            let n = if mode == "x32" { nr | 0x4000_0000 } else { nr };
            // SAFETY: a raw system call with integer arguments, as above.
            unsafe {
                asm!(
                    "syscall",
                    inlateout("rax") n as i64 => ret,
                    in("rdi") a[0],
                    in("rsi") a[1],
                    in("rdx") a[2],
                    in("r10") a[3],
                    in("r8") a[4],
                    in("r9") a[5],
                    lateout("rcx") _,
                    lateout("r11") _,
                );
            }
        }
    }
    println!("{}", describe(ret));
}
