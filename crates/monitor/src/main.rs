//! `bulwark-mon DIR --runtime-root ROOT [--sync-fd N] [--attach] [--size ROWS,COLS]`: the
//! monitor of the container whose directory is DIR. The engine starts it and returns;
//! it is the container's parent and subreaper for as long as the container lives:
//!
//! 1. re-execute from a sealed binary (the container's init starts as its fork), leave
//!    the caller's session, take `monitor.lock` (held until the monitor ends);
//! 2. create and start the container through the runtime library, its stdout and stderr
//!    on pipes (or a pty) the monitor reads;
//! 3. report the start (or why it failed) on the sync fd, then pump the output into the
//!    log and to an attached client until the init exits;
//! 4. record the exit status, delete the runtime's state, and start again as the restart
//!    policy says; at the end, with `--rm`, become `bulwark rm -f`.
#![forbid(unsafe_code)]

mod attach;
mod error;
mod health;
mod pump;
mod run;
mod sink;

use std::path::PathBuf;
use std::process::ExitCode;

/// The monitor's command line.
#[derive(Debug)]
pub struct Args {
    pub dir: PathBuf,
    pub runtime_root: PathBuf,
    pub sync_fd: Option<i32>,
    /// Stdin, stdout and stderr are a client's: relay to them.
    pub attach: bool,
    pub size: Option<(u16, u16)>,
    pub rootless: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Option<Args> {
    let mut parsed = Args {
        dir: PathBuf::from(args.next()?),
        runtime_root: PathBuf::new(),
        sync_fd: None,
        attach: false,
        size: None,
        rootless: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--runtime-root" => parsed.runtime_root = PathBuf::from(args.next()?),
            "--sync-fd" => parsed.sync_fd = Some(args.next()?.parse().ok()?),
            "--attach" => parsed.attach = true,
            "--rootless" => parsed.rootless = true,
            "--size" => {
                let text = args.next()?;
                let (rows, cols) = text.split_once(',')?;
                parsed.size = Some((rows.parse().ok()?, cols.parse().ok()?));
            }
            _ => return None,
        }
    }
    (!parsed.runtime_root.as_os_str().is_empty()).then_some(parsed)
}

fn main() -> ExitCode {
    let Some(args) = parse(std::env::args().skip(1)) else {
        eprintln!("usage: bulwark-mon DIR --runtime-root ROOT [--sync-fd N] [--attach] [--size ROWS,COLS] [--rootless]");
        return ExitCode::from(2);
    };
    // The sync fd, once the monitor has taken it (after its re-exec from a sealed binary).
    let mut sync = None;
    match run::monitor(&args, &mut sync) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            run::report_failure(&args, &mut sync, &e);
            ExitCode::FAILURE
        }
    }
}
