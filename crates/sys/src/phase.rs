//! Opt-in phase marks for profiling: with `BULWARK_PHASES` set in the runtime's
//! environment, each phase writes one line to stderr,
//! `bulwark-phase <CLOCK_MONOTONIC µs> <pid> <label>` (the container's init writes its
//! marks to the container's stderr, until it execs). `bench/phases.py` turns them into a
//! timeline. Unset, a mark costs one load of a cached flag.
use std::io::Write;
use std::sync::OnceLock;

static ENABLED: OnceLock<bool> = OnceLock::new();

/// Marks the end of the phase `label`.
pub fn mark(label: &str) {
    if !*ENABLED.get_or_init(|| std::env::var_os("BULWARK_PHASES").is_some()) {
        return;
    }
    let Ok(now) = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) else {
        return;
    };
    let micros = now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1_000;
    let line = format!("bulwark-phase {micros} {} {label}\n", std::process::id());
    let _ = std::io::stderr().write_all(line.as_bytes());
}
