#!/bin/sh
# Run every cordon fuzz target for SECONDS each, one after the other
# (default 60), e.g. `fuzz/run.sh 30` for a CI smoke run. Installs
# cargo-fuzz (and a nightly toolchain, through rustup) when missing.
# Exits non-zero as soon as a target finds a crash; the crashing input is
# left in fuzz/artifacts/<target>/.
#
# Extra arguments after SECONDS go to libFuzzer, e.g.
# `fuzz/run.sh 600 -jobs=1` or `fuzz/run.sh 30 -seed=1`.
set -eu

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS-PER-TARGET] [LIBFUZZER-ARGS...]" >&2
	exit 2
	;;
esac
[ $# -gt 0 ] && shift

cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
	rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
	cargo install cargo-fuzz --locked
fi

# Sanitizer builds must not be static: cargo-fuzz sets RUSTFLAGS, which
# replaces the `+crt-static` rustflags of .cargo/config.toml, and passes
# --target explicitly. Do not export RUSTFLAGS with +crt-static here.
cargo +nightly fuzz build

for target in policy_parse seccomp_compile dns_parse; do
	mkdir -p "fuzz/corpus/$target"
	seeds=
	[ -d "fuzz/seeds/$target" ] && seeds="fuzz/seeds/$target"
	case $target in
	policy_parse) opts=-dict=fuzz/dicts/policy_parse.dict ;;
	# Room for sections big enough to need far jumps.
	seccomp_compile) opts=-max_len=8192 ;;
	# A datagram: 512 bytes and a little more (oversized ones are refused).
	dns_parse) opts=-max_len=600 ;;
	esac
	echo "== $target: ${secs}s"
	# shellcheck disable=SC2086 # $seeds and $opts are empty or one word
	cargo +nightly fuzz run "$target" "fuzz/corpus/$target" $seeds -- \
		-max_total_time="$secs" -print_final_stats=1 $opts "$@"
done
echo "== no crashes"
