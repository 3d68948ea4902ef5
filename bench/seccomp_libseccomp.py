#!/usr/bin/python3
"""Build a Docker/OCI seccomp profile with libseccomp and export the raw BPF.

Usage: bench/seccomp_libseccomp.py [--optimize 1|2] PROFILE.json OUT.bpf

Needs the `seccomp` Python module from libseccomp (Debian: python3-seccomp,
which is installed for /usr/bin/python3, not for other interpreters).

The filter is what Docker builds for a container without added capabilities
on x86_64, but for the native architecture only (no x86/x32 sub-arches):

  - default action: defaultAction (with defaultErrnoRet for SCMP_ACT_ERRNO);
  - an entry is skipped if it has includes.caps (no capabilities are added),
    if includes.arches does not name amd64, or if excludes.arches names amd64;
    entries with excludes.caps are kept (we hold none of those caps);
    includes.minKernel is ignored (the running kernel is newer than any in
    the profile);
  - every name of an entry gets one rule with all of the entry's args (AND);
    several rules of one syscall are ORed, as in libseccomp;
  - args use the SCMP_CMP_* operators; for SCMP_CMP_MASKED_EQ, `value` is the
    mask and `valueTwo` the datum, as in the OCI spec and libseccomp;
  - syscall names libseccomp does not know, or that do not exist on x86_64,
    are skipped (as Docker's runc/libseccomp-golang do); their count (and
    the unknown names) go to stderr.  libseccomp 2.5.4 does not know the
    newest x86_64 calls in the profile (e.g. mseal, statmount, listmount,
    *xattrat, uretprobe): they are refused by this filter, not allowed.

libseccomp's attributes are left at their defaults (so the program is what a
plain seccomp_export_bpf() gives: a linear list of syscall checks) unless
--optimize 2 asks for CTL_OPTIMIZE=2 (binary tree of syscall numbers,
libseccomp >= 2.5).  The program is written with SyscallFilter.export_bpf().
Summary lines go to stderr.
"""

import json
import sys

try:
    import seccomp
except ImportError as e:  # pragma: no cover - environment check
    sys.exit(
        f"seccomp_libseccomp.py: cannot import the libseccomp Python module ({e}); "
        "install python3-seccomp and run with /usr/bin/python3"
    )

ARCH = "amd64"  # Docker/Go name of x86_64 in includes/excludes.arches

OPS = {
    "SCMP_CMP_NE": seccomp.NE,
    "SCMP_CMP_LT": seccomp.LT,
    "SCMP_CMP_LE": seccomp.LE,
    "SCMP_CMP_EQ": seccomp.EQ,
    "SCMP_CMP_GE": seccomp.GE,
    "SCMP_CMP_GT": seccomp.GT,
    "SCMP_CMP_MASKED_EQ": seccomp.MASKED_EQ,
}


def action(name, errno_ret, default_errno):
    if name == "SCMP_ACT_ALLOW":
        return seccomp.ALLOW
    if name == "SCMP_ACT_ERRNO":
        e = errno_ret if errno_ret is not None else default_errno
        if e is None:
            e = 1  # EPERM, as runc
        return seccomp.ERRNO(e)
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return seccomp.KILL
    if name == "SCMP_ACT_KILL_PROCESS":
        return seccomp.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return seccomp.TRAP
    if name == "SCMP_ACT_LOG":
        return seccomp.LOG
    if name == "SCMP_ACT_TRACE":
        return seccomp.TRACE(errno_ret if errno_ret is not None else 0)
    raise ValueError(f"unsupported action {name}")


def wanted(entry):
    inc = entry.get("includes") or {}
    exc = entry.get("excludes") or {}
    if inc.get("caps"):
        return False
    if inc.get("arches") and ARCH not in inc["arches"]:
        return False
    if ARCH in (exc.get("arches") or []):
        return False
    return True


def build(profile, optimize):
    default_errno = profile.get("defaultErrnoRet")
    f = seccomp.SyscallFilter(action(profile["defaultAction"], None, default_errno))
    # The filter starts with the native arch (x86_64) only; that is all we add.
    if optimize:
        f.set_attr(seccomp.Attr.CTL_OPTIMIZE, optimize)
    rules = skipped_entries = 0
    unknown = set()  # names this libseccomp does not know at all
    foreign = set()  # names that are not syscalls on x86_64
    for entry in profile.get("syscalls", []):
        if not wanted(entry):
            skipped_entries += 1
            continue
        act = action(entry["action"], entry.get("errnoRet"), default_errno)
        args = []
        for a in entry.get("args") or []:
            op = OPS[a["op"]]
            args.append(seccomp.Arg(a["index"], op, a["value"], a.get("valueTwo", 0)))
        for name in entry["names"]:
            try:
                nr = seccomp.resolve_syscall(seccomp.Arch.NATIVE, name)
            except Exception:  # noqa: BLE001 - treat like an unknown name
                nr = -1
            if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp
                unknown.add(name)
                continue
            if nr < 0:  # a pseudo-syscall number: not a syscall on x86_64
                foreign.add(name)
                continue
            f.add_rule(act, name, *args)
            rules += 1
    return f, rules, skipped_entries, unknown, foreign


def library_version():
    """libseccomp's run-time version, from seccomp_version() (C API)."""
    import ctypes

    class Ver(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
        lib.seccomp_version.restype = ctypes.POINTER(Ver)
        v = lib.seccomp_version().contents
        return f"{v.major}.{v.minor}.{v.micro}"
    except (OSError, AttributeError, ValueError):
        return "unknown"


def main(argv):
    optimize = 0
    args = argv[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    if args[:1] == ["--optimize"]:
        if len(args) < 2 or args[1] not in ("1", "2"):
            sys.exit("seccomp_libseccomp.py: --optimize takes 1 or 2")
        optimize = int(args[1])
        args = args[2:]
    if len(args) != 2:
        sys.exit("usage: seccomp_libseccomp.py [--optimize 1|2] PROFILE.json OUT.bpf")
    src, out = args
    with open(src) as fh:
        profile = json.load(fh)
    f, rules, skipped, unknown, foreign = build(profile, optimize)
    with open(out, "wb") as fh:
        f.export_bpf(fh)
    print(
        f"seccomp_libseccomp.py: libseccomp {library_version()}, "
        f"optimize={optimize or 'default'}: {rules} rules, {skipped} profile entries "
        f"skipped (caps/arches), {len(foreign)} names not on x86_64 skipped, "
        f"{len(unknown)} names unknown to this libseccomp skipped: {' '.join(sorted(unknown))}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
