//! Commands per second and latency of a named sandbox from the library
//! (issue 15): one `Sandbox::create`, then N sequential `session.run` of
//! `/bin/true` (or the command given), then `stop`. Prints p50/p90/p99 and
//! throughput; `bench/launch.sh` covers the command-line paths.
//!
//! Usage: cargo run --release --example session_bench -- [N] [CMD...]
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = match args.next() {
        Some(a) => a.parse()?,
        None => 2000,
    };
    let mut cmd: Vec<String> = args.collect();
    if cmd.is_empty() {
        cmd.push("/bin/true".to_string());
    }
    let policy = cordon::Policy::builtin_default()?;
    let t = Instant::now();
    let mut session = cordon::Sandbox::new(policy).create()?;
    let created = t.elapsed();
    // Warm-up: the first commands fault in init's pages.
    for _ in 0..20 {
        session.run(&cmd)?;
    }
    let mut lat = Vec::with_capacity(n);
    let t = Instant::now();
    for _ in 0..n {
        let t1 = Instant::now();
        let out = session.run(&cmd)?;
        lat.push(t1.elapsed());
        if out.exit_code != 0 {
            return Err(format!("{cmd:?} exited {}", out.exit_code).into());
        }
    }
    let total = t.elapsed();
    session.stop();
    lat.sort();
    let pct = |p: usize| lat[(lat.len() * p / 100).min(lat.len() - 1)];
    println!(
        "create {:.2} ms; {n} x {cmd:?}: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, {:.0} commands/s",
        created.as_secs_f64() * 1e3,
        pct(50).as_secs_f64() * 1e3,
        pct(90).as_secs_f64() * 1e3,
        pct(99).as_secs_f64() * 1e3,
        n as f64 / total.as_secs_f64()
    );
    Ok(())
}
