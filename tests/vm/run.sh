#!/usr/bin/env bash
# tests/vm/run.sh: the VM test lane. Builds integration test binaries on the host and
# runs each one inside a throwaway VM (../shared/vm-run: Debian's 6.1 kernel, pure
# cgroup v2, Landlock ABI 2), one boot per binary, with every feature required.
#
# Usage: tests/vm/run.sh [--vm-run PATH] [--timeout SECS] [TEST_NAME ...] [-- TEST_ARGS ...]
#   TEST_NAME   an integration test target (tests/TEST_NAME.rs); default: the names
#               listed in tests/vm/lane.txt
#   --vm-run    the vm-run script; default $CORDON_VM_RUN, else ../shared/vm-run
#               next to the repository
#   --timeout   per-VM limit in seconds (default 1200; a test run is several times
#               slower than on the host under TCG emulation)
#   TEST_ARGS   passed to every test binary (a name filter, --test-threads=1, --nocapture)
# RUST_TEST_THREADS, when set, is passed into the guest.
# Exit status: 0 if every binary passed, 1 if one failed, 2 on a usage or build error.
set -euo pipefail

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "tests/vm/run.sh: $*" >&2; exit 2; }

root=$(cd "$(dirname "$0")/../.." && pwd -P)
vm_run=${CORDON_VM_RUN:-}
vm_run_from=CORDON_VM_RUN
timeout=1200
names=()
test_args=()
declare -A lane_mem=() lane_filter=()
while [ $# -gt 0 ]; do
    case $1 in
        --vm-run) [ $# -ge 2 ] || die "--vm-run needs a path"; vm_run=$2; vm_run_from=--vm-run; shift 2 ;;
        --vm-run=*) vm_run=${1#--vm-run=}; vm_run_from=--vm-run; shift ;;
        --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; timeout=$2; shift 2 ;;
        --timeout=*) timeout=${1#--timeout=}; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; test_args=("$@"); break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) names+=("$1"); shift ;;
    esac
done
[[ $timeout =~ ^[0-9]+$ ]] || die "--timeout: not a number of seconds: $timeout"

# --- vm-run: --vm-run, else $CORDON_VM_RUN, else ../shared/vm-run beside the repository.
if [ -z "$vm_run" ]; then
    vm_run=$root/../shared/vm-run
    vm_run_from="the default location (../shared/vm-run beside the repository)"
fi
if [ ! -f "$vm_run" ] || [ ! -x "$vm_run" ]; then
    die "vm-run not found or not executable: $vm_run (from $vm_run_from).
  Pass --vm-run PATH or set CORDON_VM_RUN to the vm-run script (it lives in the
  team's shared/ folder, normally checked out beside this repository)."
fi
vm_run=$(cd "$(dirname "$vm_run")" && pwd -P)/$(basename "$vm_run")

# --- Which tests: the arguments, else tests/vm/lane.txt (comments and blank lines skipped).
# A lane.txt line is NAME [mem=SIZE] [filter=NAME_FILTER]...: the VM's memory for
# that binary (vm-run --mem; default vm-run's) and libtest name filters (the tests
# matching any of them run). The options apply to NAME also when it is named on
# the command line.
lane_names=()
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    read -r -a words <<<"$line" || true
    [ ${#words[@]} -gt 0 ] || continue
    n=${words[0]}
    lane_names+=("$n")
    for w in "${words[@]:1}"; do
        case $w in
            mem=*) lane_mem[$n]=${w#mem=} ;;
            filter=*) lane_filter[$n]="${lane_filter[$n]:-} ${w#filter=}" ;;
            *) die "tests/vm/lane.txt: '$w' after $n: expected mem=SIZE or filter=NAME" ;;
        esac
    done
done <"$root/tests/vm/lane.txt"
if [ ${#names[@]} -eq 0 ]; then
    names=(${lane_names[@]+"${lane_names[@]}"})
    if [ ${#names[@]} -eq 0 ]; then
        echo "tests/vm/run.sh: tests/vm/lane.txt names no tests; nothing to run"
        exit 0
    fi
fi
for n in "${names[@]}"; do
    [ -f "$root/tests/$n.rs" ] || [ -f "$root/tests/$n/main.rs" ] \
        || die "no integration test named '$n' (expected tests/$n.rs)"
done
command -v python3 >/dev/null || die "python3 is needed to read cargo's JSON output"

# --- Build on the host. The guest sees the host's root read-only at the same paths, so
# the binaries run there unchanged, and env!("CARGO_MANIFEST_DIR") / env!("CARGO_BIN_EXE_*")
# still point at the right files. tests/seccomp.rs runs target/<triple>/debug/examples/
# syscall_probe beside the test binaries' deps/ directory: build the examples too.
cd "$root"
echo "== building: cargo build --examples; cargo test --no-run$(printf ' --test %s' "${names[@]}")"
cargo build --examples || die "cargo build --examples failed"
build_json=$(mktemp); trap 'rm -f "$build_json"' EXIT
test_sel=()
for n in "${names[@]}"; do test_sel+=(--test "$n"); done
cargo test --no-run --message-format=json-render-diagnostics "${test_sel[@]}" >"$build_json" \
    || die "cargo test --no-run failed"
declare -A exe=()
while IFS=$'\t' read -r name path; do exe[$name]=$path; done < <(python3 - "$build_json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    t = m.get("target", {})
    if m.get("reason") == "compiler-artifact" and "test" in t.get("kind", []) \
            and m.get("profile", {}).get("test") and m.get("executable"):
        print(t["name"] + "\t" + m["executable"])
PY
)
meta_target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
logdir=$meta_target/vm-lane
mkdir -p "$logdir"
for n in "${names[@]}"; do
    p=${exe[$n]:-}
    [ -n "$p" ] || die "cargo built no test executable for '$n'"
    # The guest mounts fresh tmpfs on /tmp and /run: binaries there would not be visible.
    case $p in
        "$root"/*) ;;
        /tmp/*|/run/*|/dev/*|/proc/*|/sys/*)
            die "$p is under a directory the VM replaces; set CARGO_TARGET_DIR inside the repository" ;;
    esac
done

# --- The command run inside each VM (as root, in the repository). $1 = "info" to print
# the guest's kernel and features first; $2... = the test binary and its arguments.
# The test binary gets a clean environment with every feature required, so that no
# test can pass by skipping.
guest_env=(
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root USER=root LOGNAME=root LANG=C.UTF-8
    CORDON_TEST_REQUIRE=all CORDON_VM=1 RUST_BACKTRACE=1
    CARGO_MANIFEST_DIR="$root"
)
[ -n "${RUST_TEST_THREADS:-}" ] && guest_env+=(RUST_TEST_THREADS="$RUST_TEST_THREADS")
# shellcheck disable=SC2016  # expanded in the guest
guest_script='
if [ "$1" = info ]; then
    abi=$(perl -e '\''my $r = syscall(444, 0, 0, 1); print $r >= 0 ? $r : "none ($!)"'\'' 2>/dev/null \
          || python3 -c "import ctypes; print(ctypes.CDLL(None).syscall(444, None, 0, 1))")
    cpu=$(sed -n "s/^model name[[:space:]]*: //p" /proc/cpuinfo | head -n1)
    echo "== guest: kernel $(uname -r) ($(uname -v)); Landlock ABI $abi;" \
         "LSMs $(cat /sys/kernel/security/lsm 2>/dev/null || echo "?");" \
         "cgroup v2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null || echo none);" \
         "$(nproc) CPUs ($cpu); running as $(id -un)"
fi
shift
t0=$(date +%s%N)
"$@"
rc=$?
t1=$(date +%s%N)
echo "vm-lane: guest test run $(( (t1 - t0) / 1000000 )) ms, exit $rc"
exit $rc
'

secs() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.1f}')" "$1"; }
results=()
failed=0
info=info
for n in "${names[@]}"; do
    log=$logdir/$n.log
    echo
    echo "== $n: ${exe[$n]} (one VM, log: $log)"
    t0=$(date +%s%N)
    set +e
    vm_opts=(--share "$root" --timeout "$timeout")
    [ -n "${lane_mem[$n]:-}" ] && vm_opts+=(--mem "${lane_mem[$n]}")
    # shellcheck disable=SC2206  # the filters are single words
    filters=(${lane_filter[$n]:-})
    "$vm_run" "${vm_opts[@]}" -- \
        bash -c "$guest_script" vm-lane "$info" env -i "${guest_env[@]}" "${exe[$n]}" \
        ${filters[@]+"${filters[@]}"} ${test_args[@]+"${test_args[@]}"} 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    t1=$(date +%s%N)
    info=-
    wall=$(secs $((t1 - t0)))
    # libtest's summary, the guest's own timing and SKIPPED lines (there should be none).
    counts=$(sed -n 's/^test result: [A-Za-z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored;.*/\1 passed, \2 failed, \3 ignored/p' "$log" | tail -n1)
    guest_ms=$(sed -n 's/^vm-lane: guest test run \([0-9]*\) ms, exit [0-9]*$/\1/p' "$log" | tail -n1)
    skipped=$(grep -c 'SKIPPED:' "$log" || true)
    case $rc in
        0) verdict=PASS ;;
        124) verdict="FAIL (VM timed out after ${timeout}s)" ;;
        125) verdict="FAIL (vm-run: the VM failed to boot or run, exit 125)" ;;
        *) verdict="FAIL (exit $rc)" ;;
    esac
    [ "$rc" -eq 0 ] || failed=1
    timing="wall ${wall} s"
    if [ -n "$guest_ms" ]; then
        timing+=" = guest run $(secs $((guest_ms * 1000000))) s + boot/shutdown $(secs $((t1 - t0 - guest_ms * 1000000))) s"
    fi
    line="$n: $verdict; ${counts:-no test summary}; $skipped skipped; $timing"
    echo "== $line"
    results+=("$line")
done

echo
echo "== VM lane summary (vm-run: $vm_run)"
for r in "${results[@]}"; do echo "   $r"; done
exit $failed
