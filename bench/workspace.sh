#!/usr/bin/env bash
# Benchmark workspaces: what reading and applying a change set costs.
#
# Usage: bench/workspace.sh [-n RUNS] [--files N] [--cordon PATH]
#
# A host directory with N small files (default 1000) is the workspace; the
# payload rewrites every one of them. Two cases run in alternation, RUNS
# rounds each (default 20) after 3 uncounted warm-up rounds:
#   never   --apply never   (the change set is read, nothing applied)
#   always  --apply always  (read and applied: N temp files renamed into place)
# For each run: cordon's wall clock, the outcome's wall_time_ms (up to the
# sandbox's end), and their difference, the time spent after the sandbox
# ended (change set, apply, outcome). Medians go to stdout. Run as root or
# not (as root the directory belongs to uid 4321); it is made under $TMPDIR
# (default /tmp) and removed.
set -euo pipefail

runs=20
files=1000
root=$(cd "$(dirname "$0")/.." && pwd -P)
cordon=$root/target/x86_64-unknown-linux-gnu/release/cordon
while [ $# -gt 0 ]; do
    case $1 in
        -n|--runs) runs=$2; shift 2 ;;
        --files) files=$2; shift 2 ;;
        --cordon) cordon=$2; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/workspace.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x "$cordon" ] || { echo "bench/workspace.sh: $cordon missing: cargo build --release" >&2; exit 2; }

exec "${PYTHON:-/usr/bin/python3}" - "$cordon" "$runs" "$files" <<'EOF'
import json, os, shutil, statistics, subprocess, sys, tempfile, time

cordon, runs, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = tempfile.mkdtemp(prefix="cordon-bench-ws-")
os.chmod(base, 0o755)
proj = os.path.join(base, "proj")
status = os.path.join(base, "status.json")
script = f"i=0; while [ $i -lt {files} ]; do echo changed > /work/f$i; i=$((i+1)); done"

# Started by root, cordon idmaps the lower layer to the directory's owner;
# a root-owned one is not (the payload could not write): an ordinary owner.
OWNER = 4321

def fresh():
    shutil.rmtree(proj, ignore_errors=True)
    os.mkdir(proj)
    for i in range(files):
        p = os.path.join(proj, f"f{i}")
        with open(p, "w") as f:
            f.write("original\n")
        if os.geteuid() == 0:
            os.chown(p, OWNER, OWNER)
    if os.geteuid() == 0:
        os.chown(proj, OWNER, OWNER)

def one(apply):
    fresh()
    t0 = time.perf_counter()
    subprocess.run([cordon, "run", "--workspace", f"{proj}:/work", "--apply", apply,
                    "--status-json", status, "--", "/bin/sh", "-c", script],
                   check=True, stdout=subprocess.DEVNULL)
    total = (time.perf_counter() - t0) * 1000
    out = json.load(open(status))
    w = out["workspaces"][0]
    assert w["files_changed"] == files, w
    assert w["applied"] == (apply == "always"), w
    if apply == "always":
        with open(os.path.join(proj, "f0")) as f:
            assert f.read() == "changed\n"
    return total, out["wall_time_ms"]

try:
    res = {"never": [], "always": []}
    for r in range(runs + 3):
        for case in ("never", "always"):
            t, w = one(case)
            if r >= 3:
                res[case].append((t, w))
    print(f"{files} changed files, {runs} runs per case (medians, ms)")
    print(f"{'case':8} {'total':>8} {'sandbox':>8} {'after':>8}")
    after = {}
    for case, v in res.items():
        tot = statistics.median(x[0] for x in v)
        sb = statistics.median(x[1] for x in v)
        after[case] = statistics.median(x[0] - x[1] for x in v)
        print(f"{case:8} {tot:8.1f} {sb:8.1f} {after[case]:8.1f}")
    print(f"apply of {files} files: {after['always'] - after['never']:.1f} ms "
          f"(after-sandbox time, always minus never)")
finally:
    shutil.rmtree(base, ignore_errors=True)
EOF
