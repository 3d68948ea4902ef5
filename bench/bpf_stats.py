#!/usr/bin/env python3
"""Size and longest path of raw classic-BPF (seccomp) programs.

Usage: bench/bpf_stats.py FILE...

FILE holds an array of struct sock_filter, little-endian, 8 bytes each
(u16 code, u8 jt, u8 jf, u32 k), as written by `cordon seccomp compile
--format raw` or libseccomp's seccomp_export_bpf().

For each file prints one line:

    file=FILE insns=N longest_path=M

longest_path is the most instructions any input can execute, the final `ret`
included.  Classic BPF only jumps forward, so the program is a DAG and the
longest path is found by dynamic programming from the end.  A program with a
jump out of range, a path that falls off the end, or a size that is not a
multiple of 8 is an error (exit status 1).
"""

import struct
import sys

BPF_CLASS = 0x07
BPF_JMP = 0x05
BPF_RET = 0x06
BPF_OP = 0xF0
BPF_JA = 0x00


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ValueError("empty program")
    if len(data) % 8:
        raise ValueError(f"size {len(data)} is not a multiple of 8")
    return [struct.unpack_from("<HBBI", data, off) for off in range(0, len(data), 8)]


def longest_path(prog):
    n = len(prog)
    best = [0] * n  # instructions executed from i to a ret, worst case

    def at(i, target):
        if target >= n:
            raise ValueError(f"instruction {i}: jump to {target}, past the end ({n})")
        return best[target]

    for i in range(n - 1, -1, -1):
        code, jt, jf, k = prog[i]
        cls = code & BPF_CLASS
        if cls == BPF_RET:
            best[i] = 1
        elif cls == BPF_JMP and (code & BPF_OP) == BPF_JA:
            best[i] = 1 + at(i, i + 1 + k)
        elif cls == BPF_JMP:
            best[i] = 1 + max(at(i, i + 1 + jt), at(i, i + 1 + jf))
        else:
            if i + 1 >= n:
                raise ValueError(f"instruction {i}: falls off the end")
            best[i] = 1 + best[i + 1]
    return best[0]


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    rc = 0
    for path in argv[1:]:
        try:
            prog = load(path)
            lp = longest_path(prog)
        except (OSError, ValueError) as e:
            print(f"bpf_stats.py: {path}: {e}", file=sys.stderr)
            rc = 1
            continue
        print(f"file={path} insns={len(prog)} longest_path={lp}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
