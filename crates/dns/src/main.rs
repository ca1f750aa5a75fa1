//! `bulwark-dns --records FILE`: runs the resolver for one container network.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Name resolver for one bulwark container network.
#[derive(Debug, Parser)]
#[command(name = "bulwark-dns", version)]
struct Args {
    /// The network's records file (JSON); its lock is FILE.lock. Exits 0 when FILE is
    /// removed, or at once if another resolver holds the lock.
    #[arg(long, value_name = "FILE")]
    records: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match bulwark_dns::run(&args.records) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bulwark-dns: {err}");
            ExitCode::FAILURE
        }
    }
}
