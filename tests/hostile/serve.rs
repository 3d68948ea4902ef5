//! `cordon serve`: the sandboxes of mutually untrusted clients share one
//! `--log`. A payload gets a pipe that cordon relays into the log, never the
//! log file itself: it cannot truncate or rewrite what other sandboxes
//! logged, and a line without an end is cut at a bounded length.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use crate::common::{cordon, have_python, modes, scaled, wait_until, TempDir};
use crate::require;

const PAYLOAD: &str = r#"
import os, sys
who = sys.stdin.readline().strip()
if who == "a":
    os.write(2, b"from-a\n")
    sys.stdin.readline()
else:
    try:
        os.ftruncate(2, 0)
        r = "truncated"
    except OSError as e:
        r = "refused %d" % e.errno
    try:
        os.lseek(2, 0, os.SEEK_SET)
        r += " seeked"
    except OSError as e:
        r += " noseek %d" % e.errno
    print(r, flush=True)
    os.write(2, b"from-b\n" + b"x" * 10000)
"#;

#[test]
fn a_payload_cannot_truncate_or_rewrite_the_shared_log() {
    require!("python3", have_python(), "python3 is not installed");
    for mode in modes() {
        let dir = TempDir::new("serve-log");
        let log = dir.path().join("sandboxes.log");
        let mut child = cordon(mode)
            .args(["serve", "--listen", "0", "--log"])
            .arg(&log)
            .args(["--", "/usr/bin/python3", "-c", PAYLOAD])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cordon serve");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let port: u16 = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "{mode:?}: no listening line"
            );
            if let Some(rest) = line.split("listening on 127.0.0.1:").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        let wait = |what: &str| {
            assert!(
                wait_until(scaled(Duration::from_secs(20)).as_secs_f64(), || text()
                    .contains(what)),
                "{mode:?}: the log has no {what:?}: {}",
                text()
            );
        };
        let mut a = TcpStream::connect(("127.0.0.1", port)).unwrap();
        a.write_all(b"a\n").unwrap();
        wait("[conn 1] from-a\n");
        let mut b = TcpStream::connect(("127.0.0.1", port)).unwrap();
        b.set_read_timeout(Some(scaled(Duration::from_secs(20)))).unwrap();
        b.write_all(b"b\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&b).read_line(&mut answer).unwrap();
        // A pipe: neither truncated (EINVAL) nor seekable (ESPIPE).
        assert_eq!(answer, "refused 22 noseek 29\n", "{mode:?}");
        a.write_all(b"\n").unwrap();
        wait("[conn 2] from-b\n");
        let x = "x".repeat(4096);
        wait(&format!(
            "[conn 2] {}\n[conn 2] {x}\n[conn 2] {}\n",
            x,
            "x".repeat(10000 - 2 * 4096)
        ));
        // What connection 1 logged is still there, first.
        assert!(text().starts_with("[conn 1] from-a\n"), "{mode:?}: {}", text());
        let _ = child.kill();
        let _ = child.wait();
    }
}
