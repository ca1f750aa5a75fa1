//! `exec`: builds the process from `--process` or from the command line on top of the
//! container's own process settings, then runs it (in the foreground unless detached).
use bulwark_runtime::{self as runtime, ExecOptions, StateRoot, SubCgroups};
use bulwark_spec::runtime::{Capability, Process};

use crate::args::ExecArgs;
use crate::error::CliError;
use crate::foreground;
use crate::log::Logger;
use crate::CmdResult;

pub fn exec(root: &StateRoot, a: &ExecArgs, rootless: bool, logger: &Logger) -> CmdResult {
    let mut process = build_process(root, a)?;
    let relay = if process.terminal().unwrap_or(false) && !a.detach && a.console_socket.is_none() {
        // The program starts at once: give its pty our window size from the start.
        if let (None, Some((rows, cols))) = (process.console_size(), foreground::own_window_size())
        {
            let size: bulwark_spec::runtime::Box =
                serde_json::from_value(serde_json::json!({"height": rows, "width": cols}))
                    .expect("a valid console size");
            process.set_console_size(Some(size));
        }
        Some(foreground::console_pair()?)
    } else {
        None
    };
    let (ours, theirs) = match relay {
        Some((ours, theirs)) => (Some(ours), Some(theirs)),
        None => (None, None),
    };
    let options = ExecOptions {
        process,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        console: theirs,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: SubCgroups::parse(&a.cgroup)?,
        rootless,
    };
    let signals = (!a.detach).then(foreground::Signals::catch).transpose()?;
    let execed = runtime::exec(root, &a.id, options)?;
    execed.warnings.iter().for_each(|w| logger.warn(w));
    let spawned = execed.spawned;
    let master = ours.as_ref().map(foreground::receive_master).transpose()?;
    match signals {
        Some(signals) => foreground::wait(signals, spawned.pid, master),
        None => Ok(0),
    }
}

fn build_process(root: &StateRoot, a: &ExecArgs) -> Result<Process, CliError> {
    if let Some(path) = &a.process {
        let text = std::fs::read(path).map_err(|source| CliError::Read {
            flag: "--process",
            path: path.clone(),
            source,
        })?;
        return serde_json::from_slice(&text).map_err(|source| CliError::Json {
            flag: "--process",
            path: path.clone(),
            source,
        });
    }
    if a.command.is_empty() {
        return Err(CliError::Usage(
            "exec needs a command to run after the container id, or --process FILE",
        ));
    }
    let container = root.open(&a.id)?;
    let saved_process = match container.load()? {
        Some(saved) => saved.spec()?.process().clone().unwrap_or_default(),
        None => Default::default(),
    };
    drop(container);
    let mut process = saved_process;
    process.set_args(Some(a.command.clone()));
    process.set_terminal(Some(a.tty));
    let mut env = process.env().clone().unwrap_or_default();
    for var in &a.env {
        let key = var.split('=').next().unwrap_or_default();
        if key.is_empty() || !var.contains('=') {
            return Err(CliError::Flag {
                flag: "--env",
                value: var.clone(),
                expected: "NAME=value".into(),
            });
        }
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(var.clone());
    }
    process.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        process.set_cwd(cwd.clone());
    }
    if let Some(user) = &a.user {
        let (uid, gid) = parse_user(user)?;
        let mut u = process.user().clone();
        u.set_uid(uid);
        if let Some(gid) = gid {
            u.set_gid(gid);
        }
        process.set_user(u);
    }
    if !a.additional_gids.is_empty() {
        let mut u = process.user().clone();
        u.set_additional_gids(Some(a.additional_gids.clone()));
        process.set_user(u);
    }
    if !a.caps.is_empty() {
        let mut caps = process
            .capabilities()
            .clone()
            .unwrap_or_else(bulwark_sandbox::no_capabilities);
        for name in &a.caps {
            let cap: Capability =
                serde_json::from_value(serde_json::Value::String(name.to_ascii_uppercase()))
                    .map_err(|_| CliError::Flag {
                        flag: "--cap",
                        value: name.clone(),
                        expected: "a capability such as CAP_NET_ADMIN".into(),
                    })?;
            let mut b = caps.bounding().clone().unwrap_or_default();
            b.insert(cap);
            caps.set_bounding(Some(b));
            let mut e = caps.effective().clone().unwrap_or_default();
            e.insert(cap);
            caps.set_effective(Some(e));
            let mut p = caps.permitted().clone().unwrap_or_default();
            p.insert(cap);
            caps.set_permitted(Some(p));
        }
        process.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    Ok(process)
}

/// `uid[:gid]`, numeric as runc takes it.
fn parse_user(text: &str) -> Result<(u32, Option<u32>), CliError> {
    let bad = || CliError::Flag {
        flag: "--user",
        value: text.to_owned(),
        expected: "uid or uid:gid, as numbers".into(),
    };
    let (uid, gid) = match text.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (text, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:2000").unwrap(), (1000, Some(2000)));
        assert!(parse_user("bob").unwrap_err().to_string().contains("bob"));
    }
}
