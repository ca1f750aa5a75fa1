//! `bulwark-check`: runs inside a test container and tells what it really got from the
//! runtime (ids, capabilities, mounts, limits...), or probes one thing on request.
//!
//! It must run in a static busybox rootfs with no libc, so it is built with
//! `cargo rustc -p bulwark-check --release -- -C target-feature=+crt-static`.
#![deny(unsafe_code)]

mod caps;
mod commands;
mod kernel;
mod procfs;
mod report;

use std::ffi::OsString;

use commands::Usage;

const USAGE: &str = "usage: bulwark-check report
       bulwark-check exit N
       bulwark-check sleep SECS
       bulwark-check wait-signal
       bulwark-check open PATH r|w|rw
       bulwark-check rewrite PATH
       bulwark-check cat PATH
       bulwark-check stat PATH
       bulwark-check syscall NR [ARG...]
       bulwark-check tiocsti
       bulwark-check forks N [HOLD_SECS]
       bulwark-check alloc MIB
       bulwark-check as UID PROGRAM [ARG...]
       bulwark-check udp-echo PORT";

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let status = match run(&args) {
        Ok(status) => status,
        Err(Usage(message)) => {
            eprintln!("bulwark-check: {message}\n{USAGE}");
            2
        }
    };
    std::process::exit(status);
}

fn run(args: &[OsString]) -> Result<i32, Usage> {
    let command = args.first().and_then(|c| c.to_str()).unwrap_or("");
    let operands = &args[args.len().min(1)..];
    match (command, operands) {
        ("report", []) => {
            println!("{}", report::report());
            Ok(0)
        }
        ("exit", [status]) => commands::exit(status),
        ("sleep", [secs]) => commands::sleep(secs),
        ("wait-signal", []) => Ok(commands::wait_signal()),
        ("open", [path, mode]) => commands::open(path, mode),
        ("rewrite", [path]) => Ok(commands::rewrite(path)),
        ("cat", [path]) => Ok(commands::cat(path)),
        ("stat", [path]) => Ok(commands::stat(path)),
        ("syscall", [number, args @ ..]) => commands::syscall(number, args),
        ("tiocsti", []) => Ok(commands::tiocsti()),
        ("forks", [count]) => commands::forks(count, None),
        ("forks", [count, hold]) => commands::forks(count, Some(hold)),
        ("alloc", [mib]) => commands::alloc(mib),
        ("as", [uid, command @ ..]) => commands::run_as(uid, command),
        ("udp-echo", [port]) => commands::udp_echo(port),
        ("", _) => Err(Usage("no command given".into())),
        _ => Err(Usage(format!(
            "unknown command or wrong operands: {args:?}"
        ))),
    }
}
