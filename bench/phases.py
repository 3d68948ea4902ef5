#!/usr/bin/env python3
"""Where a launch's wall time goes, phase by phase, for cordon and bubblewrap.

Usage: bench/phases.py [-n RUNS] [--cordon PATH] [NAME='command line'...]

Runs each case RUNS times (default 100; cases alternate, one launch each
per round) under `perf record` with a handful of scheduler and system-call
tracepoints, which cost a few microseconds per event, not per system call.
Without cases: `cordon` (PATH run -- /bin/true; PATH defaults to the
release build in target/) and `bwrap` (the bwrap command of launch.sh).
A case's command must run /bin/true as its payload.

For every launch it finds, in the tracepoints of the launched process and
its descendants:

  exec      the execve of the tool until it returns
  start     until the tool's own process first calls clone3, or clone
            with a CLONE_NEW* flag (the clone that makes the namespaces,
            for cordon and bwrap): the start-up, the command line, the
            policy and the plan
  root      until the first pivot_root (by any descendant): the
            namespaces, the id maps and building the new root
  restrict  until the payload's execve: what follows pivot_root (the
            network, Landlock, seccomp...) and starting the payload
  payload   the payload (/bin/true) from its execve to its exit
  after     from the payload's exit until the tool's own process exits
  total     from the tool's execve to its exit

and prints the median of each phase per case (launches in which a phase's
events are missing are left out of that phase and counted). Needs root
and `perf` (linux-perf). Numbers include the tracepoints' own cost (a few
microseconds per event); compare cases within one run.
"""
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

BWRAP = (
    "bwrap --unshare-all --ro-bind /usr /usr --symlink usr/bin /bin "
    "--symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev "
    "--die-with-parent /bin/true"
)
EVENTS = [
    "sched:sched_process_fork",
    "sched:sched_process_exit",
    "syscalls:sys_enter_execve",
    "syscalls:sys_exit_execve",
    "syscalls:sys_enter_clone",
    "syscalls:sys_enter_clone3",
    "syscalls:sys_enter_pivot_root",
]
PHASES = ["exec", "start", "root", "restrict", "payload", "after", "total"]
# Any CLONE_NEW* flag: a clone that makes namespaces.
CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080
LINE = re.compile(r"\s*(.+?)\s+(\d+)\s+\[\d+\]\s+([\d.]+):\s+(\S+):\s*(.*)")


def usage(msg):
    sys.exit(f"phases.py: {msg}\n{__doc__.splitlines()[2]}")


def parse_args(argv):
    runs, cordon, cases = 100, None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-n", "--runs") and i + 1 < len(argv):
            try:
                runs = int(argv[i + 1])
            except ValueError:
                usage(f"{a}: expected a number, got {argv[i + 1]!r}")
            if runs < 1:
                usage(f"{a}: expected at least 1")
            i += 2
        elif a == "--cordon" and i + 1 < len(argv):
            cordon = argv[i + 1]
            i += 2
        elif a in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        elif "=" in a and not a.startswith("-"):
            name, cmd = a.split("=", 1)
            if not name or not cmd.strip():
                usage(f"{a!r}: expected NAME='command line'")
            cases.append((name, shlex.split(cmd)))
            i += 1
        else:
            usage(f"unexpected argument {a!r}")
    if not cases:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        cordon = cordon or os.path.join(root, "target/x86_64-unknown-linux-gnu/release/cordon")
        if not os.access(cordon, os.X_OK):
            usage(f"{cordon}: not an executable (build it: cargo build --release, or give --cordon PATH)")
        cases = [("cordon", [cordon, "run", "--", "/bin/true"]), ("bwrap", shlex.split(BWRAP))]
    return runs, cases


def record(runs, cases, work):
    """Run the cases under perf; return perf script's lines and the pids
    of each case's launches (the driver writes them)."""
    driver = os.path.join(work, "driver.py")
    with open(driver, "w") as f:
        f.write(
            "import subprocess, sys\n"
            f"cases = {[c for _, c in cases]!r}\n"
            f"runs = {runs}\n"
            "log = open(sys.argv[1], 'w')\n"
            "for r in range(runs + 2):\n"
            "    for i, c in enumerate(cases):\n"
            "        p = subprocess.Popen(c, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "        p.wait()\n"
            "        if r >= 2:\n"
            "            log.write(f'{i} {p.pid} {p.returncode}\\n')\n"
            "log.close()\n"
        )
    pids = os.path.join(work, "pids")
    data = os.path.join(work, "perf.data")
    cmd = ["perf", "record", "-q", "-a", "-o", data]
    for e in EVENTS:
        cmd += ["-e", e]
    cmd += ["--", sys.executable, driver, pids]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    script = subprocess.run(
        ["perf", "script", "-i", data, "-F", "comm,pid,cpu,time,event,trace"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    launches = []
    with open(pids) as f:
        for line in f:
            i, pid, rc = line.split()
            launches.append((int(i), int(pid), int(rc)))
    return script, launches


def events_by_tree(script):
    """Events per pid, and each pid's parent (from the fork tracepoint)."""
    by_pid, parent = {}, {}
    for line in script:
        m = LINE.match(line)
        if not m:
            continue
        comm, pid, t, ev, rest = m.groups()
        pid, t, ev = int(pid), float(t) * 1e6, ev.split(":")[-1]
        if ev == "sched_process_fork":
            # The event is the parent's: "comm=.. pid=.. child_comm=.. child_pid=..".
            f = re.search(r"child_pid=(\d+)", rest)
            if f:
                parent[int(f.group(1))] = pid
            continue
        by_pid.setdefault(pid, []).append((t, ev, comm, rest))
    return by_pid, parent


def phases_of(root, by_pid, parent):
    """The phase durations (microseconds) of the launch whose tool process is `root`."""
    tree = {root}
    changed = True
    while changed:
        changed = False
        for child, par in parent.items():
            if par in tree and child not in tree:
                tree.add(child)
                changed = True
    mine = sorted((t, ev, comm, rest, pid) for pid in tree for (t, ev, comm, rest) in by_pid.get(pid, []))
    p = {}
    for t, ev, comm, rest, pid in mine:
        if pid == root:
            # The first execve tried (a PATH search may try several) to the
            # one that succeeded.
            if ev == "sys_enter_execve" and "exec0" not in p:
                p["exec0"] = t
            elif ev == "sys_exit_execve" and rest.strip() == "0x0" and "exec1" not in p:
                p["exec1"] = t
            elif ev == "sys_enter_clone3" and "clone" not in p:
                p["clone"] = t
            elif ev == "sys_enter_clone" and "clone" not in p:
                f = re.search(r"clone_flags: (0x[0-9a-f]+)", rest)
                if f and int(f.group(1), 16) & CLONE_NEW:
                    p["clone"] = t
            elif ev == "sched_process_exit":
                p["end"] = t
        else:
            if ev == "sys_enter_pivot_root" and "pivot" not in p:
                p["pivot"] = t
            elif ev == "sys_enter_execve" and "pexec" not in p and "pivot" in p:
                p["pexec"] = t
            elif ev == "sched_process_exit" and comm == "true" and "pexit" not in p:
                p["pexit"] = t
    spans = {
        "exec": ("exec0", "exec1"),
        "start": ("exec1", "clone"),
        "root": ("clone", "pivot"),
        "restrict": ("pivot", "pexec"),
        "payload": ("pexec", "pexit"),
        "after": ("pexit", "end"),
        "total": ("exec0", "end"),
    }
    out = {}
    for name, (a, b) in spans.items():
        if a in p and b in p and p[b] >= p[a]:
            out[name] = p[b] - p[a]
    return out


def main(argv):
    if os.geteuid() != 0:
        sys.exit("phases.py: run as root (perf records every CPU's tracepoints)")
    if not shutil.which("perf"):
        sys.exit("phases.py: perf not found (apt-get install linux-perf)")
    runs, cases = parse_args(argv)
    work = tempfile.mkdtemp(prefix="cordon-phases-")
    try:
        script, launches = record(runs, cases, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    by_pid, parent = events_by_tree(script)
    results = {name: {ph: [] for ph in PHASES} for name, _ in cases}
    failed = {name: 0 for name, _ in cases}
    for i, pid, rc in launches:
        name = cases[i][0]
        if rc != 0:
            failed[name] += 1
            continue
        for ph, v in phases_of(pid, by_pid, parent).items():
            results[name][ph].append(v)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(f"{runs} launches per case; load average after: {load}; medians in microseconds")
    print(f"{'phase':10s}" + "".join(f"{name:>14s}" for name, _ in cases))
    for ph in PHASES:
        row = f"{ph:10s}"
        for name, _ in cases:
            v = results[name][ph]
            row += f"{statistics.median(v):14.0f}" if v else f"{'-':>14s}"
        print(row)
    for name, cmd in cases:
        counted = {ph: len(results[name][ph]) for ph in PHASES}
        short = [f"{ph} {n}" for ph, n in counted.items() if n < runs - failed[name]]
        note = f"; phases seen in fewer launches: {', '.join(short)}" if short else ""
        print(f"  {name}: {shlex.join(cmd)} ({failed[name]} failed{note})")


if __name__ == "__main__":
    main(sys.argv[1:])
