#!/usr/bin/env bash
# Benchmark sandbox launch latency and memory: cordon vs. bwrap vs. unshare.
#
# Usage: bench/launch.sh [-n RUNS] [--cordon PATH] [--limits] [--bwrap-equivalent]
#                        [--case NAME='command line']...
#
# Every case runs /bin/true.  Cases are timed in alternation (round-robin, one
# run of each case per round, RUNS rounds after 10 uncounted warm-up rounds) by
# an embedded python3 loop, so per-run harness overhead is the same for every
# case.  Results go to stdout as a table and to bench/results/launch-<UTC>.json.
#
# Meant to be run as root on Debian 12.  Installs bubblewrap (and GNU time) with
# apt-get if they are missing; no other network use.
set -euo pipefail

readonly WARMUP=10
readonly MEM_RUNS=5

usage() {
    cat <<'EOF'
Usage: bench/launch.sh [-n RUNS] [--cordon PATH] [--limits] [--bwrap-equivalent]
                       [--named] [--host-sockets N] [--case NAME='command line']...

Measure sandbox launch latency (wall clock of one invocation running /bin/true)
and peak RSS.  Built-in cases: bare, unshare, bwrap, cordon; more with
--limits, --bwrap-equivalent, CORDON_LIMIT_ARGS and CORDON_EXTRA_ARGS.

Options:
  -n, --runs RUNS       timed rounds (default 200); 10 warm-up rounds are
                        run first and not counted
  --cordon PATH         cordon binary (default: target/x86_64-unknown-linux-gnu/release/cordon in the
                        repo root, built with `cargo build --release` if missing)
  --limits              add the case "cordon+limits": `$CORDON run LIMITS --
                        /bin/true`, where LIMITS is $CORDON_LIMIT_ARGS or, if
                        that is empty, --memory 512M --pids 64 --cpus 1.5.
                        Creating and removing the cgroups is part of each
                        timed launch.
  --bwrap-equivalent    add the case "cordon-bweq": `$CORDON run --policy
                        bench/bwrap-equivalent.json -- /bin/true` (the same
                        namespaces and mounts as the bwrap case); with limits
                        also "cordon-bweq+limits" (that policy plus LIMITS)
  --named               add the case "cordon-named": `$CORDON run --in NAME --
                        /bin/true` in a named sandbox made with the default
                        policy before the first round (`$CORDON create NAME`)
                        and stopped at the end: the warm path, a command in a
                        sandbox that already exists, client process included
  --host-sockets N      hold N unix socket pairs (2N sockets, none listening)
                        open in the harness while it times: a host where
                        many programs hold unix sockets, as an agent
                        platform's is; every case runs on that host
  --case NAME=CMDLINE   add a case (repeatable).  CMDLINE is split like a shell
                        word list (python shlex) and exec'd directly, without a
                        shell; it runs from the repo root.  Use sh -c '...' if
                        you need shell features.  $CORDON is not expanded, so
                        pass the binary path explicitly.
  -h, --help            show this help

Environment:
  CORDON_EXTRA_ARGS     if non-empty, adds a case "cordon+extra" running
                        `$CORDON run $CORDON_EXTRA_ARGS -- /bin/true` (split
                        like shell words) next to the plain cordon case
  CORDON_LIMIT_ARGS     cgroup-limit arguments for the +limits cases (split
                        like shell words); if non-empty, the +limits cases are
                        added even without --limits
  PYTHON                python3 interpreter (default /usr/bin/python3)
EOF
}

die() {
    printf 'launch.sh: error: %s\n' "$*" >&2
    exit 1
}

warn() {
    printf 'launch.sh: warning: %s\n' "$*" >&2
}

# apt_install PKG...: install quietly-ish, running `apt-get update` only if the
# first attempt fails.  apt output goes to stderr so stdout stays a clean report.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    export DEBIAN_FRONTEND=noninteractive
    printf 'launch.sh: installing %s with apt-get\n' "$*" >&2
    if apt-get install -y "$@" >&2; then
        return 0
    fi
    warn "apt-get install $* failed; running apt-get update and retrying"
    apt-get update >&2 && apt-get install -y "$@" >&2
}

is_gnu_time() {
    local v
    [[ -x /usr/bin/time ]] || return 1
    v=$(/usr/bin/time --version 2>&1) || return 1
    [[ $v == *GNU* ]]
}

# abs_path PATH: absolute form of PATH, resolved against the *caller's* cwd.
abs_path() {
    local p=$1
    if [[ $p != */* ]]; then
        # bare command name: look it up in PATH
        p=$(type -P -- "$p") || p=""
        if [[ $p != /* ]]; then
            die "cordon binary not found in PATH: $1 (use ./$1 for a file in the current directory)"
        fi
        printf '%s\n' "$p"
        return
    fi
    [[ $p == /* ]] || p="$PWD/${p#./}"
    printf '%s\n' "$p"
}

# ---------------------------------------------------------------- arguments --
RUNS=200
CORDON=""
USER_CASES=()
LIMITS=0
BWRAP_EQ=0
NAMED=0
HOST_SOCKETS=0
readonly DEFAULT_LIMIT_ARGS='--memory 512M --pids 64 --cpus 1.5'

need_value() {
    [[ $# -ge 2 ]] || die "option $1 needs a value (see --help)"
}

while [[ $# -gt 0 ]]; do
    case $1 in
        -n | --runs)
            need_value "$@"
            RUNS=$2
            shift 2
            ;;
        --runs=*)
            RUNS=${1#--runs=}
            shift
            ;;
        -n?*)
            RUNS=${1#-n}
            shift
            ;;
        --cordon)
            need_value "$@"
            CORDON=$2
            shift 2
            ;;
        --cordon=*)
            CORDON=${1#--cordon=}
            shift
            ;;
        --limits)
            LIMITS=1
            shift
            ;;
        --bwrap-equivalent)
            BWRAP_EQ=1
            shift
            ;;
        --named)
            NAMED=1
            shift
            ;;
        --host-sockets)
            need_value "$@"
            HOST_SOCKETS=$2
            shift 2
            ;;
        --host-sockets=*)
            HOST_SOCKETS=${1#--host-sockets=}
            shift
            ;;
        --case)
            need_value "$@"
            USER_CASES+=("$2")
            shift 2
            ;;
        --case=*)
            USER_CASES+=("${1#--case=}")
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            die "unknown argument: $1 (see --help)"
            ;;
    esac
done

[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer, got '$RUNS'"
[[ $HOST_SOCKETS =~ ^[0-9]+$ ]] || die "--host-sockets: not a number of socket pairs: '$HOST_SOCKETS'"

# --limits without CORDON_LIMIT_ARGS means the default limits; a non-empty
# CORDON_LIMIT_ARGS turns the +limits cases on by itself.
CORDON_LIMIT_ARGS=${CORDON_LIMIT_ARGS:-}
if [[ $CORDON_LIMIT_ARGS =~ [^[:space:]] ]]; then
    LIMITS=1
elif [[ $LIMITS -eq 1 ]]; then
    CORDON_LIMIT_ARGS=$DEFAULT_LIMIT_ARGS
else
    CORDON_LIMIT_ARGS=""
fi

declare -A SEEN_CASE=([bare]=1 [unshare]=1 [bwrap]=1 [cordon]=1 [cordon+extra]=1
    [cordon+limits]=1 [cordon-bweq]=1 [cordon-bweq+limits]=1 [cordon-named]=1)
for spec in "${USER_CASES[@]}"; do
    [[ $spec == *=* ]] || die "--case expects NAME='command line', got '$spec'"
    name=${spec%%=*}
    cmdline=${spec#*=}
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._+-]*$ ]] \
        || die "--case name must match [A-Za-z0-9][A-Za-z0-9._+-]*, got '$name'"
    [[ -z ${SEEN_CASE[$name]:-} ]] || die "duplicate or reserved case name: '$name'"
    [[ $cmdline =~ [^[:space:]] ]] || die "--case $name has an empty command line"
    SEEN_CASE[$name]=1
done

# Resolve --cordon against the caller's cwd before moving to the repo root.
if [[ -n $CORDON ]]; then
    CORDON=$(abs_path "$CORDON")
fi

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
cd -- "$ROOT"

if [[ $EUID -ne 0 ]]; then
    warn "not running as root; apt-get installs will fail and results may differ"
fi

# -------------------------------------------------------------- tool checks --
PYTHON=${PYTHON:-/usr/bin/python3}
if [[ ! -x $PYTHON ]]; then
    PYTHON=$(command -v python3) || die "python3 not found (expected /usr/bin/python3)"
fi

# Check that --case lines, CORDON_EXTRA_ARGS and CORDON_LIMIT_ARGS split
# cleanly (shlex) before installing or building anything.
CORDON_LIMIT_ARGS=$CORDON_LIMIT_ARGS "$PYTHON" - "${USER_CASES[@]}" <<'PYEOF' || exit 1
import os, shlex, sys
items = [("CORDON_EXTRA_ARGS", os.environ.get("CORDON_EXTRA_ARGS", "")),
         ("CORDON_LIMIT_ARGS", os.environ.get("CORDON_LIMIT_ARGS", ""))]
items += [("--case " + s.partition("=")[0], s.partition("=")[2]) for s in sys.argv[1:]]
for what, text in items:
    try:
        shlex.split(text)
    except ValueError as e:
        sys.exit(f"launch.sh: error: cannot parse {what}={text!r}: {e}")
PYEOF

command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) not found"

if ! command -v bwrap >/dev/null 2>&1; then
    apt_install bubblewrap || die "could not install bubblewrap"
    command -v bwrap >/dev/null 2>&1 || die "bwrap still missing after installing bubblewrap"
fi

if [[ -z $CORDON ]]; then
    CORDON="$ROOT/target/x86_64-unknown-linux-gnu/release/cordon"
    if [[ ! -x $CORDON ]]; then
        printf 'launch.sh: %s missing; running cargo build --release\n' "$CORDON" >&2
        command -v cargo >/dev/null 2>&1 || die "cargo not found; build cordon or pass --cordon PATH"
        cargo build --release >&2 || die "cargo build --release failed"
        [[ -x $CORDON ]] \
            || die "cargo build succeeded but $CORDON does not exist (CARGO_TARGET_DIR set?); pass --cordon PATH"
    fi
fi
[[ -f $CORDON && -x $CORDON ]] || die "cordon binary is not an executable file: $CORDON"

# Time the binary, not the filesystem it sits on: on a 9p or virtiofs
# share (the VM lane's) every launch pages in a few MB of text through the
# host, which made cordon look several times slower than bwrap, whose
# binary and libraries sit in the guest's page cache. A copy in a local
# temporary directory is what gets timed; the report names both.
CORDON_SOURCE=$CORDON
# (The mount table, not statfs: a 9p share reports the host's filesystem.)
FS_TYPE=$(findmnt -n -o FSTYPE -T "$CORDON" 2>/dev/null) || FS_TYPE=unknown
case $FS_TYPE in
    v9fs | 9p | virtiofs | fuse* | nfs* | cifs | smb*)
        BENCH_TMP=$(mktemp -d) || die "mktemp -d failed"
        trap 'rm -rf -- "$BENCH_TMP"' EXIT
        cp -- "$CORDON" "$BENCH_TMP/cordon" || die "cannot copy $CORDON to $BENCH_TMP"
        CORDON=$BENCH_TMP/cordon
        printf 'launch.sh: %s is on %s; timing a copy in %s\n' "$CORDON_SOURCE" "$FS_TYPE" "$BENCH_TMP" >&2
        ;;
esac

BWRAP_POLICY=""
if [[ $BWRAP_EQ -eq 1 ]]; then
    BWRAP_POLICY="$ROOT/bench/bwrap-equivalent.json"
    [[ -r $BWRAP_POLICY ]] || die "policy for --bwrap-equivalent not readable: $BWRAP_POLICY"
fi

GNU_TIME=""
if ! is_gnu_time; then
    apt_install time || warn "could not install the 'time' package"
fi
if is_gnu_time; then
    GNU_TIME=/usr/bin/time
else
    warn "GNU time unavailable; GNU-time memory figures will be n/a"
fi

# -------------------------------------------------------------- environment --
TIMESTAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS_DIR="$ROOT/bench/results"
mkdir -p -- "$RESULTS_DIR"
if [[ ! -e $RESULTS_DIR/.gitignore ]]; then
    printf '*\n!.gitignore\n' >"$RESULTS_DIR/.gitignore"
fi
OUT="$RESULTS_DIR/launch-$TIMESTAMP.json"

GIT_REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) || GIT_REV=unknown
if [[ $GIT_REV != unknown ]] \
    && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
    GIT_REV="$GIT_REV-dirty"
fi
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1) || true

export BENCH_TIMESTAMP=$TIMESTAMP
export BENCH_KERNEL
BENCH_KERNEL=$(uname -r)
export BENCH_NPROC
BENCH_NPROC=$(nproc)
export BENCH_CPU=${CPU_MODEL:-unknown}
export BENCH_GIT_REV=$GIT_REV
export BENCH_BWRAP_VERSION
BENCH_BWRAP_VERSION=$(bwrap --version 2>&1 | head -n 1) || BENCH_BWRAP_VERSION=unknown
export BENCH_UNSHARE_VERSION
BENCH_UNSHARE_VERSION=$(unshare --version 2>&1 | head -n 1) || BENCH_UNSHARE_VERSION=unknown
export BENCH_CORDON=$CORDON
export BENCH_CORDON_SOURCE=$CORDON_SOURCE
export BENCH_GNU_TIME=$GNU_TIME
export BENCH_RUNS=$RUNS
export BENCH_WARMUP=$WARMUP
export BENCH_MEM_RUNS=$MEM_RUNS
export BENCH_OUT=$OUT
export CORDON_EXTRA_ARGS=${CORDON_EXTRA_ARGS:-}
export CORDON_LIMIT_ARGS
export BENCH_BWRAP_POLICY=$BWRAP_POLICY

# The named sandbox of the cordon-named case: made now, stopped on exit.
BENCH_NAMED=""
if [[ $NAMED -eq 1 ]]; then
    BENCH_NAMED=bench-launch-$$
    "$CORDON" create "$BENCH_NAMED" >/dev/null || die "cordon create $BENCH_NAMED failed"
    trap '"$CORDON" stop "$BENCH_NAMED" >/dev/null 2>&1 || true; [[ -z ${BENCH_TMP:-} ]] || rm -rf -- "$BENCH_TMP"' EXIT
fi
export BENCH_NAMED
export BENCH_HOST_SOCKETS=$HOST_SOCKETS

# ------------------------------------------------------------ measurement --
# The built-in cases are assembled in python (as argv lists, so no quoting
# issues with the cordon path); user cases are passed as NAME=CMDLINE args.
# (Not exec'd: the EXIT trap stops the named sandbox of --named.)
"$PYTHON" - "${USER_CASES[@]}" <<'PYEOF'
import gc
import json
import math
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

env = os.environ
# --host-sockets: socket pairs held open while timing (not inherited: python
# makes them close-on-exec); room for their fds first.
HOST_SOCKETS = int(env.get("BENCH_HOST_SOCKETS", "0"))
if HOST_SOCKETS:
    import resource
    import socket
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * HOST_SOCKETS + 256
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit(f"launch.sh: --host-sockets {HOST_SOCKETS} needs {want} fds; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    held_sockets = [socket.socketpair() for _ in range(HOST_SOCKETS)]
RUNS = int(env["BENCH_RUNS"])
WARMUP = int(env["BENCH_WARMUP"])
MEM_RUNS = int(env["BENCH_MEM_RUNS"])
CORDON = env["BENCH_CORDON"]
GNU_TIME = env["BENCH_GNU_TIME"] or None
OUT = env["BENCH_OUT"]
DEVNULL = subprocess.DEVNULL


def die(msg):
    sys.stdout.flush()
    print(f"launch.sh: error: {msg}", file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------- cases --
cases = [
    ("bare", ["/bin/true"]),
    ("unshare", ["unshare", "--user", "--map-root-user", "--mount", "--pid",
                 "--fork", "--net", "--ipc", "--uts", "/bin/true"]),
    ("bwrap", ["bwrap", "--unshare-all", "--ro-bind", "/usr", "/usr",
               "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
               "--symlink", "usr/lib64", "/lib64", "--proc", "/proc",
               "--dev", "/dev", "--die-with-parent", "/bin/true"]),
    ("cordon", [CORDON, "run", "--", "/bin/true"]),
]
# Optional cordon cases.  CORDON_CASE_ARGS maps each cordon case to the
# arguments between `run` and `--`, so the memory section can re-run it with
# --status-json.
CORDON_CASE_ARGS = {"cordon": []}
limit_args_text = env.get("CORDON_LIMIT_ARGS", "")
BWRAP_POLICY = env.get("BENCH_BWRAP_POLICY", "")
try:
    limit_argv = shlex.split(limit_args_text)
except ValueError as e:
    die(f"cannot parse CORDON_LIMIT_ARGS={limit_args_text!r}: {e}")
opt_cordon = []
if limit_argv:
    opt_cordon.append(("cordon+limits", limit_argv))
if BWRAP_POLICY:
    opt_cordon.append(("cordon-bweq", ["--policy", BWRAP_POLICY]))
    if limit_argv:
        opt_cordon.append(("cordon-bweq+limits", ["--policy", BWRAP_POLICY, *limit_argv]))
for name, args in opt_cordon:
    cases.append((name, [CORDON, "run", *args, "--", "/bin/true"]))
    CORDON_CASE_ARGS[name] = args
# (base case, case with limits) pairs for the paired overhead report.
LIMIT_PAIRS = [(b, l) for b, l in (("cordon", "cordon+limits"),
                                    ("cordon-bweq", "cordon-bweq+limits"))
               if l in CORDON_CASE_ARGS]

if env.get("BENCH_NAMED"):
    cases.append(("cordon-named", [CORDON, "run", "--in", env["BENCH_NAMED"], "--", "/bin/true"]))

extra = env.get("CORDON_EXTRA_ARGS", "")
if extra.strip():
    try:
        extra_argv = shlex.split(extra)
    except ValueError as e:
        die(f"cannot parse CORDON_EXTRA_ARGS={extra!r}: {e}")
    cases.append(("cordon+extra", [CORDON, "run", *extra_argv, "--", "/bin/true"]))
for spec in sys.argv[1:]:
    name, _, cmdline = spec.partition("=")
    try:
        argv = shlex.split(cmdline)
    except ValueError as e:
        die(f"cannot parse command line of --case {name}: {e}")
    if not argv:
        die(f"--case {name} has an empty command line")
    cases.append((name, argv))

K = len(cases)
NAMES = [c[0] for c in cases]


def stderr_tail(argv, lines=20):
    """Re-run a failed command (untimed) to show what it printed."""
    try:
        p = subprocess.run(argv, stdin=DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace").rstrip().splitlines()
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"    (re-run for diagnostics failed: {e})"
    if not out:
        return "    (no output on re-run)"
    return "\n".join("    | " + line for line in out[-lines:])


def describe_rc(rc):
    return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"


def fail_case(name, argv, rc, where):
    die(f"case '{name}' failed {where}: {describe_rc(rc)}\n"
        f"  command: {shlex.join(argv)}\n"
        f"  output of an untimed re-run (stdout+stderr):\n{stderr_tail(argv)}")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except (OSError, ValueError):
        return None


def cordon_cgroup_dirs():
    """cordon-* directories in the cgroups this process belongs to, which is
    where our launches create theirs (no --cgroup-parent).  Used to spot
    cgroups a launch failed to remove.  Another sandbox started from the same
    cgroup counts too, so a difference is a hint, not proof."""
    parents = set()
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                path = path.rstrip("/")
                if not ctrls:  # cgroup v2 (unified) hierarchy
                    parents.add("/sys/fs/cgroup" + path)
                    parents.add("/sys/fs/cgroup/unified" + path)
                    continue
                parents.add(f"/sys/fs/cgroup/{ctrls.replace('name=', '')}{path}")
                for c in ctrls.split(","):
                    parents.add(f"/sys/fs/cgroup/{c.replace('name=', '')}{path}")
    except (OSError, ValueError):
        return set()
    found = set()
    for d in parents:
        try:
            found.update(e.path for e in os.scandir(d)
                         if e.name.startswith("cordon-")
                         and e.is_dir(follow_symlinks=False))
        except OSError:
            pass
    return found


load_before = loadavg()
cg_before = cordon_cgroup_dirs() if LIMIT_PAIRS else set()

# ---------------------------------------------------------- timing loop --
# Round-robin: each round runs every case once.  The starting case rotates
# each round so no case always follows the same neighbour.
samples = [[] for _ in cases]
show_progress = sys.stderr.isatty()
run = subprocess.run
clock = time.perf_counter_ns
total = WARMUP + RUNS

gc.collect()
gc.disable()
try:
    for r in range(total):
        if show_progress and (r % 5 == 0 or r == total - 1):
            phase = "warm-up" if r < WARMUP else "timed"
            sys.stderr.write(f"\rround {r + 1}/{total} ({phase})   ")
            sys.stderr.flush()
        off = r % K
        for j in range(K):
            i = (off + j) % K
            argv = cases[i][1]
            try:
                t0 = clock()
                p = run(argv, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
                t1 = clock()
            except OSError as e:
                die(f"case '{cases[i][0]}' could not be started: {e}\n"
                    f"  command: {shlex.join(argv)}")
            if p.returncode != 0:
                where = (f"in warm-up round {r + 1}" if r < WARMUP
                         else f"in timed round {r - WARMUP + 1}")
                fail_case(cases[i][0], argv, p.returncode, where)
            if r >= WARMUP:
                samples[i].append(t1 - t0)
finally:
    gc.enable()
    if show_progress:
        sys.stderr.write("\r" + " " * 40 + "\r")
        sys.stderr.flush()


def pct(sorted_xs, p):
    """Percentile with linear interpolation (numpy's default method)."""
    n = len(sorted_xs)
    if n == 1:
        return float(sorted_xs[0])
    k = (n - 1) * p / 100.0
    f = math.floor(k)
    c = min(f + 1, n - 1)
    return sorted_xs[f] + (sorted_xs[c] - sorted_xs[f]) * (k - f)


stats = {}
for (name, argv), xs in zip(cases, samples):
    s = sorted(xs)
    stats[name] = {
        "argv": argv,
        "median_us": pct(s, 50) / 1000.0,
        "p10_us": pct(s, 10) / 1000.0,
        "p90_us": pct(s, 90) / 1000.0,
        "min_us": s[0] / 1000.0,
        "max_us": s[-1] / 1000.0,
        "mean_us": statistics.fmean(s) / 1000.0,
        "samples_ns": xs,  # in execution order
    }
for name in NAMES:
    med = stats[name]["median_us"]
    stats[name]["ratio_vs_bwrap"] = med / stats["bwrap"]["median_us"]
    stats[name]["ratio_vs_unshare"] = med / stats["unshare"]["median_us"]

load_after = loadavg()
cg_left = sorted(cordon_cgroup_dirs() - cg_before) if LIMIT_PAIRS else []

# Cost of the cgroup limits: both cases ran in the same rounds, so pair the
# samples round by round and take the median of the differences.
limit_overhead = []
for base, lim in LIMIT_PAIRS:
    diffs = sorted(a - b for a, b in zip(samples[NAMES.index(lim)],
                                         samples[NAMES.index(base)]))
    limit_overhead.append({
        "base": base,
        "with_limits": lim,
        "limit_args": limit_argv,
        "median_paired_diff_us": pct(diffs, 50) / 1000.0,
        "p10_paired_diff_us": pct(diffs, 10) / 1000.0,
        "p90_paired_diff_us": pct(diffs, 90) / 1000.0,
        "ratio_of_medians": stats[lim]["median_us"] / stats[base]["median_us"],
    })

# --------------------------------------------------------------- memory --
tmpdir = tempfile.mkdtemp(prefix="cordon-bench-")


def gnu_time_maxrss(name, argv):
    """Median over MEM_RUNS of GNU time's %M (KiB) for argv, or None."""
    if GNU_TIME is None:
        return None, []
    out = os.path.join(tmpdir, "time.out")
    vals = []
    for _ in range(MEM_RUNS):
        full = [GNU_TIME, "-f", "%M", "-o", out, *argv]
        p = subprocess.run(full, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
        if p.returncode != 0:
            fail_case(name, argv, p.returncode, "under GNU time")
        with open(out) as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        try:
            vals.append(int(lines[-1]))
        except (IndexError, ValueError):
            die(f"could not parse GNU time output for {name}: {lines!r}")
    return statistics.median(vals), vals


def status_json_rss(case_args=(), info=None):
    """Median supervisor_max_rss_kb from --status-json, or (None, [], why).

    case_args go between `run --status-json FILE` and `--`.  If info is a
    dict, the last run's "cgroup" and "unenforced" fields are stored in it."""
    vals = []
    for n in range(MEM_RUNS):
        path = os.path.join(tmpdir, f"status-{n}.json")
        argv = [CORDON, "run", "--status-json", path, *case_args, "--", "/bin/true"]
        p = subprocess.run(argv, stdin=DEVNULL, stdout=DEVNULL,
                           stderr=subprocess.PIPE)
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip().splitlines()
            why = f"`cordon run --status-json` failed ({describe_rc(p.returncode)})"
            if err:
                why += f": {err[-1][:160]}"
            return None, [], why
        try:
            with open(path) as f:
                doc = json.load(f)
        except FileNotFoundError:
            return None, [], "--status-json wrote no file"
        except (OSError, ValueError) as e:
            return None, [], f"--status-json file unreadable: {e}"
        v = doc.get("supervisor_max_rss_kb") if isinstance(doc, dict) else None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None, [], "field supervisor_max_rss_kb absent from status JSON"
        vals.append(v)
        if info is not None:
            info["cgroup"] = doc.get("cgroup")
            info["unenforced"] = doc.get("unenforced")
    return statistics.median(vals), vals, None


cordon_plain = [CORDON, "run", "--", "/bin/true"]
mem_cordon_time, mem_cordon_time_vals = gnu_time_maxrss("cordon", cordon_plain)
mem_bwrap_time, mem_bwrap_time_vals = gnu_time_maxrss("bwrap", stats["bwrap"]["argv"])
mem_sup, mem_sup_vals, mem_sup_why = status_json_rss()

# Supervisor RSS of the optional cordon cases (same method), and whether the
# limits really took effect: cordon records the cgroup it made in the outcome.
sup_by_case = {"cordon": {"args": [], "max_rss_kb": mem_sup,
                          "samples": mem_sup_vals, "na_reason": mem_sup_why}}
limit_warnings = []
for name, args in opt_cordon:
    info = {}
    v, vals, why = status_json_rss(args, info)
    sup_by_case[name] = {"args": args, "max_rss_kb": v, "samples": vals,
                         "na_reason": why, "cgroup": info.get("cgroup"),
                         "unenforced": info.get("unenforced")}
    if name.endswith("+limits") and why is None:
        if not info.get("cgroup"):
            limit_warnings.append(f"{name}: no cgroup in the status JSON; "
                                  f"the limits were not applied")
        if info.get("unenforced"):
            limit_warnings.append(f"{name}: unenforced: {info['unenforced']}")
# Only dirs still there after the memory runs count as left behind.
cg_left = [d for d in cg_left if os.path.isdir(d)]
if cg_left:
    limit_warnings.append(f"{len(cg_left)} new cordon-* cgroup dir(s) left "
                          f"after the timing loop, still there after the "
                          f"memory runs (another sandbox started from this "
                          f"cgroup would count too), e.g. {cg_left[0]}")

for fn in os.listdir(tmpdir):
    os.unlink(os.path.join(tmpdir, fn))
os.rmdir(tmpdir)

# --------------------------------------------------------------- report --
def binary_sha256(path):
    import hashlib
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


envinfo = {
    "timestamp_utc": env["BENCH_TIMESTAMP"],
    "kernel": env["BENCH_KERNEL"],
    "nproc": int(env["BENCH_NPROC"]),
    "cpu": env["BENCH_CPU"],
    "cordon_git_rev": env["BENCH_GIT_REV"],
    "cordon_binary": CORDON,
    "cordon_binary_source": env["BENCH_CORDON_SOURCE"],
    "host_socket_pairs": HOST_SOCKETS,
    "cordon_binary_sha256": binary_sha256(CORDON),
    "bwrap_version": env["BENCH_BWRAP_VERSION"],
    "unshare_version": env["BENCH_UNSHARE_VERSION"],
    "python": sys.version.split()[0],
    "cordon_extra_args": extra,
    "cordon_limit_args": limit_args_text,
    "bwrap_equivalent_policy": BWRAP_POLICY or None,
    "loadavg_before": load_before,
    "loadavg_after": load_after,
}


def fmt_load(la):
    return " ".join(f"{x:.2f}" for x in la) if la else "n/a"


def fmt_kb(v):
    if v is None:
        return "n/a"
    return f"{v:g} KiB"


def fmt_range(vals):
    return f"  (median of {len(vals)}; range {min(vals):g}..{max(vals):g})" if vals else ""


lines = []
w = lines.append
w("cordon launch benchmark")
w(f"  date (UTC)      {envinfo['timestamp_utc']}")
w(f"  kernel          {envinfo['kernel']}")
w(f"  nproc           {envinfo['nproc']}  ({envinfo['cpu']})")
w(f"  cordon rev      {envinfo['cordon_git_rev']}")
w(f"  cordon binary   {CORDON}")
w(f"  cordon sha256   {envinfo['cordon_binary_sha256'] or 'n/a'}"
  f"  (cordon rev is the repo's HEAD, not necessarily the binary's)")
w(f"  bwrap           {envinfo['bwrap_version']}")
w(f"  unshare         {envinfo['unshare_version']}")
w(f"  load average    before {fmt_load(load_before)}, after {fmt_load(load_after)}"
  f"  (1/5/15 min)")
w(f"  method          {RUNS} timed rounds after {WARMUP} warm-up rounds; "
  f"round-robin, one run per case per round")
w(f"                  wall time of one subprocess.run() (python "
  f"{envinfo['python']}, perf_counter_ns), each case runs /bin/true")
w("")
namew = max(8, *(len(n) for n in NAMES))
hdr = (f"  {'case':<{namew}}  {'median us':>10}  {'p10 us':>10}  {'p90 us':>10}"
       f"  {'x bwrap':>8}  {'x unshare':>9}")
w(hdr)
w("  " + "-" * (len(hdr) - 2))
for name in NAMES:
    s = stats[name]
    w(f"  {name:<{namew}}  {s['median_us']:>10.1f}  {s['p10_us']:>10.1f}"
      f"  {s['p90_us']:>10.1f}  {s['ratio_vs_bwrap']:>8.2f}  {s['ratio_vs_unshare']:>9.2f}")
w("")
w("  commands:")
for name in NAMES:
    w(f"    {name:<{namew}}  {shlex.join(stats[name]['argv'])}")
w("")
if limit_overhead:
    w("cgroup limit overhead (median of per-round differences, same rounds):")
    for o in limit_overhead:
        w(f"  {o['with_limits']:<{namew}} - {o['base']:<{namew}}"
          f"  {o['median_paired_diff_us']:>+9.1f} us"
          f"  (p10 {o['p10_paired_diff_us']:+.1f}, p90 {o['p90_paired_diff_us']:+.1f});"
          f"  ratio of medians {o['ratio_of_medians']:.2f}")
    for msg in limit_warnings:
        w(f"  WARNING: {msg}")
    w("")
w("memory (peak RSS):")
w(f"  cordon, GNU time %M                    {fmt_kb(mem_cordon_time)}"
  f"{fmt_range(mem_cordon_time_vals)}")
w("      max RSS of the cordon process and of every child it waited for")
w("      (sandboxed init/payload included) - an upper bound, not the supervisor alone")
sup = fmt_kb(mem_sup) if mem_sup is not None else f"n/a ({mem_sup_why})"
w(f"  cordon supervisor only, status JSON    {sup}{fmt_range(mem_sup_vals)}")
w("      supervisor_max_rss_kb from `cordon run --status-json FILE`: the")
w("      supervisor's own peak RSS as reported by cordon itself")
for name, _ in opt_cordon:
    o = sup_by_case[name]
    v = fmt_kb(o["max_rss_kb"]) if o["max_rss_kb"] is not None else f"n/a ({o['na_reason']})"
    w(f"    {name:<35}  {v}{fmt_range(o['samples'])}")
w(f"  bwrap, GNU time %M                     {fmt_kb(mem_bwrap_time)}"
  f"{fmt_range(mem_bwrap_time_vals)}")
w("      same GNU time measurement for the bwrap case, for comparison")
if GNU_TIME is None:
    w("  (GNU time not available: install the 'time' package)")
w("")
w(f"results: {OUT}")

print("\n".join(lines))
sys.stdout.flush()
for msg in limit_warnings:
    print(f"launch.sh: warning: {msg}", file=sys.stderr)

result = {
    "schema": "cordon-bench-launch/1",
    "env": envinfo,
    "config": {"runs": RUNS, "warmup_rounds": WARMUP, "memory_runs": MEM_RUNS,
               "order": "round-robin, start rotated each round",
               "clock": "time.perf_counter_ns around subprocess.run"},
    "cases": [{"name": n, **stats[n]} for n in NAMES],
    "limit_overhead": limit_overhead,
    "warnings": limit_warnings,
    "memory": {
        "cordon_gnu_time_max_rss_kb": mem_cordon_time,
        "cordon_gnu_time_max_rss_kb_samples": mem_cordon_time_vals,
        "cordon_supervisor_max_rss_kb": mem_sup,
        "cordon_supervisor_max_rss_kb_samples": mem_sup_vals,
        "cordon_supervisor_max_rss_na_reason": mem_sup_why,
        "bwrap_gnu_time_max_rss_kb": mem_bwrap_time,
        "bwrap_gnu_time_max_rss_kb_samples": mem_bwrap_time_vals,
        "supervisor_max_rss_kb_by_case": sup_by_case,
        "notes": {
            "gnu_time": "GNU time %M = max RSS of the process and all "
                        "waited-for descendants (wait4 rusage)",
            "supervisor": "supervisor_max_rss_kb as written by "
                          "`cordon run --status-json`",
        },
    },
}
tmp_out = OUT + ".tmp"
with open(tmp_out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
os.replace(tmp_out, OUT)
PYEOF
