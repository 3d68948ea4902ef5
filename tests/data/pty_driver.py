"""tests/pty.rs's terminal: runs a command (cordon) with a fresh pty as its
controlling terminal and stdin/stdout/stderr, plays a script of keystrokes
into it and reports, as one JSON line, what came out and how the terminal
was left.

argv[1] is a JSON object:
  argv   the command
  env    its environment
  uid    run it as this uid and gid (null: as is)
  rows, cols   the pty's window size
  steps  [{"wait": TEXT or null, "send": TEXT, "delay": SECONDS}]: wait
         until TEXT has come out (at most step_wait seconds, default 10),
         then `delay`, then send
         (or, with "signal": N instead of "send", send signal N to it;
         with "resize": [ROWS, COLS], give the pty that size)
  limit  seconds after which the command is killed
  slow   every delay is multiplied by this (default 1)
  stderr_file  the command's stderr goes to this file (default: the pty)
The report: out (latin-1), code (negative: signal), sent_at (seconds
since the start, per step), exited_at, modes_same (the pty's termios and
its open file's status flags, which the command's stdin and stdout share,
after == before), pending (bytes left in the pty's input queue), killed.
"""
import fcntl
import json
import os
import select
import struct
import subprocess
import sys
import termios
import time

spec = json.loads(sys.argv[1])
master, slave = os.openpty()
fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", spec["rows"], spec["cols"], 0, 0))
before = termios.tcgetattr(slave)
flags_before = fcntl.fcntl(slave, fcntl.F_GETFL)
uid = spec.get("uid")


def child_setup():
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


start = time.monotonic()
stderr = open(spec["stderr_file"], "wb") if spec.get("stderr_file") else slave
p = subprocess.Popen(spec["argv"], stdin=slave, stdout=slave, stderr=stderr,
                     preexec_fn=child_setup, env=spec["env"], close_fds=True)
out = b""
sent_at = []
steps = list(spec["steps"])
step_since = time.monotonic()
killed = False


def read_some(timeout):
    global out
    r, _, _ = select.select([master], [], [], timeout)
    if master in r:
        try:
            d = os.read(master, 65536)
        except OSError:
            return
        out += d


while p.poll() is None:
    now = time.monotonic()
    if now - start > spec["limit"]:
        p.kill()
        killed = True
        break
    if steps:
        st = steps[0]
        waited = st.get("wait") is None or st["wait"].encode("latin-1") in out
        if waited or now - step_since > spec.get("step_wait", 10):
            time.sleep(st.get("delay", 0) * spec.get("slow", 1))
            if "signal" in st:
                p.send_signal(st["signal"])
            elif "resize" in st:
                rows, cols = st["resize"]
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            else:
                os.write(master, st["send"].encode("latin-1"))
            sent_at.append(time.monotonic() - start)
            steps.pop(0)
            step_since = time.monotonic()
    read_some(0.02)
p.wait()
exited_at = time.monotonic() - start
end = time.monotonic() + 0.5
while time.monotonic() < end:
    read_some(0.05)
after = termios.tcgetattr(slave)
flags_after = fcntl.fcntl(slave, fcntl.F_GETFL)
pending = struct.unpack("i", fcntl.ioctl(slave, termios.FIONREAD, b"\0\0\0\0"))[0]
print(json.dumps({
    "out": out.decode("latin-1"),
    "code": p.returncode,
    "sent_at": sent_at,
    "exited_at": exited_at,
    "modes_same": before == after and flags_before == flags_after,
    "before": repr(before),
    "after": repr(after),
    "pending": pending,
    "killed": killed,
}))
