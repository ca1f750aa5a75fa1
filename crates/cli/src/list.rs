//! `list` and `ps`.
use bulwark_runtime::{self as runtime, StateRoot};

use crate::args::{ListArgs, ListFormat, PsArgs};
use crate::CmdResult;

pub fn list(root: &StateRoot, a: &ListArgs) -> CmdResult {
    let mut states = Vec::new();
    for id in root.ids()? {
        // A container still being created has no state yet: skip it.
        if let Ok(state) = runtime::state_of(root, &id) {
            states.push(state);
        }
    }
    if a.quiet {
        states.iter().for_each(|s| println!("{}", s.id));
        return Ok(0);
    }
    match a.format {
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string(&states).expect("states always serialize")
        ),
        ListFormat::Table => {
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for s in &states {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} {:<32} {}",
                    s.id,
                    s.pid,
                    s.status,
                    s.bundle.display(),
                    s.created,
                    s.owner
                );
            }
        }
    }
    Ok(0)
}

pub fn ps(root: &StateRoot, a: &PsArgs) -> CmdResult {
    let pids = runtime::processes(root, &a.id)?;
    match a.format {
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string(&pids).expect("pids always serialize")
        ),
        ListFormat::Table => {
            println!("{:<8} {:<8} {:<8} CMD", "UID", "PID", "PPID");
            for pid in pids {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let field = |name: &str| {
                    status
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .and_then(|v| v.split_whitespace().next())
                        .unwrap_or("?")
                        .to_string()
                };
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                println!(
                    "{:<8} {:<8} {:<8} {}",
                    field("Uid:"),
                    pid,
                    field("PPid:"),
                    cmd.trim()
                );
            }
        }
    }
    Ok(0)
}
