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

use std::arch::asm;

fn usage() -> ! {
    eprintln!("usage: syscall_probe [--int80 | --x32] SYSCALL [ARG...]");
    std::process::exit(2)
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
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
    if (-4095..0).contains(&ret) {
        let e = (-ret) as u16;
        println!("err {e} {}", cordon::seccomp::names::errno_name(e).unwrap_or("?"));
    } else {
        println!("ok {ret}");
    }
}
