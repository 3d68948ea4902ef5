#!/usr/bin/env bash
# Benchmark cordon's seccomp compiler against libseccomp on the Docker default
# profile: program size, longest path, and the cost per system call.
#
# Usage: bench/seccomp.sh [-r ROUNDS] [-n ITERS] [-b BATCHES] [--cordon PATH]
#                         [--profile FILE] [--cordon-policy FILE|default]
#
# Programs: no filter, cordon's (the profile imported with `cordon seccomp
# import`, compiled with `cordon seccomp compile --format raw`), libseccomp's
# with default settings, and libseccomp's with CTL_OPTIMIZE=2 (binary tree) if
# the installed libseccomp offers it.  bench/seccomp_bench.c installs each
# program and times getppid (allowed), personality(0xffffffff) (allowed by an
# argument check) and syslog(SIZE_BUFFER) (refused with EPERM).  Each program
# runs in its own process (a filter cannot be removed); the programs alternate
# in ROUNDS rounds, pinned to CPU 1 with taskset if possible.  Results go to
# stdout as a table and to bench/results/seccomp-<UTC>.json; the programs,
# the policy and the benchmark binary stay in bench/results/seccomp-<UTC>/.
#
# Meant to be run as root on Debian 12.  Installs libseccomp-dev and
# python3-seccomp with apt-get if the seccomp Python module is missing; no
# other network use.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: bench/seccomp.sh [OPTIONS]

Compare cordon's seccomp program for the Docker default profile with
libseccomp's: instructions, longest path, and ns per syscall for getppid
(allowed), personality(0xffffffff) (allowed by an argument check) and
syslog(SYSLOG_ACTION_SIZE_BUFFER) (refused, EPERM), with no filter as baseline.

Options:
  -r, --rounds ROUNDS   rounds; each runs every program once, in its own
                        process (default 11)
  -n, --iters ITERS     calls per timed batch (default 200000)
  -b, --batches N       timed batches per process; a process reports the
                        median batch (default 5)
  --cordon PATH         cordon binary (default: target/x86_64-unknown-linux-gnu/release/cordon
                        in the repo root, built with `cargo build --release` if missing)
  --profile FILE        Docker/OCI profile (default:
                        /work/shared/data/docker-default-seccomp.json)
  --cordon-policy FILE  compile this cordon policy instead of importing the
                        profile; `default` means cordon's built-in policy.
                        The row is then labelled with the policy, and it is
                        not the same profile as libseccomp's (development aid)
  -h, --help            show this help

Environment:
  PYTHON                python3 with the libseccomp module (default /usr/bin/python3)
  CC                    C compiler (default cc)
EOF
}

die() {
    printf 'seccomp.sh: error: %s\n' "$*" >&2
    exit 1
}

warn() {
    printf 'seccomp.sh: warning: %s\n' "$*" >&2
}

# apt_install PKG...: as in launch.sh; apt output goes to stderr.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    export DEBIAN_FRONTEND=noninteractive
    printf 'seccomp.sh: installing %s with apt-get\n' "$*" >&2
    if apt-get install -y "$@" >&2; then
        return 0
    fi
    warn "apt-get install $* failed; running apt-get update and retrying"
    apt-get update >&2 && apt-get install -y "$@" >&2
}

# abs_path PATH: absolute form of PATH, resolved against the caller's cwd.
abs_path() {
    local p=$1
    if [[ $p != */* ]]; then
        p=$(type -P -- "$p") || p=""
        [[ $p == /* ]] || die "not found in PATH: $1 (use ./$1 for a file in the current directory)"
        printf '%s\n' "$p"
        return
    fi
    [[ $p == /* ]] || p="$PWD/${p#./}"
    printf '%s\n' "$p"
}

# shell-quoted command line, for the report
cmdline() {
    local out="" w
    for w in "$@"; do
        out+="${out:+ }$(printf '%q' "$w")"
    done
    printf '%s\n' "$out"
}

# run CMD...: log the exact command line (for the report), then run it.
COMMANDS=()
run() {
    COMMANDS+=("$(cmdline "$@")")
    "$@"
}

# ---------------------------------------------------------------- arguments --
ROUNDS=11
ITERS=200000
BATCHES=5
CORDON=""
PROFILE=/work/shared/data/docker-default-seccomp.json
CORDON_POLICY=""

need_value() {
    [[ $# -ge 2 ]] || die "option $1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        -r | --rounds) need_value "$@"; ROUNDS=$2; shift 2 ;;
        --rounds=*) ROUNDS=${1#--rounds=}; shift ;;
        -n | --iters) need_value "$@"; ITERS=$2; shift 2 ;;
        --iters=*) ITERS=${1#--iters=}; shift ;;
        -b | --batches) need_value "$@"; BATCHES=$2; shift 2 ;;
        --batches=*) BATCHES=${1#--batches=}; shift ;;
        --cordon) need_value "$@"; CORDON=$2; shift 2 ;;
        --cordon=*) CORDON=${1#--cordon=}; shift ;;
        --profile) need_value "$@"; PROFILE=$2; shift 2 ;;
        --profile=*) PROFILE=${1#--profile=}; shift ;;
        --cordon-policy) need_value "$@"; CORDON_POLICY=$2; shift 2 ;;
        --cordon-policy=*) CORDON_POLICY=${1#--cordon-policy=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done

for v in ROUNDS ITERS BATCHES; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done

# Resolve user paths against the caller's cwd before moving to the repo root.
[[ -z $CORDON ]] || CORDON=$(abs_path "$CORDON")
[[ -f $PROFILE ]] || die "profile not found: $PROFILE"
PROFILE=$(abs_path "$PROFILE")
if [[ -n $CORDON_POLICY && $CORDON_POLICY != default ]]; then
    [[ -f $CORDON_POLICY ]] || die "cordon policy not found: $CORDON_POLICY"
    CORDON_POLICY=$(abs_path "$CORDON_POLICY")
fi

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
cd -- "$ROOT"

if [[ $EUID -ne 0 ]]; then
    warn "not running as root; apt-get installs will fail and syslog may be refused without a filter"
fi

# -------------------------------------------------------------- tool checks --
PYTHON=${PYTHON:-/usr/bin/python3}
[[ -x $PYTHON ]] || die "python3 not found at $PYTHON (set PYTHON)"
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 || die "C compiler '$CC' not found (apt-get install gcc, or set CC)"

if ! "$PYTHON" -c 'import seccomp' 2>/dev/null; then
    apt_install libseccomp-dev python3-seccomp || die "could not install libseccomp-dev python3-seccomp"
    "$PYTHON" -c 'import seccomp' 2>/dev/null \
        || die "$PYTHON cannot import seccomp even after installing python3-seccomp (Debian installs it for /usr/bin/python3 only)"
fi

if [[ -z $CORDON ]]; then
    CORDON="$ROOT/target/x86_64-unknown-linux-gnu/release/cordon"
    if [[ ! -x $CORDON ]]; then
        printf 'seccomp.sh: %s missing; running cargo build --release\n' "$CORDON" >&2
        command -v cargo >/dev/null 2>&1 || die "cargo not found; build cordon or pass --cordon PATH"
        run cargo build --release >&2 || die "cargo build --release failed"
        [[ -x $CORDON ]] \
            || die "cargo build succeeded but $CORDON does not exist (CARGO_TARGET_DIR set?); pass --cordon PATH"
    fi
fi
[[ -f $CORDON && -x $CORDON ]] || die "cordon binary is not an executable file: $CORDON"

PIN=()
if command -v taskset >/dev/null 2>&1 && taskset -c 1 true 2>/dev/null; then
    PIN=(taskset -c 1)
else
    warn "taskset -c 1 unavailable (no taskset, or no CPU 1); running unpinned"
fi

# ------------------------------------------------------------------ programs --
TIMESTAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR="$ROOT/bench/results"
mkdir -p -- "$RESULTS_DIR"
if [[ ! -e $RESULTS_DIR/.gitignore ]]; then
    printf '*\n!.gitignore\n' >"$RESULTS_DIR/.gitignore"
fi
WORK="$RESULTS_DIR/seccomp-$TIMESTAMP"
mkdir -- "$WORK"
OUT="$RESULTS_DIR/seccomp-$TIMESTAMP.json"

BENCH="$WORK/seccomp_bench"
run "$CC" -O2 -Wall -o "$BENCH" bench/seccomp_bench.c >&2 || die "compiling bench/seccomp_bench.c failed"

# cordon: import the profile into a policy, compile it to raw BPF.
CORDON_BPF="$WORK/cordon.bpf"
CORDON_ERR="$WORK/cordon-stderr.txt"
if [[ -z $CORDON_POLICY ]]; then
    CORDON_LABEL="cordon"
    POLICY_JSON="$WORK/docker-policy.json"
    COMMANDS+=("$(cmdline "$CORDON" seccomp import "$PROFILE") > $(printf '%q' "$POLICY_JSON")")
    if ! "$CORDON" seccomp import "$PROFILE" >"$POLICY_JSON" 2>"$CORDON_ERR"; then
        sed 's/^/    | /' "$CORDON_ERR" >&2
        die "\`cordon seccomp import\` failed (see above; is $CORDON up to date? cargo build --release);" \
            "pass --cordon-policy FILE|default to benchmark another policy"
    fi
    [[ -s $POLICY_JSON ]] || die "\`cordon seccomp import\` printed no policy"
    POLICY_ARGS=(--policy "$POLICY_JSON")
elif [[ $CORDON_POLICY == default ]]; then
    CORDON_LABEL="cordon (built-in policy)"
    POLICY_ARGS=()
else
    CORDON_LABEL="cordon ($(basename -- "$CORDON_POLICY"))"
    POLICY_ARGS=(--policy "$CORDON_POLICY")
fi
if ! run "$CORDON" seccomp compile "${POLICY_ARGS[@]}" --format raw -o "$CORDON_BPF" 2>>"$CORDON_ERR"; then
    sed 's/^/    | /' "$CORDON_ERR" >&2
    die "\`cordon seccomp compile --format raw\` failed (see above; is $CORDON up to date?)"
fi
[[ -s $CORDON_BPF ]] || die "\`cordon seccomp compile\` wrote an empty program"

# libseccomp: default settings, then CTL_OPTIMIZE=2 if this libseccomp has it.
LS_BPF="$WORK/libseccomp.bpf"
LS_ERR="$WORK/libseccomp-stderr.txt"
run "$PYTHON" bench/seccomp_libseccomp.py "$PROFILE" "$LS_BPF" 2>"$LS_ERR" \
    || { sed 's/^/    | /' "$LS_ERR" >&2; die "bench/seccomp_libseccomp.py failed (see above)"; }
LS2_BPF="$WORK/libseccomp-opt2.bpf"
LS2_ERR="$WORK/libseccomp-opt2-stderr.txt"
HAVE_LS2=1
if ! run "$PYTHON" bench/seccomp_libseccomp.py --optimize 2 "$PROFILE" "$LS2_BPF" 2>"$LS2_ERR"; then
    warn "libseccomp CTL_OPTIMIZE=2 unavailable; skipping that row: $(tail -n 1 "$LS2_ERR")"
    unset 'COMMANDS[${#COMMANDS[@]}-1]'
    HAVE_LS2=0
fi

# Program statistics (one tool for every program).
STATS_FILES=("$CORDON_BPF" "$LS_BPF")
[[ $HAVE_LS2 == 0 ]] || STATS_FILES+=("$LS2_BPF")
COMMANDS+=("$(cmdline "$PYTHON" bench/bpf_stats.py "${STATS_FILES[@]}")")
STATS=$("$PYTHON" bench/bpf_stats.py "${STATS_FILES[@]}") || die "bench/bpf_stats.py failed"

# ----------------------------------------------------------------- measure --
GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || GIT_REV=unknown
if [[ $GIT_REV != unknown ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
    GIT_REV="$GIT_REV-dirty"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1) || true

export BENCH_TIMESTAMP=$TIMESTAMP BENCH_GIT_REV=$GIT_REV BENCH_CPU=${CPU_MODEL:-unknown}
export BENCH_KERNEL BENCH_NPROC BENCH_SSB
BENCH_KERNEL=$(uname -r)
BENCH_NPROC=$(nproc)
BENCH_SSB=$(cat /sys/devices/system/cpu/vulnerabilities/spec_store_bypass 2>/dev/null) || BENCH_SSB=unknown
export BENCH_CORDON=$CORDON BENCH_PROFILE=$PROFILE BENCH_OUT=$OUT BENCH_WORK=$WORK
export BENCH_ROUNDS=$ROUNDS BENCH_ITERS=$ITERS BENCH_BATCHES=$BATCHES
export BENCH_BIN=$BENCH BENCH_STATS=$STATS BENCH_CORDON_LABEL=$CORDON_LABEL
export BENCH_CORDON_BPF=$CORDON_BPF BENCH_LS_BPF=$LS_BPF BENCH_LS2_BPF=$LS2_BPF BENCH_HAVE_LS2=$HAVE_LS2
export BENCH_CORDON_ERR=$CORDON_ERR BENCH_LS_ERR=$LS_ERR BENCH_LS2_ERR=$LS2_ERR
BENCH_PIN=$(cmdline "${PIN[@]}")
BENCH_COMMANDS=$(printf '%s\n' "${COMMANDS[@]}")
export BENCH_PIN BENCH_COMMANDS

exec "$PYTHON" - <<'PYEOF'
import json
import os
import re
import shlex
import statistics
import subprocess
import sys

env = os.environ
ROUNDS = int(env["BENCH_ROUNDS"])
ITERS = int(env["BENCH_ITERS"])
BATCHES = int(env["BENCH_BATCHES"])
PIN = shlex.split(env["BENCH_PIN"])
BIN = env["BENCH_BIN"]
OUT = env["BENCH_OUT"]
CALLS = ["getppid", "personality", "syslog"]
TARGET_INSNS, TARGET_PATH = 96, 20


def die(msg):
    sys.stdout.flush()
    print(f"seccomp.sh: error: {msg}", file=sys.stderr)
    sys.exit(1)


def tail(path, n=3):
    try:
        with open(path) as f:
            return [ln.rstrip("\n") for ln in f if ln.strip()][-n:]
    except OSError:
        return []


stats = {}
for line in env["BENCH_STATS"].splitlines():
    kv = dict(w.split("=", 1) for w in line.split())
    stats[kv["file"]] = (int(kv["insns"]), int(kv["longest_path"]))

programs = [("no filter", "-"),
            (env["BENCH_CORDON_LABEL"], env["BENCH_CORDON_BPF"]),
            ("libseccomp (default)", env["BENCH_LS_BPF"])]
if env["BENCH_HAVE_LS2"] == "1":
    programs.append(("libseccomp (CTL_OPTIMIZE=2)", env["BENCH_LS2_BPF"]))
K = len(programs)

# cordon's own count on stderr must agree with bpf_stats.py.
cordon_said = None
for ln in tail(env["BENCH_CORDON_ERR"], 50):
    m = re.search(r"(\d+) instructions, at most (\d+) executed", ln)
    if m:
        cordon_said = (int(m.group(1)), int(m.group(2)))
if cordon_said and cordon_said != stats[env["BENCH_CORDON_BPF"]]:
    print(f"seccomp.sh: warning: cordon reports {cordon_said} (insns, longest path) "
          f"but bpf_stats.py finds {stats[env['BENCH_CORDON_BPF']]}", file=sys.stderr)

LINE = re.compile(r"^call=(\w+) ns=([0-9.]+) min=([0-9.]+) ")
samples = {name: {c: [] for c in CALLS} for name, _ in programs}
fastest = {name: {c: [] for c in CALLS} for name, _ in programs}
checks = {}
show = sys.stderr.isatty()
for r in range(ROUNDS):
    if show:
        sys.stderr.write(f"\rround {r + 1}/{ROUNDS}   ")
        sys.stderr.flush()
    for j in range(K):
        name, path = programs[(r + j) % K]
        argv = [*PIN, BIN, "-n", str(ITERS), "-b", str(BATCHES), path]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            die(f"{name}: {shlex.join(argv)} failed (status {p.returncode}):\n"
                + "\n".join("    | " + ln for ln in (p.stdout + p.stderr).splitlines()))
        got = set()
        first = name not in checks
        for ln in p.stdout.splitlines():
            m = LINE.match(ln)
            if m:
                samples[name][m.group(1)].append(float(m.group(2)))
                fastest[name][m.group(1)].append(float(m.group(3)))
                got.add(m.group(1))
            elif ln.startswith("check ") and first:
                checks.setdefault(name, []).append(ln[len("check "):])
        if got != set(CALLS):
            die(f"{name}: unexpected output from {shlex.join(argv)}:\n{p.stdout}")
if show:
    sys.stderr.write("\r" + " " * 30 + "\r")

med = {n: {c: statistics.median(v) for c, v in d.items()} for n, d in samples.items()}
base = med["no filter"]

# ------------------------------------------------------------------ report --
lines = []
w = lines.append
w("cordon seccomp benchmark: the Docker default profile")
w(f"  date (UTC)      {env['BENCH_TIMESTAMP']}")
w(f"  kernel          {env['BENCH_KERNEL']}  (spec_store_bypass: {env['BENCH_SSB']})")
w(f"  nproc           {env['BENCH_NPROC']}  ({env['BENCH_CPU']})")
w(f"  cordon rev      {env['BENCH_GIT_REV']}")
w(f"  cordon binary   {env['BENCH_CORDON']}")
w(f"  profile         {env['BENCH_PROFILE']}")
for ln in tail(env["BENCH_LS_ERR"], 1):
    w(f"  libseccomp      {ln.removeprefix('seccomp_libseccomp.py: ')}")
if env["BENCH_CORDON_LABEL"] != "cordon":
    w(f"  NOTE            the {env['BENCH_CORDON_LABEL']} row was compiled from another policy,"
      " not from the imported profile")
cordon_err = tail(env["BENCH_CORDON_ERR"], 10000)
import_notes = [ln for ln in cordon_err if "import: not expressed" in ln]
for ln in cordon_err:
    if ln not in import_notes:
        w(f"  cordon said     {ln}")
if import_notes:
    w(f"  cordon import   {len(import_notes)} 'not expressed' notes (capability-gated entries"
      f" skipped, etc.): {env['BENCH_CORDON_ERR']}")
w(f"  method          {ROUNDS} rounds x {K} programs, one process per program per round,"
  f" order rotated each round; {'pinned: ' + shlex.join(PIN) if PIN else 'not pinned'}")
w(f"                  a process times {BATCHES} batches of {ITERS} raw syscall() calls per"
  f" call (after 1 warm-up batch) and reports the median batch;")
w("                  the table shows the median over rounds, and x = that median / no filter's")
w("")
heads = ["program", "insns", "longest path", "ns getppid", "x", "ns personality", "x",
         "ns syslog (refused)", "x"]
rows = []
for name, path in programs:
    insns, lp = stats.get(path, ("-", "-"))
    row = [name, str(insns), str(lp)]
    for c in CALLS:
        row += [f"{med[name][c]:.1f}", f"{med[name][c] / base[c]:.2f}"]
    rows.append(row)
width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
fmt = lambda cells: "  " + "  ".join(  # noqa: E731
    c.ljust(width[i]) if i == 0 else c.rjust(width[i]) for i, c in enumerate(cells))
w(fmt(heads))
w("  " + "-" * (sum(width) + 2 * (len(width) - 1)))
for row in rows:
    w(fmt(row))
w("")
w("  spread over rounds: min..max of the per-process medians [fastest single batch], ns:")
for name, _ in programs:
    cells = "  ".join(f"{c} {min(samples[name][c]):.1f}..{max(samples[name][c]):.1f}"
                      f" [{min(fastest[name][c]):.1f}]" for c in CALLS)
    w(f"    {name:<{width[0]}}  {cells}")
w("")
ci, cp = stats[env["BENCH_CORDON_BPF"]]
ok = lambda b: "ok" if b else "MISSED"  # noqa: E731
w(f"  targets for {env['BENCH_CORDON_LABEL']}: insns {ci} <= {TARGET_INSNS}: {ok(ci <= TARGET_INSNS)};"
  f" longest path {cp} <= {TARGET_PATH}: {ok(cp <= TARGET_PATH)}")
w("  checks (first round; every timed call is checked too):")
for name, _ in programs:
    w(f"    {name:<{width[0]}}  " + "; ".join(checks.get(name, [])))
w("")
w("  commands:")
for c in env["BENCH_COMMANDS"].splitlines():
    w(f"    {c}")
w(f"    {shlex.join([*PIN, BIN, '-n', str(ITERS), '-b', str(BATCHES), 'FILE|-'])}"
  f"   # x{ROUNDS} per program, alternating")
w("")
w(f"results: {OUT}")
w(f"programs and logs: {env['BENCH_WORK']}/")
print("\n".join(lines))

result = {
    "schema": "cordon-bench-seccomp/1",
    "env": {k: env[v] for k, v in [("timestamp_utc", "BENCH_TIMESTAMP"), ("kernel", "BENCH_KERNEL"),
                                    ("nproc", "BENCH_NPROC"), ("cpu", "BENCH_CPU"),
                                    ("spec_store_bypass", "BENCH_SSB"),
                                    ("cordon_git_rev", "BENCH_GIT_REV"),
                                    ("cordon_binary", "BENCH_CORDON"), ("profile", "BENCH_PROFILE")]},
    "config": {"rounds": ROUNDS, "iters": ITERS, "batches": BATCHES, "pin": PIN},
    "commands": env["BENCH_COMMANDS"].splitlines(),
    "programs": [{
        "name": name,
        "file": None if path == "-" else path,
        "insns": stats.get(path, (None, None))[0],
        "longest_path": stats.get(path, (None, None))[1],
        "median_ns": med[name],
        "ratio_vs_no_filter": {c: med[name][c] / base[c] for c in CALLS},
        "samples_ns": samples[name],  # per-process medians, in round order
        "fastest_batch_ns": fastest[name],  # per-process fastest batch, in round order
        "checks": checks.get(name, []),
    } for name, path in programs],
}
tmp = OUT + ".tmp"
with open(tmp, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp, OUT)
PYEOF
