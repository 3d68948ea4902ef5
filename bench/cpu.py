#!/usr/bin/env python3
"""CPU cost of one launch, counted machine-wide.

Usage: bench/cpu.py [-r ROUNDS] [-b BATCH] NAME='command line'...

Runs BATCH launches of each case in turn (the first case first in round 1,
the second first in round 2, ...), ROUNDS timed rounds after one warm-up
round, and reads the machine's busy CPU time (/proc/stat: user, nice,
system, irq and softirq of all CPUs) before and after each batch. The
result per case is busy CPU time per launch, in microseconds, and the same
less the first case's (give bare /bin/true first: the harness's own fork
and exec are then subtracted).

Counted machine-wide because a sandbox's CPU time is not all in the
process one waits for: `cordon run` returns on init's report before the
kernel has finished tearing the sandbox down, network namespaces are freed
by a kernel worker, and perf stat's task-clock misses both. Run it on an
otherwise idle machine; /proc/stat counts in clock ticks (usually 10 ms),
so use enough launches (the default is 40 x 20 = 800 per case).
"""
import os
import shlex
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def busy_ns():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    # user nice system idle iowait irq softirq: all but idle and iowait
    return (v[0] + v[1] + v[2] + v[5] + v[6]) * 1_000_000_000 // HZ


def main(argv):
    rounds, batch, cases = 40, 20, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-r", "-b") and i + 1 < len(argv):
            n = int(argv[i + 1])
            if n < 1:
                sys.exit(f"cpu.py: {a} needs a positive number")
            rounds, batch = (n, batch) if a == "-r" else (rounds, n)
            i += 2
            continue
        if a in ("-h", "--help"):
            print(__doc__.strip())
            return
        name, sep, cmd = a.partition("=")
        if not sep or not name or not cmd.strip():
            sys.exit(f"cpu.py: expected NAME='command line', got {a!r} (see --help)")
        cases.append((name, shlex.split(cmd)))
        i += 1
    if not cases:
        sys.exit("cpu.py: no cases (see --help)")
    load_before = open("/proc/loadavg").read().split()[:3]
    cpu = {n: 0 for n, _ in cases}
    wall = {n: 0 for n, _ in cases}
    for r in range(rounds + 1):
        k = r % len(cases)
        for name, cmd in cases[k:] + cases[:k]:
            c0, w0 = busy_ns(), time.perf_counter_ns()
            for _ in range(batch):
                subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, check=True)
            c1, w1 = busy_ns(), time.perf_counter_ns()
            if r > 0:
                cpu[name] += c1 - c0
                wall[name] += w1 - w0
    n = rounds * batch
    first = cases[0][0]
    load_after = open("/proc/loadavg").read().split()[:3]
    print(f"{n} launches per case; load average before {' '.join(load_before)}, after {' '.join(load_after)}")
    print(f"{'case':14s} {'cpu us':>9s} {'- ' + first:>12s} {'wall us':>9s}")
    for name, _ in cases:
        print(f"{name:14s} {cpu[name] / n / 1000:9.0f} {(cpu[name] - cpu[first]) / n / 1000:12.0f} {wall[name] / n / 1000:9.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
