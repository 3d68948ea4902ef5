#!/usr/bin/env bash
# bench/named.sh: what idle named sandboxes cost, and what create + many
# commands + stop leave behind (issue 15).
#
# Usage: bench/named.sh [--cordon PATH] [-n SANDBOXES] [-c COMMANDS]
#
# 1. Creates SANDBOXES (default 100) named sandboxes with the default policy,
#    waits until they are idle, and reads each one's supervisor and init from
#    /proc: RSS and PSS (smaps_rollup; PSS splits pages shared between
#    processes, such as cordon's own text, among them: the memory a sandbox
#    really adds). Prints the per-sandbox mean and max.
# 2. In one more sandbox, runs COMMANDS (default 1000) `cordon run --in`
#    of /bin/true, stops it, and checks that no process, mount namespace,
#    socket, state file or cgroup of it is left.
# Run as root on an otherwise idle machine. Sandboxes are named
# bench-named-<pid>-N and stopped on exit.
set -euo pipefail
N=100
C=1000
CORDON=""
while [[ $# -gt 0 ]]; do
    case $1 in
        -n) N=$2; shift 2 ;;
        -c) C=$2; shift 2 ;;
        --cordon) CORDON=$2; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/named.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z $CORDON ]]; then
    CORDON=$ROOT/target/x86_64-unknown-linux-gnu/release/cordon
    [[ -x $CORDON ]] || (cd "$ROOT" && cargo build --release >&2)
fi
prefix=bench-named-$$
names=()
cleanup() {
    for n in "${names[@]}"; do "$CORDON" stop "$n" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

kb() { awk -v k="$2:" '$1 == k {print $2}' "$1" 2>/dev/null || echo 0; }

echo "creating $N named sandboxes ($CORDON)"
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
    "$CORDON" create "$prefix-$i" >/dev/null
    names+=("$prefix-$i")
done
t1=$(date +%s.%N)
sleep 2
"$CORDON" ls --json > /tmp/$prefix-ls.json
python3 - "$prefix" /tmp/$prefix-ls.json "$t0" "$t1" <<'PY'
import json, sys, os
prefix, lsfile, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
rows = [r for r in json.load(open(lsfile)) if r["name"].startswith(prefix + "-")]
def rollup(pid):
    out = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass
    return out
per = []
for r in rows:
    procs = [r["supervisor_pid"], r["pid"]]
    rss = sum(rollup(p).get("Rss", 0) for p in procs)
    pss = sum(rollup(p).get("Pss", 0) for p in procs)
    per.append((rss, pss, len(procs)))
n = len(per)
if n == 0:
    sys.exit("no sandboxes found in cordon ls --json")
print(f"{n} idle named sandboxes, created in {t1 - t0:.2f} s ({(t1 - t0) / n * 1e3:.1f} ms each, sequential)")
print(f"  processes per sandbox: {sorted(set(p for _, _, p in per))}")
print(f"  RSS per sandbox (supervisor + init): mean {sum(r for r, _, _ in per) / n:.0f} KiB, max {max(r for r, _, _ in per)} KiB")
print(f"  PSS per sandbox (supervisor + init): mean {sum(p for _, p, _ in per) / n:.0f} KiB, max {max(p for _, p, _ in per)} KiB")
PY
cleanup
names=()

echo "leak check: create, $C commands, stop"
mounts_before=$(wc -l < /proc/self/mountinfo)
name=$prefix-leak
"$CORDON" create "$name" >/dev/null
names+=("$name")
sup=$("$CORDON" ls --json | python3 -c "import json,sys; print([r['supervisor_pid'] for r in json.load(sys.stdin) if r['name']=='$name'][0])")
t0=$(date +%s.%N)
for i in $(seq 1 "$C"); do "$CORDON" run --in "$name" -- /bin/true; done
t1=$(date +%s.%N)
fds=$(ls /proc/"$sup"/fd | wc -l)
"$CORDON" stop "$name"
names=()
python3 -c "print(f'  $C x run --in /bin/true: {($t1 - $t0) / $C * 1e3:.3f} ms each (client process included)')"
echo "  supervisor fds after $C commands: $fds"
left=$(pgrep -f "$name" || true)
echo "  processes left: ${left:-none}"
[[ -z $left ]] || exit 1
# stop returns once the supervisor answered; it exits right after.
for _ in $(seq 50); do [[ -d /proc/$sup ]] || break; sleep 0.1; done
[[ ! -d /proc/$sup ]] || { echo "  supervisor $sup still alive 5 s after stop"; exit 1; }
echo "  mountinfo lines of this shell: before $mounts_before, after $(wc -l < /proc/self/mountinfo)"
