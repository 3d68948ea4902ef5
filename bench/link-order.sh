#!/bin/sh
# Regenerate bench/link-order.txt, the order build.rs asks lld to lay out
# cordon's functions in: every function a launch runs, in the order it is
# first run, so that the code of a launch sits in a few hundred KiB at the
# start of the text instead of being spread over all of it (the kernel maps
# a file 64 KiB around each page fault: fewer faults, and a supervisor that
# keeps less of the binary resident).
#
# Usage: bench/link-order.sh
#
# Builds the release binary, then single-steps it (bench/steptrace.c;
# about a minute each) through the launches whose code should sit together:
#   cordon run -- /bin/true                        (the built-in default policy)
#   cordon run --status-json FILE -- /bin/true     (the outcome written; two
#                                                  named sandboxes run meanwhile:
#                                                  their listening sockets are
#                                                  listed, sorted and compared)
#   cordon run --in NAME -- /bin/true              (the client of a named sandbox)
#   cordon create NAME, then two commands in it and cordon stop NAME
#                                                  (its supervisor and init)
# following every process cordon clones until it execs the payload, and
# lists the functions (names as the linker sees them) in the order their
# first instruction ran.
#
# The names are mangled with hashes of the compiler and dependency
# versions: after a toolchain or Cargo.lock change, regenerate (names the
# build no longer has are skipped, so a stale file only loses the layout).
# Needs a C compiler, python3 and nm; as root or not.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
# The target directory cargo used (CARGO_TARGET_DIR or build.target-dir
# may move it).
target=$(cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target/x86_64-unknown-linux-gnu/release/cordon"
[ -x "$bin" ] || { echo "link-order.sh: no release build at $bin" >&2; exit 1; }
tmp=$(mktemp -d)
name="link-order-$$"
tracer=""
cleanup() {
    [ -z "$tracer" ] || kill "$tracer" 2>/dev/null || true
    "$bin" stop "$name" >/dev/null 2>&1 || true
    "$bin" stop "$name-b" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
cc -O2 -o "$tmp/steptrace" bench/steptrace.c
"$tmp/steptrace" "$tmp/run.txt" -- "$bin" run -- /bin/true
"$bin" create "$name" >/dev/null
"$bin" create "$name-b" >/dev/null
"$tmp/steptrace" "$tmp/status.txt" -- "$bin" run --status-json "$tmp/outcome.json" -- /bin/true
"$tmp/steptrace" "$tmp/in.txt" -- "$bin" run --in "$name" -- /bin/true
"$bin" stop "$name" >/dev/null
"$bin" stop "$name-b" >/dev/null
# A named sandbox's supervisor and init, traced from its creation to its
# stop, with two commands run in it meanwhile.
"$tmp/steptrace" "$tmp/named.txt" -- "$bin" create "$name" >/dev/null &
tracer=$!
idle=0
for _ in $(seq 600); do
    if "$bin" ls 2>/dev/null | grep -q "^$name .* idle"; then
        idle=1
        break
    fi
    sleep 0.5
done
[ "$idle" = 1 ] || { echo "link-order.sh: the traced sandbox $name did not come up in 5 minutes" >&2; exit 1; }
"$bin" run --in "$name" -- /bin/true
"$bin" run --in "$name" -- /bin/true
"$bin" stop "$name" >/dev/null
wait "$tracer"
tracer=""
nm -S --defined-only "$bin" >"$tmp/nm.txt"
python3 - "$tmp/nm.txt" "$tmp/run.txt" "$tmp/status.txt" "$tmp/in.txt" "$tmp/named.txt" >bench/link-order.txt <<'EOF'
import bisect
import sys

funcs = []
for line in open(sys.argv[1]):
    f = line.split()
    # address size type name: functions (and ifuncs) of the text
    if len(f) == 4 and f[2] in "tTwWiI":
        funcs.append((int(f[0], 16), max(int(f[1], 16), 1), f[3]))
funcs.sort()
starts = [a for a, _, _ in funcs]
seen, order, unknown = set(), [], 0
for path in sys.argv[2:]:
    for line in open(path):
        addr = int(line, 16)
        i = bisect.bisect_right(starts, addr) - 1
        if i < 0 or addr >= funcs[i][0] + funcs[i][1]:
            unknown += 1
            continue
        name = funcs[i][2]
        if name not in seen:
            seen.add(name)
            order.append(name)
print("\n".join(order))
size = sum(s for _, s, n in funcs if n in seen)
print(
    f"link-order: {len(order)} functions, {size // 1024} KiB"
    f" ({unknown} addresses in no function)",
    file=sys.stderr,
)
EOF
