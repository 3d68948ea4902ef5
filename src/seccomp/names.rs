//! Names for the values a seccomp policy mentions: system calls (numbers
//! of the architecture cordon is built for, from [`super::arch::Arch`]),
//! errno values, and the constants that make sense as system call arguments
//! (socket families and types, netlink protocols, terminal, socket and
//! file ioctls, clone/open/mmap flags, prctl options, personalities).
//!
//! Names are case-sensitive (they are the kernel's); suggestions for
//! misspelled names compare case-insensitively, so `af_unix` suggests
//! `AF_UNIX`. Values come from the `libc` crate wherever it has them; the
//! few it lacks are written out with a comment naming their kernel header.

use super::arch::Arch;

/// Syscall number for a name on the native architecture, e.g. `"openat"`
/// -> 257 on x86_64. `None` on an architecture without a table.
pub fn syscall_nr(name: &str) -> Option<u32> {
    Arch::native().and_then(|a| a.syscall_nr(name))
}

/// Name of a syscall number on the native architecture, e.g. 257 -> `"openat"`.
pub fn syscall_name(nr: u32) -> Option<&'static str> {
    Arch::native().and_then(|a| a.syscall_name(nr))
}

/// Like [`syscall_nr`], but an unknown name gives an error message with a
/// suggestion: `unknown system call "opnat" (did you mean "openat"?)`.
pub fn parse_syscall(name: &str) -> Result<u32, String> {
    parse_syscall_for(Arch::native_or_err()?, name)
}

/// [`parse_syscall`] for the given architecture.
pub fn parse_syscall_for(arch: Arch, name: &str) -> Result<u32, String> {
    arch.syscall_nr(name).ok_or_else(|| {
        let elsewhere = Arch::ALL
            .into_iter()
            .find(|a| *a != arch && a.syscall_nr(name).is_some());
        match elsewhere {
            Some(other) => format!("system call \"{name}\" does not exist on {arch} (only on {other})"),
            None => format!(
                "unknown system call \"{name}\"{}",
                hint(name, arch.syscalls().map(|(_, n)| n))
            ),
        }
    })
}

/// Errno values (Linux, x86_64), in number order; where two names share a
/// number the canonical one comes first (`EAGAIN` before `EWOULDBLOCK`).
const ERRNOS: &[(&str, u16)] = &[
    ("EPERM", libc::EPERM as u16),
    ("ENOENT", libc::ENOENT as u16),
    ("ESRCH", libc::ESRCH as u16),
    ("EINTR", libc::EINTR as u16),
    ("EIO", libc::EIO as u16),
    ("ENXIO", libc::ENXIO as u16),
    ("E2BIG", libc::E2BIG as u16),
    ("ENOEXEC", libc::ENOEXEC as u16),
    ("EBADF", libc::EBADF as u16),
    ("ECHILD", libc::ECHILD as u16),
    ("EAGAIN", libc::EAGAIN as u16),
    ("EWOULDBLOCK", libc::EWOULDBLOCK as u16),
    ("ENOMEM", libc::ENOMEM as u16),
    ("EACCES", libc::EACCES as u16),
    ("EFAULT", libc::EFAULT as u16),
    ("ENOTBLK", libc::ENOTBLK as u16),
    ("EBUSY", libc::EBUSY as u16),
    ("EEXIST", libc::EEXIST as u16),
    ("EXDEV", libc::EXDEV as u16),
    ("ENODEV", libc::ENODEV as u16),
    ("ENOTDIR", libc::ENOTDIR as u16),
    ("EISDIR", libc::EISDIR as u16),
    ("EINVAL", libc::EINVAL as u16),
    ("ENFILE", libc::ENFILE as u16),
    ("EMFILE", libc::EMFILE as u16),
    ("ENOTTY", libc::ENOTTY as u16),
    ("ETXTBSY", libc::ETXTBSY as u16),
    ("EFBIG", libc::EFBIG as u16),
    ("ENOSPC", libc::ENOSPC as u16),
    ("ESPIPE", libc::ESPIPE as u16),
    ("EROFS", libc::EROFS as u16),
    ("EMLINK", libc::EMLINK as u16),
    ("EPIPE", libc::EPIPE as u16),
    ("EDOM", libc::EDOM as u16),
    ("ERANGE", libc::ERANGE as u16),
    ("EDEADLK", libc::EDEADLK as u16),
    ("EDEADLOCK", libc::EDEADLOCK as u16),
    ("ENAMETOOLONG", libc::ENAMETOOLONG as u16),
    ("ENOLCK", libc::ENOLCK as u16),
    ("ENOSYS", libc::ENOSYS as u16),
    ("ENOTEMPTY", libc::ENOTEMPTY as u16),
    ("ELOOP", libc::ELOOP as u16),
    ("ENOMSG", libc::ENOMSG as u16),
    ("EIDRM", libc::EIDRM as u16),
    ("ECHRNG", libc::ECHRNG as u16),
    ("EL2NSYNC", libc::EL2NSYNC as u16),
    ("EL3HLT", libc::EL3HLT as u16),
    ("EL3RST", libc::EL3RST as u16),
    ("ELNRNG", libc::ELNRNG as u16),
    ("EUNATCH", libc::EUNATCH as u16),
    ("ENOCSI", libc::ENOCSI as u16),
    ("EL2HLT", libc::EL2HLT as u16),
    ("EBADE", libc::EBADE as u16),
    ("EBADR", libc::EBADR as u16),
    ("EXFULL", libc::EXFULL as u16),
    ("ENOANO", libc::ENOANO as u16),
    ("EBADRQC", libc::EBADRQC as u16),
    ("EBADSLT", libc::EBADSLT as u16),
    ("EBFONT", libc::EBFONT as u16),
    ("ENOSTR", libc::ENOSTR as u16),
    ("ENODATA", libc::ENODATA as u16),
    ("ETIME", libc::ETIME as u16),
    ("ENOSR", libc::ENOSR as u16),
    ("ENONET", libc::ENONET as u16),
    ("ENOPKG", libc::ENOPKG as u16),
    ("EREMOTE", libc::EREMOTE as u16),
    ("ENOLINK", libc::ENOLINK as u16),
    ("EADV", libc::EADV as u16),
    ("ESRMNT", libc::ESRMNT as u16),
    ("ECOMM", libc::ECOMM as u16),
    ("EPROTO", libc::EPROTO as u16),
    ("EMULTIHOP", libc::EMULTIHOP as u16),
    ("EDOTDOT", libc::EDOTDOT as u16),
    ("EBADMSG", libc::EBADMSG as u16),
    ("EOVERFLOW", libc::EOVERFLOW as u16),
    ("ENOTUNIQ", libc::ENOTUNIQ as u16),
    ("EBADFD", libc::EBADFD as u16),
    ("EREMCHG", libc::EREMCHG as u16),
    ("ELIBACC", libc::ELIBACC as u16),
    ("ELIBBAD", libc::ELIBBAD as u16),
    ("ELIBSCN", libc::ELIBSCN as u16),
    ("ELIBMAX", libc::ELIBMAX as u16),
    ("ELIBEXEC", libc::ELIBEXEC as u16),
    ("EILSEQ", libc::EILSEQ as u16),
    ("ERESTART", libc::ERESTART as u16),
    ("ESTRPIPE", libc::ESTRPIPE as u16),
    ("EUSERS", libc::EUSERS as u16),
    ("ENOTSOCK", libc::ENOTSOCK as u16),
    ("EDESTADDRREQ", libc::EDESTADDRREQ as u16),
    ("EMSGSIZE", libc::EMSGSIZE as u16),
    ("EPROTOTYPE", libc::EPROTOTYPE as u16),
    ("ENOPROTOOPT", libc::ENOPROTOOPT as u16),
    ("EPROTONOSUPPORT", libc::EPROTONOSUPPORT as u16),
    ("ESOCKTNOSUPPORT", libc::ESOCKTNOSUPPORT as u16),
    ("EOPNOTSUPP", libc::EOPNOTSUPP as u16),
    ("ENOTSUP", libc::ENOTSUP as u16),
    ("EPFNOSUPPORT", libc::EPFNOSUPPORT as u16),
    ("EAFNOSUPPORT", libc::EAFNOSUPPORT as u16),
    ("EADDRINUSE", libc::EADDRINUSE as u16),
    ("EADDRNOTAVAIL", libc::EADDRNOTAVAIL as u16),
    ("ENETDOWN", libc::ENETDOWN as u16),
    ("ENETUNREACH", libc::ENETUNREACH as u16),
    ("ENETRESET", libc::ENETRESET as u16),
    ("ECONNABORTED", libc::ECONNABORTED as u16),
    ("ECONNRESET", libc::ECONNRESET as u16),
    ("ENOBUFS", libc::ENOBUFS as u16),
    ("EISCONN", libc::EISCONN as u16),
    ("ENOTCONN", libc::ENOTCONN as u16),
    ("ESHUTDOWN", libc::ESHUTDOWN as u16),
    ("ETOOMANYREFS", libc::ETOOMANYREFS as u16),
    ("ETIMEDOUT", libc::ETIMEDOUT as u16),
    ("ECONNREFUSED", libc::ECONNREFUSED as u16),
    ("EHOSTDOWN", libc::EHOSTDOWN as u16),
    ("EHOSTUNREACH", libc::EHOSTUNREACH as u16),
    ("EALREADY", libc::EALREADY as u16),
    ("EINPROGRESS", libc::EINPROGRESS as u16),
    ("ESTALE", libc::ESTALE as u16),
    ("EUCLEAN", libc::EUCLEAN as u16),
    ("ENOTNAM", libc::ENOTNAM as u16),
    ("ENAVAIL", libc::ENAVAIL as u16),
    ("EISNAM", libc::EISNAM as u16),
    ("EREMOTEIO", libc::EREMOTEIO as u16),
    ("EDQUOT", libc::EDQUOT as u16),
    ("ENOMEDIUM", libc::ENOMEDIUM as u16),
    ("EMEDIUMTYPE", libc::EMEDIUMTYPE as u16),
    ("ECANCELED", libc::ECANCELED as u16),
    ("ENOKEY", libc::ENOKEY as u16),
    ("EKEYEXPIRED", libc::EKEYEXPIRED as u16),
    ("EKEYREVOKED", libc::EKEYREVOKED as u16),
    ("EKEYREJECTED", libc::EKEYREJECTED as u16),
    ("EOWNERDEAD", libc::EOWNERDEAD as u16),
    ("ENOTRECOVERABLE", libc::ENOTRECOVERABLE as u16),
    ("ERFKILL", libc::ERFKILL as u16),
    ("EHWPOISON", libc::EHWPOISON as u16),
];

/// errno number for a name, e.g. `"EPERM"` -> 1, `"ENOSYS"` -> 38.
pub fn errno(name: &str) -> Option<u16> {
    ERRNOS.iter().find(|&&(n, _)| n == name).map(|&(_, v)| v)
}

/// Name for an errno number: the canonical one where there are several
/// (`EAGAIN` rather than `EWOULDBLOCK`, `EOPNOTSUPP` rather than `ENOTSUP`).
pub fn errno_name(n: u16) -> Option<&'static str> {
    ERRNOS.iter().find(|&&(_, v)| v == n).map(|&(name, _)| name)
}

/// Parse an errno given as a name (`"ENOSYS"`) or a decimal number (`"38"`),
/// in 1..=4095. Unknown names give an error with a suggestion.
pub fn parse_errno(s: &str) -> Result<u16, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=4095).contains(n))
            .ok_or_else(|| {
                format!("errno {s} is out of range: expected 1 to 4095 or a name such as \"EPERM\"")
            });
    }
    errno(s).ok_or_else(|| format!("unknown errno \"{s}\"{}", hint(s, ERRNOS.iter().map(|&(n, _)| n))))
}

/// Socket address families (`socket`/`socketpair` argument 0).
const ADDRESS_FAMILIES: &[(&str, u64)] = &[
    ("AF_ALG", libc::AF_ALG as u64),
    ("AF_APPLETALK", libc::AF_APPLETALK as u64),
    ("AF_ASH", libc::AF_ASH as u64),
    ("AF_ATMPVC", libc::AF_ATMPVC as u64),
    ("AF_ATMSVC", libc::AF_ATMSVC as u64),
    ("AF_AX25", libc::AF_AX25 as u64),
    ("AF_BLUETOOTH", libc::AF_BLUETOOTH as u64),
    ("AF_BRIDGE", libc::AF_BRIDGE as u64),
    ("AF_CAIF", libc::AF_CAIF as u64),
    ("AF_CAN", libc::AF_CAN as u64),
    ("AF_DECnet", libc::AF_DECnet as u64),
    ("AF_ECONET", libc::AF_ECONET as u64),
    ("AF_IB", libc::AF_IB as u64),
    ("AF_IEEE802154", libc::AF_IEEE802154 as u64),
    ("AF_INET", libc::AF_INET as u64),
    ("AF_INET6", libc::AF_INET6 as u64),
    ("AF_IPX", libc::AF_IPX as u64),
    ("AF_IRDA", libc::AF_IRDA as u64),
    ("AF_ISDN", libc::AF_ISDN as u64),
    ("AF_IUCV", libc::AF_IUCV as u64),
    // not in libc for x86_64; <linux/socket.h>
    ("AF_KCM", 41),
    ("AF_KEY", libc::AF_KEY as u64),
    ("AF_LLC", libc::AF_LLC as u64),
    ("AF_LOCAL", libc::AF_LOCAL as u64),
    // not in libc; <linux/socket.h>
    ("AF_MCTP", 45),
    ("AF_MPLS", libc::AF_MPLS as u64),
    ("AF_NETBEUI", libc::AF_NETBEUI as u64),
    ("AF_NETLINK", libc::AF_NETLINK as u64),
    ("AF_NETROM", libc::AF_NETROM as u64),
    ("AF_NFC", libc::AF_NFC as u64),
    ("AF_PACKET", libc::AF_PACKET as u64),
    ("AF_PHONET", libc::AF_PHONET as u64),
    ("AF_PPPOX", libc::AF_PPPOX as u64),
    // not in libc for x86_64; <linux/socket.h>
    ("AF_QIPCRTR", 42),
    ("AF_RDS", libc::AF_RDS as u64),
    ("AF_ROSE", libc::AF_ROSE as u64),
    ("AF_ROUTE", libc::AF_ROUTE as u64),
    ("AF_RXRPC", libc::AF_RXRPC as u64),
    ("AF_SECURITY", libc::AF_SECURITY as u64),
    // not in libc; <linux/socket.h>
    ("AF_SMC", 43),
    ("AF_SNA", libc::AF_SNA as u64),
    ("AF_TIPC", libc::AF_TIPC as u64),
    ("AF_UNIX", libc::AF_UNIX as u64),
    ("AF_UNSPEC", libc::AF_UNSPEC as u64),
    ("AF_VSOCK", libc::AF_VSOCK as u64),
    ("AF_WANPIPE", libc::AF_WANPIPE as u64),
    ("AF_X25", libc::AF_X25 as u64),
    ("AF_XDP", libc::AF_XDP as u64),
];

/// Socket types and the flags or-ed into them (`socket` argument 1).
const SOCKET_TYPES: &[(&str, u64)] = &[
    ("SOCK_CLOEXEC", libc::SOCK_CLOEXEC as u64),
    ("SOCK_DCCP", libc::SOCK_DCCP as u64),
    ("SOCK_DGRAM", libc::SOCK_DGRAM as u64),
    ("SOCK_NONBLOCK", libc::SOCK_NONBLOCK as u64),
    // deprecated in libc; <linux/net.h>
    ("SOCK_PACKET", 10),
    ("SOCK_RAW", libc::SOCK_RAW as u64),
    ("SOCK_RDM", libc::SOCK_RDM as u64),
    ("SOCK_SEQPACKET", libc::SOCK_SEQPACKET as u64),
    ("SOCK_STREAM", libc::SOCK_STREAM as u64),
];

/// Netlink protocols (`socket(AF_NETLINK, type, protocol)` argument 2).
const NETLINK_PROTOCOLS: &[(&str, u64)] = &[
    ("NETLINK_AUDIT", libc::NETLINK_AUDIT as u64),
    ("NETLINK_CONNECTOR", libc::NETLINK_CONNECTOR as u64),
    ("NETLINK_CRYPTO", libc::NETLINK_CRYPTO as u64),
    ("NETLINK_DNRTMSG", libc::NETLINK_DNRTMSG as u64),
    ("NETLINK_ECRYPTFS", libc::NETLINK_ECRYPTFS as u64),
    ("NETLINK_FIB_LOOKUP", libc::NETLINK_FIB_LOOKUP as u64),
    ("NETLINK_FIREWALL", libc::NETLINK_FIREWALL as u64),
    ("NETLINK_GENERIC", libc::NETLINK_GENERIC as u64),
    ("NETLINK_INET_DIAG", libc::NETLINK_INET_DIAG as u64),
    ("NETLINK_IP6_FW", libc::NETLINK_IP6_FW as u64),
    ("NETLINK_ISCSI", libc::NETLINK_ISCSI as u64),
    ("NETLINK_KOBJECT_UEVENT", libc::NETLINK_KOBJECT_UEVENT as u64),
    ("NETLINK_NETFILTER", libc::NETLINK_NETFILTER as u64),
    ("NETLINK_NFLOG", libc::NETLINK_NFLOG as u64),
    ("NETLINK_RDMA", libc::NETLINK_RDMA as u64),
    ("NETLINK_ROUTE", libc::NETLINK_ROUTE as u64),
    ("NETLINK_SCSITRANSPORT", libc::NETLINK_SCSITRANSPORT as u64),
    ("NETLINK_SELINUX", libc::NETLINK_SELINUX as u64),
    // not in libc; <linux/netlink.h>
    ("NETLINK_SMC", 22),
    ("NETLINK_SOCK_DIAG", libc::NETLINK_SOCK_DIAG as u64),
    ("NETLINK_UNUSED", libc::NETLINK_UNUSED as u64),
    ("NETLINK_USERSOCK", libc::NETLINK_USERSOCK as u64),
    ("NETLINK_XFRM", libc::NETLINK_XFRM as u64),
];

/// An ioctl request constant as the kernel reads it: the low 32 bits.
/// libc types the constants `Ioctl`: `c_ulong` in its glibc binding, `c_int`
/// in its musl one, where a request with the top bit set (`TIOCGPTN`,
/// `_IOR(...)`) is negative and a plain `as u64` would sign-extend it.
pub(crate) const fn ioctl_request(r: libc::Ioctl) -> u64 {
    r as u32 as u64
}

/// Terminal and file ioctl requests (`ioctl` argument 1), the same values
/// whichever libc the build uses (see [`ioctl_request`]).
const IOCTLS: &[(&str, u64)] = &[
    ("FIOASYNC", ioctl_request(libc::FIOASYNC)),
    ("FIOCLEX", ioctl_request(libc::FIOCLEX)),
    ("FIONBIO", ioctl_request(libc::FIONBIO)),
    ("FIONCLEX", ioctl_request(libc::FIONCLEX)),
    ("FIONREAD", ioctl_request(libc::FIONREAD)),
    ("FIOQSIZE", ioctl_request(libc::FIOQSIZE)),
    ("TCFLSH", ioctl_request(libc::TCFLSH)),
    ("TCGETA", ioctl_request(libc::TCGETA)),
    ("TCGETS", ioctl_request(libc::TCGETS)),
    ("TCGETS2", ioctl_request(libc::TCGETS2)),
    ("TCGETX", ioctl_request(libc::TCGETX)),
    ("TCSBRK", ioctl_request(libc::TCSBRK)),
    ("TCSBRKP", ioctl_request(libc::TCSBRKP)),
    ("TCSETA", ioctl_request(libc::TCSETA)),
    ("TCSETAF", ioctl_request(libc::TCSETAF)),
    ("TCSETAW", ioctl_request(libc::TCSETAW)),
    ("TCSETS", ioctl_request(libc::TCSETS)),
    ("TCSETS2", ioctl_request(libc::TCSETS2)),
    ("TCSETSF", ioctl_request(libc::TCSETSF)),
    ("TCSETSF2", ioctl_request(libc::TCSETSF2)),
    ("TCSETSW", ioctl_request(libc::TCSETSW)),
    ("TCSETSW2", ioctl_request(libc::TCSETSW2)),
    ("TCSETX", ioctl_request(libc::TCSETX)),
    ("TCSETXF", ioctl_request(libc::TCSETXF)),
    ("TCSETXW", ioctl_request(libc::TCSETXW)),
    ("TCXONC", ioctl_request(libc::TCXONC)),
    ("TIOCCBRK", ioctl_request(libc::TIOCCBRK)),
    ("TIOCCONS", ioctl_request(libc::TIOCCONS)),
    ("TIOCEXCL", ioctl_request(libc::TIOCEXCL)),
    ("TIOCGDEV", ioctl_request(libc::TIOCGDEV)),
    ("TIOCGETD", ioctl_request(libc::TIOCGETD)),
    ("TIOCGEXCL", ioctl_request(libc::TIOCGEXCL)),
    ("TIOCGICOUNT", ioctl_request(libc::TIOCGICOUNT)),
    ("TIOCGLCKTRMIOS", ioctl_request(libc::TIOCGLCKTRMIOS)),
    ("TIOCGPGRP", ioctl_request(libc::TIOCGPGRP)),
    ("TIOCGPKT", ioctl_request(libc::TIOCGPKT)),
    ("TIOCGPTLCK", ioctl_request(libc::TIOCGPTLCK)),
    ("TIOCGPTN", ioctl_request(libc::TIOCGPTN)),
    ("TIOCGPTPEER", ioctl_request(libc::TIOCGPTPEER)),
    ("TIOCGRS485", ioctl_request(libc::TIOCGRS485)),
    ("TIOCGSERIAL", ioctl_request(libc::TIOCGSERIAL)),
    ("TIOCGSID", ioctl_request(libc::TIOCGSID)),
    ("TIOCGSOFTCAR", ioctl_request(libc::TIOCGSOFTCAR)),
    ("TIOCGWINSZ", ioctl_request(libc::TIOCGWINSZ)),
    ("TIOCINQ", ioctl_request(libc::TIOCINQ)),
    ("TIOCLINUX", ioctl_request(libc::TIOCLINUX)),
    ("TIOCMBIC", ioctl_request(libc::TIOCMBIC)),
    ("TIOCMBIS", ioctl_request(libc::TIOCMBIS)),
    ("TIOCMGET", ioctl_request(libc::TIOCMGET)),
    ("TIOCMIWAIT", ioctl_request(libc::TIOCMIWAIT)),
    ("TIOCMSET", ioctl_request(libc::TIOCMSET)),
    ("TIOCNOTTY", ioctl_request(libc::TIOCNOTTY)),
    ("TIOCNXCL", ioctl_request(libc::TIOCNXCL)),
    ("TIOCOUTQ", ioctl_request(libc::TIOCOUTQ)),
    ("TIOCPKT", ioctl_request(libc::TIOCPKT)),
    ("TIOCSBRK", ioctl_request(libc::TIOCSBRK)),
    ("TIOCSCTTY", ioctl_request(libc::TIOCSCTTY)),
    ("TIOCSERCONFIG", ioctl_request(libc::TIOCSERCONFIG)),
    ("TIOCSERGETLSR", ioctl_request(libc::TIOCSERGETLSR)),
    ("TIOCSERGETMULTI", ioctl_request(libc::TIOCSERGETMULTI)),
    ("TIOCSERGSTRUCT", ioctl_request(libc::TIOCSERGSTRUCT)),
    ("TIOCSERGWILD", ioctl_request(libc::TIOCSERGWILD)),
    ("TIOCSERSETMULTI", ioctl_request(libc::TIOCSERSETMULTI)),
    ("TIOCSERSWILD", ioctl_request(libc::TIOCSERSWILD)),
    ("TIOCSETD", ioctl_request(libc::TIOCSETD)),
    ("TIOCSIG", ioctl_request(libc::TIOCSIG)),
    ("TIOCSLCKTRMIOS", ioctl_request(libc::TIOCSLCKTRMIOS)),
    ("TIOCSPGRP", ioctl_request(libc::TIOCSPGRP)),
    ("TIOCSPTLCK", ioctl_request(libc::TIOCSPTLCK)),
    ("TIOCSRS485", ioctl_request(libc::TIOCSRS485)),
    ("TIOCSSERIAL", ioctl_request(libc::TIOCSSERIAL)),
    ("TIOCSSOFTCAR", ioctl_request(libc::TIOCSSOFTCAR)),
    ("TIOCSTI", ioctl_request(libc::TIOCSTI)),
    ("TIOCSWINSZ", ioctl_request(libc::TIOCSWINSZ)),
    ("TIOCVHANGUP", ioctl_request(libc::TIOCVHANGUP)),
];

/// Socket ioctl requests (`ioctl` argument 1, <linux/sockios.h>).
const SOCKET_IOCTLS: &[(&str, u64)] = &[
    // not in libc; <linux/sockios.h>
    ("FIOGETOWN", 0x8903),
    // not in libc; <linux/sockios.h>
    ("FIOSETOWN", 0x8901),
    // not in libc; <linux/sockios.h>
    ("SIOCATMARK", 0x8905),
    ("SIOCGIFADDR", libc::SIOCGIFADDR),
    ("SIOCGIFCONF", libc::SIOCGIFCONF),
    ("SIOCGIFFLAGS", libc::SIOCGIFFLAGS),
    ("SIOCGIFHWADDR", libc::SIOCGIFHWADDR),
    ("SIOCGIFINDEX", libc::SIOCGIFINDEX),
    ("SIOCGIFMTU", libc::SIOCGIFMTU),
    ("SIOCGIFNAME", libc::SIOCGIFNAME),
    // not in libc; <linux/sockios.h>
    ("SIOCGPGRP", 0x8904),
    // not in libc; <asm-generic/sockios.h> (SIOCGSTAMP_OLD on 64-bit)
    ("SIOCGSTAMP", 0x8906),
    ("SIOCSIFFLAGS", libc::SIOCSIFFLAGS),
    // not in libc; <linux/sockios.h>
    ("SIOCSPGRP", 0x8902),
];

/// Filesystem and block-device ioctl requests (`ioctl` argument 1), with
/// the 64-bit encodings of <linux/fs.h> (x86_64 and aarch64 agree).
const FS_IOCTLS: &[(&str, u64)] = &[
    // <linux/fs.h>: _IOR(0x12, 114, size_t)
    ("BLKGETSIZE64", 0x8008_1272),
    // <linux/fs.h>: _IO(0x12, 104)
    ("BLKSSZGET", 0x1268),
    // <linux/fs.h>: _IOW(0x94, 9, int)
    ("FICLONE", 0x4004_9409),
    // <linux/fs.h>: _IOW(0x94, 13, struct file_clone_range)
    ("FICLONERANGE", 0x4020_940d),
    // <linux/fs.h>: _IOWR(0x94, 54, struct file_dedupe_range)
    ("FIDEDUPERANGE", 0xc018_9436),
    // <linux/fs.h>: _IOWR('f', 11, struct fiemap)
    ("FS_IOC_FIEMAP", 0xc020_660b),
    // <linux/fs.h>: _IOR('X', 31, struct fsxattr)
    ("FS_IOC_FSGETXATTR", 0x801c_581f),
    // <linux/fs.h>: _IOW('X', 32, struct fsxattr)
    ("FS_IOC_FSSETXATTR", 0x401c_5820),
    // <linux/fs.h>: _IOR('f', 1, long)
    ("FS_IOC_GETFLAGS", 0x8008_6601),
    // <linux/fs.h>: _IOR('v', 1, long)
    ("FS_IOC_GETVERSION", 0x8008_7601),
    // <linux/fs.h>: _IOW('f', 2, long)
    ("FS_IOC_SETFLAGS", 0x4008_6602),
    // <linux/if_tun.h>: _IOW('T', 202, int)
    ("TUNSETIFF", 0x4004_54ca),
];

/// The name of an `ioctl` request (argument 1, whose top 32 bits the
/// kernel ignores), e.g. 0x5401 -> `TCGETS`: terminal, socket, file and
/// block requests cordon knows. Where two names share a value the first in
/// name order answers (`FIONREAD`, not `TIOCINQ`).
pub fn ioctl_name(request: u64) -> Option<&'static str> {
    let r = request & 0xffff_ffff;
    [IOCTLS, SOCKET_IOCTLS, FS_IOCTLS]
        .iter()
        .flat_map(|t| t.iter())
        .filter(|&&(_, v)| v == r)
        .map(|&(n, _)| n)
        .min()
}

/// `clone` flags (argument 0) and `unshare` flags.
const CLONE_FLAGS: &[(&str, u64)] = &[
    ("CLONE_CHILD_CLEARTID", libc::CLONE_CHILD_CLEARTID as u64),
    ("CLONE_CHILD_SETTID", libc::CLONE_CHILD_SETTID as u64),
    // libc's c_int constant overflows to 0 (libc issue #3584); <linux/sched.h>
    ("CLONE_CLEAR_SIGHAND", 0x1_0000_0000),
    ("CLONE_DETACHED", libc::CLONE_DETACHED as u64),
    ("CLONE_FILES", libc::CLONE_FILES as u64),
    ("CLONE_FS", libc::CLONE_FS as u64),
    // libc's c_int constant overflows to 0 (libc issue #3584); <linux/sched.h>
    ("CLONE_INTO_CGROUP", 0x2_0000_0000),
    // libc::CLONE_IO is a negative c_int; read its 32 bits unsigned.
    ("CLONE_IO", libc::CLONE_IO as u32 as u64),
    ("CLONE_NEWCGROUP", libc::CLONE_NEWCGROUP as u64),
    ("CLONE_NEWIPC", libc::CLONE_NEWIPC as u64),
    ("CLONE_NEWNET", libc::CLONE_NEWNET as u64),
    ("CLONE_NEWNS", libc::CLONE_NEWNS as u64),
    ("CLONE_NEWPID", libc::CLONE_NEWPID as u64),
    ("CLONE_NEWTIME", libc::CLONE_NEWTIME as u64),
    ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u64),
    ("CLONE_NEWUTS", libc::CLONE_NEWUTS as u64),
    ("CLONE_PARENT", libc::CLONE_PARENT as u64),
    ("CLONE_PARENT_SETTID", libc::CLONE_PARENT_SETTID as u64),
    ("CLONE_PIDFD", libc::CLONE_PIDFD as u64),
    ("CLONE_PTRACE", libc::CLONE_PTRACE as u64),
    ("CLONE_SETTLS", libc::CLONE_SETTLS as u64),
    ("CLONE_SIGHAND", libc::CLONE_SIGHAND as u64),
    ("CLONE_SYSVSEM", libc::CLONE_SYSVSEM as u64),
    ("CLONE_THREAD", libc::CLONE_THREAD as u64),
    ("CLONE_UNTRACED", libc::CLONE_UNTRACED as u64),
    ("CLONE_VFORK", libc::CLONE_VFORK as u64),
    ("CLONE_VM", libc::CLONE_VM as u64),
];

/// `open`/`openat` flags.
const OPEN_FLAGS: &[(&str, u64)] = &[
    // the kernel's (<asm-generic/fcntl.h>): musl's O_ACCMODE (libc's musl
    // binding) is 0o10000003, the access mode with O_PATH
    ("O_ACCMODE", 0o3),
    ("O_APPEND", libc::O_APPEND as u64),
    ("O_ASYNC", libc::O_ASYNC as u64),
    ("O_CLOEXEC", libc::O_CLOEXEC as u64),
    ("O_CREAT", libc::O_CREAT as u64),
    ("O_DIRECT", libc::O_DIRECT as u64),
    ("O_DIRECTORY", libc::O_DIRECTORY as u64),
    ("O_DSYNC", libc::O_DSYNC as u64),
    ("O_EXCL", libc::O_EXCL as u64),
    // glibc's userspace O_LARGEFILE (libc::O_LARGEFILE) is 0 on x86_64; this is the kernel's flag bit (<asm-generic/fcntl.h>), which raw calls may pass
    ("O_LARGEFILE", 0o100000),
    ("O_NDELAY", libc::O_NDELAY as u64),
    ("O_NOATIME", libc::O_NOATIME as u64),
    ("O_NOCTTY", libc::O_NOCTTY as u64),
    ("O_NOFOLLOW", libc::O_NOFOLLOW as u64),
    ("O_NONBLOCK", libc::O_NONBLOCK as u64),
    ("O_PATH", libc::O_PATH as u64),
    ("O_RDONLY", libc::O_RDONLY as u64),
    ("O_RDWR", libc::O_RDWR as u64),
    ("O_RSYNC", libc::O_RSYNC as u64),
    ("O_SYNC", libc::O_SYNC as u64),
    ("O_TMPFILE", libc::O_TMPFILE as u64),
    ("O_TRUNC", libc::O_TRUNC as u64),
    ("O_WRONLY", libc::O_WRONLY as u64),
];

/// `mmap`/`mprotect` protections.
const PROT_FLAGS: &[(&str, u64)] = &[
    ("PROT_EXEC", libc::PROT_EXEC as u64),
    ("PROT_GROWSDOWN", libc::PROT_GROWSDOWN as u64),
    ("PROT_GROWSUP", libc::PROT_GROWSUP as u64),
    ("PROT_NONE", libc::PROT_NONE as u64),
    ("PROT_READ", libc::PROT_READ as u64),
    ("PROT_WRITE", libc::PROT_WRITE as u64),
];

/// `mmap` flags.
const MAP_FLAGS: &[(&str, u64)] = &[
    // x86 only (asm/mman.h); not in libc elsewhere, where the bit is unused
    ("MAP_32BIT", 0x40),
    ("MAP_ANON", libc::MAP_ANON as u64),
    ("MAP_ANONYMOUS", libc::MAP_ANONYMOUS as u64),
    ("MAP_DENYWRITE", libc::MAP_DENYWRITE as u64),
    ("MAP_DROPPABLE", libc::MAP_DROPPABLE as u64),
    ("MAP_EXECUTABLE", libc::MAP_EXECUTABLE as u64),
    ("MAP_FIXED", libc::MAP_FIXED as u64),
    ("MAP_FIXED_NOREPLACE", libc::MAP_FIXED_NOREPLACE as u64),
    ("MAP_GROWSDOWN", libc::MAP_GROWSDOWN as u64),
    ("MAP_HUGETLB", libc::MAP_HUGETLB as u64),
    ("MAP_LOCKED", libc::MAP_LOCKED as u64),
    ("MAP_NONBLOCK", libc::MAP_NONBLOCK as u64),
    ("MAP_NORESERVE", libc::MAP_NORESERVE as u64),
    ("MAP_POPULATE", libc::MAP_POPULATE as u64),
    ("MAP_PRIVATE", libc::MAP_PRIVATE as u64),
    ("MAP_SHARED", libc::MAP_SHARED as u64),
    ("MAP_SHARED_VALIDATE", libc::MAP_SHARED_VALIDATE as u64),
    ("MAP_STACK", libc::MAP_STACK as u64),
    ("MAP_SYNC", libc::MAP_SYNC as u64),
];

/// `prctl` options (argument 0).
const PRCTL_OPTIONS: &[(&str, u64)] = &[
    ("PR_CAPBSET_DROP", libc::PR_CAPBSET_DROP as u64),
    ("PR_CAPBSET_READ", libc::PR_CAPBSET_READ as u64),
    ("PR_CAP_AMBIENT", libc::PR_CAP_AMBIENT as u64),
    // not in libc for x86_64; <linux/prctl.h>
    ("PR_GET_AUXV", 0x4155_5856),
    ("PR_GET_CHILD_SUBREAPER", libc::PR_GET_CHILD_SUBREAPER as u64),
    ("PR_GET_DUMPABLE", libc::PR_GET_DUMPABLE as u64),
    ("PR_GET_ENDIAN", libc::PR_GET_ENDIAN as u64),
    ("PR_GET_FPEMU", libc::PR_GET_FPEMU as u64),
    ("PR_GET_FPEXC", libc::PR_GET_FPEXC as u64),
    ("PR_GET_FP_MODE", libc::PR_GET_FP_MODE as u64),
    // not in libc for x86_64; <linux/prctl.h>
    ("PR_GET_IO_FLUSHER", 58),
    ("PR_GET_KEEPCAPS", libc::PR_GET_KEEPCAPS as u64),
    ("PR_GET_MDWE", libc::PR_GET_MDWE as u64),
    ("PR_GET_MEMORY_MERGE", libc::PR_GET_MEMORY_MERGE as u64),
    ("PR_GET_NAME", libc::PR_GET_NAME as u64),
    ("PR_GET_NO_NEW_PRIVS", libc::PR_GET_NO_NEW_PRIVS as u64),
    ("PR_GET_PDEATHSIG", libc::PR_GET_PDEATHSIG as u64),
    ("PR_GET_SECCOMP", libc::PR_GET_SECCOMP as u64),
    ("PR_GET_SECUREBITS", libc::PR_GET_SECUREBITS as u64),
    // not in libc for every architecture; <linux/prctl.h>
    ("PR_GET_SPECULATION_CTRL", 52),
    ("PR_GET_THP_DISABLE", libc::PR_GET_THP_DISABLE as u64),
    ("PR_GET_TID_ADDRESS", libc::PR_GET_TID_ADDRESS as u64),
    ("PR_GET_TIMERSLACK", libc::PR_GET_TIMERSLACK as u64),
    ("PR_GET_TIMING", libc::PR_GET_TIMING as u64),
    ("PR_GET_TSC", libc::PR_GET_TSC as u64),
    ("PR_GET_UNALIGN", libc::PR_GET_UNALIGN as u64),
    ("PR_MCE_KILL", libc::PR_MCE_KILL as u64),
    ("PR_MCE_KILL_GET", libc::PR_MCE_KILL_GET as u64),
    (
        "PR_MPX_DISABLE_MANAGEMENT",
        libc::PR_MPX_DISABLE_MANAGEMENT as u64,
    ),
    ("PR_MPX_ENABLE_MANAGEMENT", libc::PR_MPX_ENABLE_MANAGEMENT as u64),
    ("PR_SCHED_CORE", libc::PR_SCHED_CORE as u64),
    ("PR_SET_CHILD_SUBREAPER", libc::PR_SET_CHILD_SUBREAPER as u64),
    ("PR_SET_DUMPABLE", libc::PR_SET_DUMPABLE as u64),
    ("PR_SET_ENDIAN", libc::PR_SET_ENDIAN as u64),
    ("PR_SET_FPEMU", libc::PR_SET_FPEMU as u64),
    ("PR_SET_FPEXC", libc::PR_SET_FPEXC as u64),
    ("PR_SET_FP_MODE", libc::PR_SET_FP_MODE as u64),
    // not in libc for x86_64; <linux/prctl.h>
    ("PR_SET_IO_FLUSHER", 57),
    ("PR_SET_KEEPCAPS", libc::PR_SET_KEEPCAPS as u64),
    ("PR_SET_MDWE", libc::PR_SET_MDWE as u64),
    ("PR_SET_MEMORY_MERGE", libc::PR_SET_MEMORY_MERGE as u64),
    ("PR_SET_MM", libc::PR_SET_MM as u64),
    ("PR_SET_NAME", libc::PR_SET_NAME as u64),
    ("PR_SET_NO_NEW_PRIVS", libc::PR_SET_NO_NEW_PRIVS as u64),
    ("PR_SET_PDEATHSIG", libc::PR_SET_PDEATHSIG as u64),
    ("PR_SET_PTRACER", libc::PR_SET_PTRACER as u64),
    ("PR_SET_SECCOMP", libc::PR_SET_SECCOMP as u64),
    ("PR_SET_SECUREBITS", libc::PR_SET_SECUREBITS as u64),
    // not in libc for every architecture; <linux/prctl.h>
    ("PR_SET_SPECULATION_CTRL", 53),
    // not in libc for x86_64; <linux/prctl.h>
    ("PR_SET_SYSCALL_USER_DISPATCH", 59),
    ("PR_SET_THP_DISABLE", libc::PR_SET_THP_DISABLE as u64),
    ("PR_SET_TIMERSLACK", libc::PR_SET_TIMERSLACK as u64),
    ("PR_SET_TIMING", libc::PR_SET_TIMING as u64),
    ("PR_SET_TSC", libc::PR_SET_TSC as u64),
    ("PR_SET_UNALIGN", libc::PR_SET_UNALIGN as u64),
    ("PR_SET_VMA", libc::PR_SET_VMA as u64),
    (
        "PR_TASK_PERF_EVENTS_DISABLE",
        libc::PR_TASK_PERF_EVENTS_DISABLE as u64,
    ),
    (
        "PR_TASK_PERF_EVENTS_ENABLE",
        libc::PR_TASK_PERF_EVENTS_ENABLE as u64,
    ),
];

/// `personality` values (argument 0).
const PERSONALITIES: &[(&str, u64)] = &[
    ("ADDR_NO_RANDOMIZE", libc::ADDR_NO_RANDOMIZE as u64),
    // not in libc; <linux/personality.h>
    ("PER_LINUX", 0),
    // not in libc; <linux/personality.h>
    ("PER_LINUX32", 0x0008),
    // cordon's name: personality(0xffffffff) only queries the persona
    ("PER_QUERY", 0xffff_ffff),
    ("READ_IMPLIES_EXEC", libc::READ_IMPLIES_EXEC as u64),
];

/// Every constant table; each is sorted by name and no name is in two.
const CONSTANT_TABLES: &[&[(&str, u64)]] = &[
    ADDRESS_FAMILIES,
    SOCKET_TYPES,
    NETLINK_PROTOCOLS,
    IOCTLS,
    SOCKET_IOCTLS,
    FS_IOCTLS,
    CLONE_FLAGS,
    OPEN_FLAGS,
    PROT_FLAGS,
    MAP_FLAGS,
    PRCTL_OPTIONS,
    PERSONALITIES,
];

/// A named constant usable as a syscall argument value, e.g. `"AF_UNIX"` -> 1.
pub fn constant(name: &str) -> Option<u64> {
    CONSTANT_TABLES
        .iter()
        .find_map(|t| t.binary_search_by(|&(n, _)| n.cmp(name)).ok().map(|i| t[i].1))
}

/// Every constant name (for listing and suggestions), sorted.
pub fn constant_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = CONSTANT_TABLES
        .iter()
        .flat_map(|t| t.iter().map(|&(n, _)| n))
        .collect();
    v.sort_unstable();
    v
}

/// Parse an argument value: a decimal or `0x` hex number, a named constant,
/// or several of these joined with `|` (bitwise or), e.g.
/// `"CLONE_NEWUSER|CLONE_NEWNS"`, `"0x541C"`, `"AF_UNIX"`. Whitespace around
/// each part is allowed. Unknown names give an error with a suggestion
/// (`unknown constant "AF_UNXI" (did you mean "AF_UNIX"?)`); a number that
/// does not fit in 64 bits is an error, and so is a decimal number with a
/// leading zero (it would look octal).
pub fn parse_value(s: &str) -> Result<u64, String> {
    let mut value = 0u64;
    for part in s.split('|') {
        value |= parse_one_value(part.trim())?;
    }
    Ok(value)
}

fn parse_one_value(p: &str) -> Result<u64, String> {
    let expected = "expected a number (decimal or 0x hex) or a constant such as \"AF_UNIX\"";
    let Some(first) = p.chars().next() else {
        return Err(format!("empty value: {expected}, several joined with '|'"));
    };
    if first.is_ascii_digit() {
        let (digits, radix) = match p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None => (p, 10),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return Err(format!("invalid number \"{p}\": {expected}"));
        }
        if radix == 10 && digits.len() > 1 && digits.starts_with('0') {
            return Err(format!(
                "\"{p}\" has a leading zero: write decimal without it, or hex with 0x (octal is not accepted)"
            ));
        }
        return u64::from_str_radix(digits, radix)
            .map_err(|_| format!("\"{p}\" does not fit in an unsigned 64-bit value"));
    }
    constant(p).ok_or_else(|| {
        let names = constant_names();
        format!("unknown constant \"{p}\"{}", hint(p, names.iter().copied()))
    })
}

/// ` (did you mean "x"?)` when there is a plausible correction, else empty.
fn hint<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(input, candidates)
        .map(|s| format!(" (did you mean \"{s}\"?)"))
        .unwrap_or_default()
}

/// The closest candidate to `input` by case-insensitive Levenshtein
/// distance, if it is close enough to be a plausible typo: a distance of at
/// most `max(1, input.len() / 3)`. Ties go to the first in iteration order.
pub fn suggest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let input: Vec<char> = input.chars().map(|c| c.to_ascii_lowercase()).collect();
    let limit = (input.len() / 3).max(1);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = distance(&input, c);
        if d <= limit && best.map_or(true, |(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Levenshtein distance between `a` (already lowercased) and `b`, ignoring
/// ASCII case.
fn distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    // One row of the dynamic-programming table at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_requests_have_names() {
        assert_eq!(ioctl_name(0x5401), Some("TCGETS"));
        assert_eq!(ioctl_name(ioctl_request(libc::TIOCSTI)), Some("TIOCSTI"));
        // The top 32 bits are not part of the request.
        assert_eq!(ioctl_name(0xffff_ffff_0000_5413), Some("TIOCGWINSZ"));
        // FIONREAD and TIOCINQ are one request.
        assert_eq!(ioctl_name(ioctl_request(libc::FIONREAD)), Some("FIONREAD"));
        assert_eq!(ioctl_name(libc::SIOCGIFFLAGS), Some("SIOCGIFFLAGS"));
        assert_eq!(ioctl_name(0x4004_9409), Some("FICLONE"));
        assert_eq!(ioctl_name(0x1234_5678), None);
        // Every name maps back to a value that names it (or its alias).
        for t in [IOCTLS, SOCKET_IOCTLS, FS_IOCTLS] {
            for &(n, v) in t {
                let back = ioctl_name(v).expect(n);
                assert_eq!(
                    constant(back).map(|x| x & 0xffff_ffff),
                    Some(v & 0xffff_ffff),
                    "{n}"
                );
            }
        }
    }

    #[test]
    fn tables_are_sorted_and_names_unique() {
        for t in CONSTANT_TABLES {
            for w in t.windows(2) {
                assert!(
                    w[0].0 < w[1].0,
                    "{} and {} out of order or repeated",
                    w[0].0,
                    w[1].0
                );
            }
        }
        let all = constant_names();
        for w in all.windows(2) {
            assert_ne!(w[0], w[1], "{} is in two tables", w[0]);
        }
        let mut errnos: Vec<&str> = ERRNOS.iter().map(|e| e.0).collect();
        errnos.sort_unstable();
        for w in errnos.windows(2) {
            assert_ne!(w[0], w[1], "errno {} listed twice", w[0]);
        }
        for w in ERRNOS.windows(2) {
            assert!(w[0].1 <= w[1].1, "{} and {} out of number order", w[0].0, w[1].0);
        }
        for arch in Arch::ALL {
            let table: Vec<(u32, &str)> = arch.syscalls().collect();
            let mut syscalls: Vec<&str> = table.iter().map(|s| s.1).collect();
            syscalls.sort_unstable();
            for w in syscalls.windows(2) {
                assert_ne!(w[0], w[1], "{arch}: syscall {} listed twice", w[0]);
            }
            for w in table.windows(2) {
                assert!(w[0].0 < w[1].0, "{arch}: syscall table not sorted at {}", w[1].1);
            }
        }
    }

    #[test]
    fn every_constant_is_found() {
        for t in CONSTANT_TABLES {
            for &(n, v) in *t {
                assert_eq!(constant(n), Some(v), "{n}");
                assert_eq!(parse_value(n), Ok(v), "{n}");
            }
        }
        assert_eq!(constant("af_unix"), None, "names are case-sensitive");
        assert_eq!(constant(""), None);
    }

    #[test]
    fn constants_match_libc() {
        let cases: &[(&str, u64)] = &[
            ("AF_UNSPEC", libc::AF_UNSPEC as u64),
            ("AF_UNIX", libc::AF_UNIX as u64),
            ("AF_LOCAL", libc::AF_UNIX as u64),
            ("AF_INET", libc::AF_INET as u64),
            ("AF_INET6", libc::AF_INET6 as u64),
            ("AF_NETLINK", libc::AF_NETLINK as u64),
            ("AF_PACKET", libc::AF_PACKET as u64),
            ("AF_VSOCK", libc::AF_VSOCK as u64),
            ("AF_DECnet", libc::AF_DECnet as u64),
            ("SOCK_STREAM", libc::SOCK_STREAM as u64),
            ("SOCK_CLOEXEC", libc::SOCK_CLOEXEC as u64),
            ("NETLINK_ROUTE", libc::NETLINK_ROUTE as u64),
            ("NETLINK_AUDIT", libc::NETLINK_AUDIT as u64),
            ("NETLINK_KOBJECT_UEVENT", libc::NETLINK_KOBJECT_UEVENT as u64),
            ("TIOCSTI", ioctl_request(libc::TIOCSTI)),
            ("TIOCLINUX", ioctl_request(libc::TIOCLINUX)),
            ("TCGETS", ioctl_request(libc::TCGETS)),
            ("FIONREAD", ioctl_request(libc::FIONREAD)),
            ("TIOCINQ", ioctl_request(libc::FIONREAD)),
            ("TIOCGPTPEER", ioctl_request(libc::TIOCGPTPEER)),
            ("CLONE_NEWUSER", libc::CLONE_NEWUSER as u64),
            ("CLONE_NEWNS", libc::CLONE_NEWNS as u64),
            ("CLONE_THREAD", libc::CLONE_THREAD as u64),
            ("O_RDONLY", libc::O_RDONLY as u64),
            ("O_CLOEXEC", libc::O_CLOEXEC as u64),
            ("O_TMPFILE", libc::O_TMPFILE as u64),
            ("PROT_EXEC", libc::PROT_EXEC as u64),
            ("MAP_ANONYMOUS", libc::MAP_ANONYMOUS as u64),
            ("MAP_ANON", libc::MAP_ANONYMOUS as u64),
            ("MAP_FIXED_NOREPLACE", libc::MAP_FIXED_NOREPLACE as u64),
            ("PR_SET_NO_NEW_PRIVS", libc::PR_SET_NO_NEW_PRIVS as u64),
            ("PR_SET_SECCOMP", libc::PR_SET_SECCOMP as u64),
            ("PR_SET_PTRACER", libc::PR_SET_PTRACER as u64),
            ("PR_SET_VMA", libc::PR_SET_VMA as u64),
            ("ADDR_NO_RANDOMIZE", libc::ADDR_NO_RANDOMIZE as u64),
            ("READ_IMPLIES_EXEC", libc::READ_IMPLIES_EXEC as u64),
        ];
        for &(n, v) in cases {
            assert_eq!(constant(n), Some(v), "{n}");
        }
        // Written out because libc has them only on some architectures.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(constant("MAP_32BIT"), Some(libc::MAP_32BIT as u64));
        // ... and these only in its glibc binding.
        #[cfg(all(target_arch = "x86_64", not(target_env = "musl")))]
        for (n, v) in [
            ("PR_GET_SPECULATION_CTRL", libc::PR_GET_SPECULATION_CTRL as u64),
            ("PR_SET_SPECULATION_CTRL", libc::PR_SET_SPECULATION_CTRL as u64),
        ] {
            assert_eq!(constant(n), Some(v), "{n}");
        }
    }

    #[test]
    fn constants_match_the_kernel_headers() {
        let cases: &[(&str, u64)] = &[
            ("TIOCSTI", 0x5412),
            ("TIOCLINUX", 0x541C),
            ("TCGETS", 0x5401),
            ("TCSETS", 0x5402),
            ("TIOCGWINSZ", 0x5413),
            ("FIONBIO", 0x5421),
            ("TIOCGPTN", 0x8004_5430),
            ("TIOCSPTLCK", 0x4004_5431),
            ("TIOCGPTPEER", 0x5441),
            ("CLONE_NEWUSER", 0x1000_0000),
            ("CLONE_NEWNS", 0x0002_0000),
            ("CLONE_NEWTIME", 0x80),
            ("CLONE_PIDFD", 0x1000),
            ("CLONE_IO", 0x8000_0000),
            ("CLONE_CLEAR_SIGHAND", 0x1_0000_0000),
            ("CLONE_INTO_CGROUP", 0x2_0000_0000),
            ("AF_NETLINK", 16),
            ("AF_KCM", 41),
            ("AF_QIPCRTR", 42),
            ("AF_SMC", 43),
            ("AF_XDP", 44),
            ("AF_MCTP", 45),
            ("AF_VSOCK", 40),
            ("SOCK_PACKET", 10),
            ("NETLINK_GENERIC", 16),
            ("NETLINK_SMC", 22),
            ("O_ACCMODE", 0o3),
            ("O_LARGEFILE", 0o100000),
            ("O_PATH", 0o10000000),
            ("MAP_32BIT", 0x40),
            ("MAP_SHARED_VALIDATE", 3),
            ("PR_SET_NO_NEW_PRIVS", 38),
            ("PR_SET_IO_FLUSHER", 57),
            ("PR_SET_SYSCALL_USER_DISPATCH", 59),
            ("PR_SET_VMA", 0x5356_4d41),
            ("PR_GET_AUXV", 0x4155_5856),
            ("PER_LINUX", 0),
            ("PER_LINUX32", 0x0008),
            ("PER_QUERY", 0xffff_ffff),
            ("ADDR_NO_RANDOMIZE", 0x0040000),
            ("READ_IMPLIES_EXEC", 0x0400000),
        ];
        for &(n, v) in cases {
            assert_eq!(constant(n), Some(v), "{n}");
        }
    }

    #[test]
    fn no_value_is_sign_extended() {
        // A negative libc constant cast with `as u64` would fill the high word.
        for t in CONSTANT_TABLES {
            for &(n, v) in *t {
                assert!(v <= 0xffff_ffff || n.starts_with("CLONE_"), "{n} = {v:#x}");
            }
        }
    }

    #[test]
    fn clone_flags_are_distinct_bits() {
        // Guards against a libc constant that silently overflowed.
        let mut seen = 0u64;
        for &(n, v) in CLONE_FLAGS {
            assert_eq!(v.count_ones(), 1, "{n} = {v:#x}");
            assert_eq!(seen & v, 0, "{n} = {v:#x} repeats a bit");
            seen |= v;
        }
    }

    #[test]
    fn values_combine_and_parse() {
        assert_eq!(parse_value("CLONE_NEWUSER|CLONE_NEWNS"), Ok(0x1002_0000));
        assert_eq!(parse_value(" CLONE_NEWUSER | CLONE_NEWNS "), Ok(0x1002_0000));
        assert_eq!(parse_value("O_RDWR|O_CREAT|0x80000"), Ok(2 | 0o100 | 0x80000));
        assert_eq!(parse_value("0x541C"), Ok(0x541C));
        assert_eq!(parse_value("0X541c"), Ok(0x541C));
        assert_eq!(parse_value("21532"), Ok(0x541C));
        assert_eq!(parse_value("0"), Ok(0));
        assert_eq!(parse_value("AF_UNIX"), Ok(1));
        assert_eq!(parse_value("0xffffffffffffffff"), Ok(u64::MAX));
        assert_eq!(parse_value("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "", " ", "|", "AF_UNIX|", "|AF_UNIX", "0x", "0xg", "12a", "-1", "+1", "1.5", "0755", "AF UNIX",
        ] {
            assert!(parse_value(bad).is_err(), "{bad:?} parsed");
        }
        let e = parse_value("0x1ffffffffffffffff").unwrap_err();
        assert!(e.contains("64-bit"), "{e}");
        let e = parse_value("18446744073709551616").unwrap_err();
        assert!(e.contains("64-bit"), "{e}");
        assert!(parse_value("0755").unwrap_err().contains("leading zero"));
    }

    #[test]
    fn unknown_constants_get_suggestions() {
        assert_eq!(
            parse_value("AF_UNXI").unwrap_err(),
            "unknown constant \"AF_UNXI\" (did you mean \"AF_UNIX\"?)"
        );
        assert_eq!(
            parse_value("CLONE_NEWUSER|CLONE_NEWUSR").unwrap_err(),
            "unknown constant \"CLONE_NEWUSR\" (did you mean \"CLONE_NEWUSER\"?)"
        );
        assert_eq!(
            parse_value("af_unix").unwrap_err(),
            "unknown constant \"af_unix\" (did you mean \"AF_UNIX\"?)"
        );
        assert_eq!(
            parse_value("TIOCST").unwrap_err(),
            "unknown constant \"TIOCST\" (did you mean \"TIOCSTI\"?)"
        );
        assert_eq!(
            parse_value("NOTHING_LIKE_IT").unwrap_err(),
            "unknown constant \"NOTHING_LIKE_IT\""
        );
    }

    #[test]
    fn errnos_round_trip() {
        for &(n, v) in ERRNOS {
            assert!((1..=4095).contains(&v), "{n}");
            assert_eq!(errno(n), Some(v), "{n}");
            assert_eq!(parse_errno(n), Ok(v), "{n}");
            assert_eq!(parse_errno(&v.to_string()), Ok(v), "{n}");
            let canonical = errno_name(v).unwrap();
            assert_eq!(errno(canonical), Some(v), "{n}");
            if !matches!(n, "EWOULDBLOCK" | "EDEADLOCK" | "ENOTSUP") {
                assert_eq!(canonical, n);
            }
        }
        assert_eq!(errno("EPERM"), Some(1));
        assert_eq!(errno("ENOSYS"), Some(38));
        assert_eq!(errno("EPERM"), Some(libc::EPERM as u16));
        assert_eq!(errno("EACCES"), Some(libc::EACCES as u16));
        assert_eq!(errno("ENOSYS"), Some(libc::ENOSYS as u16));
        assert_eq!(errno("EHWPOISON"), Some(133));
        assert_eq!(errno("eperm"), None);
        assert_eq!(errno_name(11), Some("EAGAIN"));
        assert_eq!(errno("EWOULDBLOCK"), Some(11));
        assert_eq!(errno_name(35), Some("EDEADLK"));
        assert_eq!(errno_name(95), Some("EOPNOTSUPP"));
        assert_eq!(errno("ENOTSUP"), Some(95));
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(41), None);
        assert_eq!(errno_name(4095), None);
    }

    #[test]
    fn errnos_parse() {
        assert_eq!(parse_errno("ENOSYS"), Ok(38));
        assert_eq!(parse_errno("38"), Ok(38));
        assert_eq!(parse_errno("4095"), Ok(4095));
        assert_eq!(parse_errno("1"), Ok(1));
        for bad in [
            "0",
            "4096",
            "65536",
            "99999999999999999999",
            "-1",
            "",
            "0x26",
            "E",
        ] {
            assert!(parse_errno(bad).is_err(), "{bad:?} parsed");
        }
        assert!(parse_errno("0").unwrap_err().contains("1 to 4095"));
        assert_eq!(
            parse_errno("EPERMM").unwrap_err(),
            "unknown errno \"EPERMM\" (did you mean \"EPERM\"?)"
        );
        assert_eq!(
            parse_errno("enosys").unwrap_err(),
            "unknown errno \"enosys\" (did you mean \"ENOSYS\"?)"
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn syscalls_both_ways() {
        for (nr, name) in Arch::X86_64.syscalls() {
            assert_eq!(syscall_nr(name), Some(nr), "{name}");
            assert_eq!(syscall_name(nr), Some(name), "{nr}");
            assert_eq!(parse_syscall(name), Ok(nr), "{name}");
        }
        assert_eq!(syscall_nr("openat"), Some(257));
        assert_eq!(syscall_nr("read"), Some(0));
        assert_eq!(syscall_nr("execve"), Some(59));
        assert_eq!(syscall_nr("clone3"), Some(435));
        assert_eq!(syscall_name(257), Some("openat"));
        assert_eq!(syscall_name(462), Some("mseal"));
        assert_eq!(syscall_nr("setxattrat"), Some(463));
        assert_eq!(syscall_name(466), Some("removexattrat"));
        assert_eq!(syscall_nr("socketcall"), None, "not on x86_64");
        assert_eq!(syscall_nr("OPENAT"), None);
        assert_eq!(syscall_name(469 + 1000), None);
        assert_eq!(syscall_name(u32::MAX), None);
    }

    #[test]
    fn unknown_syscalls_get_suggestions() {
        assert_eq!(
            parse_syscall("opnat").unwrap_err(),
            "unknown system call \"opnat\" (did you mean \"openat\"?)"
        );
        assert_eq!(
            parse_syscall("execv").unwrap_err(),
            "unknown system call \"execv\" (did you mean \"execve\"?)"
        );
        assert_eq!(
            parse_syscall("OPENAT").unwrap_err(),
            "unknown system call \"OPENAT\" (did you mean \"openat\"?)"
        );
        assert_eq!(
            parse_syscall("frobnicate").unwrap_err(),
            "unknown system call \"frobnicate\""
        );
        assert_eq!(
            parse_syscall_for(Arch::Aarch64, "open").unwrap_err(),
            "system call \"open\" does not exist on aarch64 (only on x86_64)"
        );
        assert_eq!(parse_syscall_for(Arch::Aarch64, "openat"), Ok(56));
    }

    #[test]
    fn suggestions() {
        let c = ["allow", "errno", "kill_process", "kill_thread", "trap", "log"];
        assert_eq!(suggest("alow", c), Some("allow"));
        assert_eq!(suggest("ALLOW", c), Some("allow"));
        assert_eq!(suggest("kill_proces", c), Some("kill_process"));
        assert_eq!(suggest("deny", c), None);
        // Ties go to the first candidate.
        assert_eq!(suggest("ab", ["aa", "bb", "ac"]), Some("aa"));
        // A closer candidate later wins.
        assert_eq!(suggest("abc", ["abd", "abc"]), Some("abc"));
        // The limit is max(1, len / 3).
        assert_eq!(suggest("abcdef", ["abxyzf"]), None);
        assert_eq!(suggest("abcdef", ["abcxyf"]), Some("abcxyf"));
        assert_eq!(suggest("abcdef", ["abcxef"]), Some("abcxef"));
        assert_eq!(suggest("abcdefghi", ["abcxyzghi"]), Some("abcxyzghi"));
        assert_eq!(suggest("x", ["y"]), Some("y"));
        assert_eq!(suggest("x", ["yz"]), None);
        assert_eq!(suggest("anything", std::iter::empty()), None);
        assert_eq!(distance(&['k', 'i', 't', 't', 'e', 'n'], "sitting"), 3);
        assert_eq!(distance(&[], "abc"), 3);
        assert_eq!(distance(&['a', 'b', 'c'], ""), 3);
    }
}
