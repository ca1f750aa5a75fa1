//! `bulwark-check report`: one JSON object describing what this process really got.
//!
//! Keys: pid, ppid, uid, euid, suid, fsuid, gid, egid, sgid, fsgid, groups,
//! capabilities.{bounding,effective,inheritable,permitted,ambient}.{value,names},
//! no_new_privs, seccomp, seccomp_filters, signals.{blocked,ignored,caught}.{value,names},
//! umask, rlimits.RLIMIT_*.{soft,hard} (null = unlimited), cwd, env, fds, hostname,
//! domainname, namespaces, mounts, cgroup, oom_score_adj, personality, io_priority,
//! scheduler, cpu_affinity, memory_policy, stdin_isatty, stdout_isatty, tty.
//!
//! Any item that cannot be read becomes the string `"error: ..."`, so a missing /proc
//! or a seccomp filter that denies one syscall never hides the rest of the report.
//!
//! Two things in the report are the checker's own doing, not the runtime's: Rust's
//! startup ignores SIGPIPE, and its stack-overflow guard catches SIGSEGV and SIGBUS.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{stdin, stdout};
use std::os::fd::{AsFd, AsRawFd};

use nix::sched::{sched_getaffinity, CpuSet};
use nix::sys::resource::{getrlimit, Resource};
use nix::sys::signal::Signal;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{self, Pid};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::{caps, kernel, procfs};

type Status = BTreeMap<String, String>;

/// Builds the whole report.
pub fn report() -> Value {
    let status = read("/proc/self/status").map(|text| procfs::parse_status(&text));
    let mut out = Map::new();
    out.insert("pid".into(), json!(unistd::getpid().as_raw()));
    out.insert("ppid".into(), json!(unistd::getppid().as_raw()));
    insert_ids(&mut out, &status);
    out.insert("capabilities".into(), capabilities(&status));
    insert_security(&mut out, &status);
    out.insert("signals".into(), signals(&status));
    out.insert("umask".into(), json!(current_umask()));
    out.insert("rlimits".into(), rlimits());
    out.insert(
        "cwd".into(),
        value(unistd::getcwd().map(|p| p.to_string_lossy().into_owned())),
    );
    out.insert("env".into(), environment());
    out.insert("fds".into(), value(open_fds()));
    out.insert(
        "hostname".into(),
        value(unistd::gethostname().map(|h| h.to_string_lossy().into_owned())),
    );
    out.insert(
        "domainname".into(),
        value(nix::sys::utsname::uname().map(|u| u.domainname().to_string_lossy().into_owned())),
    );
    out.insert("namespaces".into(), value(namespaces()));
    out.insert("mounts".into(), value(mounts()));
    out.insert("cgroup".into(), value(read_lines("/proc/self/cgroup")));
    out.insert("oom_score_adj".into(), value(oom_score_adj()));
    out.insert(
        "personality".into(),
        // nix's Persona drops PER_LINUX32 (0x8); read the kernel's own value.
        value(
            std::fs::read_to_string("/proc/self/personality")
                .map_err(|e| e.to_string())
                .and_then(|t| i64::from_str_radix(t.trim(), 16).map_err(|e| e.to_string())),
        ),
    );
    out.insert(
        "io_priority".into(),
        value(kernel::io_priority().map(io_priority)),
    );
    out.insert("scheduler".into(), scheduler());
    out.insert("cpu_affinity".into(), value(cpu_affinity()));
    out.insert(
        "memory_policy".into(),
        value(kernel::memory_policy().map(memory_policy)),
    );
    insert_terminal(&mut out);
    Value::Object(out)
}

/// The item, or `"error: ..."` when it could not be read.
fn value<T: Serialize, E: Display>(result: Result<T, E>) -> Value {
    match result.map(serde_json::to_value) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => Value::String(format!("error: {e}")),
        Err(e) => Value::String(format!("error: {e}")),
    }
}

fn status_value<'a>(status: &'a Result<Status, String>, key: &str) -> Result<&'a str, String> {
    status
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|s| procfs::status_field(s, key))
}

/// Real, effective and saved ids come from the syscalls, so they work without /proc;
/// the filesystem ids only exist in /proc/self/status.
fn insert_ids(out: &mut Map<String, Value>, status: &Result<Status, String>) {
    let uids =
        unistd::getresuid().map(|r| [r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()]);
    let gids =
        unistd::getresgid().map(|r| [r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()]);
    for (i, (uid_key, gid_key)) in [("uid", "gid"), ("euid", "egid"), ("suid", "sgid")]
        .into_iter()
        .enumerate()
    {
        out.insert(uid_key.into(), value(uids.map(|ids| ids[i])));
        out.insert(gid_key.into(), value(gids.map(|ids| ids[i])));
    }
    let fs_id = |key| {
        status_value(status, key)
            .and_then(procfs::parse_numbers)
            .and_then(|ids| {
                ids.get(3)
                    .copied()
                    .ok_or_else(|| format!("{key} line has no filesystem id"))
            })
    };
    out.insert("fsuid".into(), value(fs_id("Uid")));
    out.insert("fsgid".into(), value(fs_id("Gid")));
    out.insert(
        "groups".into(),
        value(unistd::getgroups().map(|g| g.iter().map(|g| g.as_raw()).collect::<Vec<_>>())),
    );
}

fn capabilities(status: &Result<Status, String>) -> Value {
    let sets = [
        ("inheritable", "CapInh"),
        ("permitted", "CapPrm"),
        ("effective", "CapEff"),
        ("bounding", "CapBnd"),
        ("ambient", "CapAmb"),
    ];
    let map = sets.into_iter().map(|(name, key)| {
        let mask = status_value(status, key).and_then(procfs::parse_hex_mask);
        (
            name.to_owned(),
            value(mask.map(|m| json!({ "value": m, "names": caps::names(m) }))),
        )
    });
    Value::Object(map.collect())
}

fn insert_security(out: &mut Map<String, Value>, status: &Result<Status, String>) {
    let no_new_privs = match status_value(status, "NoNewPrivs") {
        Ok(flag) => Ok(flag == "1"),
        // prctl answers even where /proc is missing.
        Err(_) => nix::sys::prctl::get_no_new_privs().map_err(|e| e.to_string()),
    };
    out.insert("no_new_privs".into(), value(no_new_privs));
    let number = |key| {
        status_value(status, key)
            .and_then(|v| v.parse::<u32>().map_err(|e| format!("{key} {v:?}: {e}")))
    };
    out.insert("seccomp".into(), value(number("Seccomp")));
    out.insert("seccomp_filters".into(), value(number("Seccomp_filters")));
}

fn signals(status: &Result<Status, String>) -> Value {
    let sets = [
        ("blocked", "SigBlk"),
        ("ignored", "SigIgn"),
        ("caught", "SigCgt"),
    ];
    let map = sets.into_iter().map(|(name, key)| {
        let mask = status_value(status, key).and_then(procfs::parse_hex_mask);
        (
            name.to_owned(),
            value(mask.map(|m| json!({ "value": m, "names": signal_names(m) }))),
        )
    });
    Value::Object(map.collect())
}

/// Bit `n` of a signal mask stands for signal `n + 1`.
fn signal_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            let signo = bit + 1;
            Signal::try_from(signo)
                .map_or_else(|_| format!("SIG{signo}"), |s| s.as_str().to_owned())
        })
        .collect()
}

fn current_umask() -> u32 {
    // The only way to read the umask without /proc is to set it; put it straight back.
    let old = umask(Mode::empty());
    umask(old);
    old.bits()
}

fn rlimits() -> Value {
    let resources = [
        ("RLIMIT_AS", Resource::RLIMIT_AS),
        ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
        ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    ];
    let limit = |v: libc::rlim_t| {
        if v == libc::RLIM_INFINITY {
            Value::Null
        } else {
            json!(v)
        }
    };
    let map = resources.into_iter().map(|(name, resource)| {
        let both = getrlimit(resource)
            .map(|(soft, hard)| json!({ "soft": limit(soft), "hard": limit(hard) }));
        (name.to_owned(), value(both))
    });
    Value::Object(map.collect())
}

fn environment() -> Value {
    let vars = std::env::vars_os().map(|(k, v)| {
        (
            k.to_string_lossy().into_owned(),
            Value::String(v.to_string_lossy().into_owned()),
        )
    });
    Value::Object(vars.collect())
}

/// fd number -> readlink target, leaving out the descriptor used to list them.
fn open_fds() -> Result<BTreeMap<i32, String>, String> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let context = |e: nix::Error| format!("/proc/self/fd: {e}");
    let mut dir = nix::dir::Dir::open("/proc/self/fd", flags, Mode::empty()).map_err(context)?;
    let own = dir.as_raw_fd();
    let mut fds = BTreeMap::new();
    for entry in dir.iter() {
        let entry = entry.map_err(context)?;
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fd == own {
            continue;
        }
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).map_or_else(
            |e| format!("error: {e}"),
            |t| t.to_string_lossy().into_owned(),
        );
        fds.insert(fd, target);
    }
    Ok(fds)
}

fn namespaces() -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let entries = std::fs::read_dir("/proc/self/ns").map_err(|e| format!("/proc/self/ns: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("/proc/self/ns: {e}"))?;
        let target = std::fs::read_link(entry.path()).map_or_else(
            |e| format!("error: {e}"),
            |t| t.to_string_lossy().into_owned(),
        );
        out.insert(entry.file_name().to_string_lossy().into_owned(), target);
    }
    Ok(out)
}

fn mounts() -> Result<Vec<Value>, String> {
    let text = read("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .map(|line| value(procfs::parse_mountinfo_line(line)))
        .collect())
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

fn read_lines(path: &str) -> Result<Vec<String>, String> {
    Ok(read(path)?.lines().map(str::to_owned).collect())
}

fn oom_score_adj() -> Result<i32, String> {
    let text = read("/proc/self/oom_score_adj")?;
    text.trim().parse().map_err(|e| format!("{text:?}: {e}"))
}

fn io_priority(raw: i64) -> Value {
    const CLASSES: [&str; 4] = [
        "IOPRIO_CLASS_NONE",
        "IOPRIO_CLASS_RT",
        "IOPRIO_CLASS_BE",
        "IOPRIO_CLASS_IDLE",
    ];
    let class = raw >> 13;
    let name = usize::try_from(class)
        .ok()
        .and_then(|c| CLASSES.get(c).copied());
    json!({ "class": name.map_or_else(|| class.to_string(), str::to_owned), "level": raw & 0x1fff, "raw": raw })
}

fn scheduler() -> Value {
    const RESET_ON_FORK: libc::c_int = 0x4000_0000;
    let policy = kernel::scheduler_policy().map(|raw| {
        let name = match raw & !RESET_ON_FORK {
            libc::SCHED_OTHER => "SCHED_OTHER".to_owned(),
            libc::SCHED_FIFO => "SCHED_FIFO".to_owned(),
            libc::SCHED_RR => "SCHED_RR".to_owned(),
            libc::SCHED_BATCH => "SCHED_BATCH".to_owned(),
            libc::SCHED_IDLE => "SCHED_IDLE".to_owned(),
            6 => "SCHED_DEADLINE".to_owned(),
            other => other.to_string(),
        };
        json!({ "name": name, "reset_on_fork": raw & RESET_ON_FORK != 0 })
    });
    json!({
        "policy": value(policy),
        "priority": value(kernel::scheduler_priority()),
        "nice": value(kernel::nice()),
    })
}

fn cpu_affinity() -> nix::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

fn memory_policy(raw: libc::c_int) -> Value {
    const MODES: [&str; 7] = [
        "MPOL_DEFAULT",
        "MPOL_PREFERRED",
        "MPOL_BIND",
        "MPOL_INTERLEAVE",
        "MPOL_LOCAL",
        "MPOL_PREFERRED_MANY",
        "MPOL_WEIGHTED_INTERLEAVE",
    ];
    const FLAGS: [(libc::c_int, &str); 3] = [
        (1 << 15, "MPOL_F_STATIC_NODES"),
        (1 << 14, "MPOL_F_RELATIVE_NODES"),
        (1 << 13, "MPOL_F_NUMA_BALANCING"),
    ];
    let all_flags = FLAGS.iter().fold(0, |acc, (bit, _)| acc | bit);
    let mode = raw & !all_flags;
    let name = usize::try_from(mode)
        .ok()
        .and_then(|m| MODES.get(m).copied());
    let flags: Vec<&str> = FLAGS
        .iter()
        .filter(|(bit, _)| raw & bit != 0)
        .map(|(_, n)| *n)
        .collect();
    json!({ "mode": name.map_or_else(|| mode.to_string(), str::to_owned), "flags": flags, "raw": raw })
}

fn insert_terminal(out: &mut Map<String, Value>) {
    let stdin_tty = unistd::isatty(stdin().as_fd());
    out.insert("stdin_isatty".into(), value(stdin_tty));
    out.insert(
        "stdout_isatty".into(),
        value(unistd::isatty(stdout().as_fd())),
    );
    let tty = match stdin_tty {
        Ok(true) => {
            let name = unistd::ttyname(stdin().as_fd()).map(|p| p.to_string_lossy().into_owned());
            let size = kernel::window_size(stdin().as_fd());
            json!({
                "name": value(name),
                "rows": value(size.map(|(rows, _)| rows)),
                "cols": value(size.map(|(_, cols)| cols)),
            })
        }
        _ => Value::Null,
    };
    out.insert("tty".into(), tty);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_has_every_key_and_own_ids() {
        let report = report();
        for key in [
            "pid",
            "uid",
            "capabilities",
            "rlimits",
            "mounts",
            "namespaces",
            "tty",
            "scheduler",
        ] {
            assert!(report.get(key).is_some(), "missing {key}");
        }
        assert_eq!(report["uid"], json!(unistd::getuid().as_raw()));
        assert_eq!(report["pid"], json!(std::process::id()));
    }

    #[test]
    fn signal_mask_names() {
        assert_eq!(signal_names((1 << 14) | (1 << 9)), ["SIGUSR1", "SIGTERM"]);
        assert_eq!(signal_names(1 << 40), ["SIG41"]);
    }

    #[test]
    fn decoders_name_known_values() {
        assert_eq!(io_priority((2 << 13) | 4)["class"], "IOPRIO_CLASS_BE");
        assert_eq!(io_priority((2 << 13) | 4)["level"], 4);
        assert_eq!(memory_policy(2 | (1 << 15))["mode"], "MPOL_BIND");
        assert_eq!(
            memory_policy(2 | (1 << 15))["flags"],
            json!(["MPOL_F_STATIC_NODES"])
        );
    }
}
