//! The container process's own settings: limits, scheduling, identity, capabilities,
//! and finally the exec of the user's program. Shared by `create` and `exec`; what they
//! apply was decided by planning ([`ProcessConfig`]), so nothing here re-checks it.
use std::path::{Path, PathBuf};

use bulwark_spec::linux::MemoryPolicy;
use bulwark_spec::runtime::PosixRlimitType;
use bulwark_spec::{CpuList, ProcessConfig};
use bulwark_sys::tune;
use caps::CapSet;
use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};

use crate::StepError;

/// What the container as a whole sets on each of its processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shared<'a> {
    pub personality: Option<u32>,
    pub memory_policy: Option<&'a MemoryPolicy>,
}

/// Settings that need privileges the process is about to lose: rlimits (raising a hard
/// limit), oom_score_adj (lowering it), personality, scheduler, io priority, memory
/// policy, initial affinity.
pub fn apply_privileged_settings(
    process: &ProcessConfig,
    shared: Shared<'_>,
) -> Result<(), StepError> {
    for (index, rlimit) in process.rlimits().iter().enumerate() {
        setrlimit(rlimit_resource(rlimit.kind), rlimit.soft, rlimit.hard).map_err(
            StepError::sys(format!(
                "setting process.rlimits[{index}] ({})",
                rlimit.kind
            )),
        )?;
    }
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| StepError::msg(format!("setting process.oomScoreAdj {adj}: {e}")))?;
    }
    if let Some(persona) = shared.personality {
        nix::sys::personality::set(nix::sys::personality::Persona::from_bits_retain(
            persona as i32,
        ))
        .map_err(StepError::sys("setting linux.personality"))?;
    }
    if let Some(io) = process.io_priority() {
        tune::set_io_priority(io.class, io.level)
            .map_err(StepError::sys("setting process.ioPriority"))?;
    }
    if let Some(s) = process.scheduler() {
        tune::set_scheduler(tune::SchedAttr {
            policy: s.policy,
            flags: s.flags,
            nice: s.nice,
            priority: s.priority,
            runtime: s.runtime,
            deadline: s.deadline,
            period: s.period,
            ..Default::default()
        })
        .map_err(StepError::sys("setting process.scheduler"))?;
    }
    if let Some(policy) = shared.memory_policy {
        tune::set_memory_policy(policy.mode, &policy.nodes)
            .map_err(StepError::sys("setting linux.memoryPolicy"))?;
    }
    if let Some(cpus) = process.affinity_initial() {
        set_affinity(cpus, "process.execCPUAffinity.initial")?;
    }
    Ok(())
}

fn rlimit_resource(kind: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match kind {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Pins the process to the listed CPUs (`field` names them in errors).
pub fn set_affinity(cpus: &CpuList, field: &str) -> Result<(), StepError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in &cpus.0 {
        set.set(*cpu)
            .map_err(StepError::sys(format!("{field}: cpu {cpu}")))?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(StepError::sys(format!("setting {field}")))
}

/// Enters `process.cwd` and checks the result is inside the container's root: a cwd that
/// resolves outside it (a leaked fd, CVE-2024-21626) is refused.
pub fn enter_cwd(cwd: &Path) -> Result<(), StepError> {
    nix::unistd::chdir(cwd).map_err(StepError::sys(format!(
        "entering process.cwd {}",
        cwd.display()
    )))?;
    let outside = || {
        StepError::msg(format!(
            "process.cwd {} is outside the container's root",
            cwd.display()
        ))
    };
    match nix::unistd::getcwd() {
        Ok(now) if now.is_absolute() => Ok(()),
        _ => Err(outside()),
    }
}

/// Finds the program to run as a shell would, with the container's `PATH`. The wording
/// of the errors is the one engines look for to pick exit codes 126 and 127.
pub fn resolve_executable(process: &ProcessConfig) -> Result<PathBuf, StepError> {
    let program = process.program();
    let check = |path: &Path| -> Result<(), StepError> {
        let meta = std::fs::metadata(path).map_err(|e| StepError::Exec {
            program: program.to_owned(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::ENOENT)),
        })?;
        if meta.is_dir() || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
            return Err(StepError::Exec {
                program: program.to_owned(),
                errno: Errno::EACCES,
            });
        }
        Ok(())
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        check(&path)?;
        return Ok(path);
    }
    let search = process
        .env_var("PATH")
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in search.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if candidate.exists() {
            match check(&candidate) {
                Ok(()) => return Ok(candidate),
                Err(e) => denied = Some(e),
            }
        }
    }
    Err(denied.unwrap_or_else(|| StepError::NotInPath {
        program: program.to_owned(),
    }))
}

/// A capability object with every set empty.
pub fn no_capabilities() -> bulwark_spec::runtime::LinuxCapabilities {
    serde_json::from_str("{}").expect("an empty object is a valid capabilities object")
}

/// Takes on `process.user` (groups, gid, uid, umask) and `process.capabilities`.
/// `before_narrowing` runs once the ids are switched, while every permitted capability
/// is still effective (the seccomp filter goes on there when it needs CAP_SYS_ADMIN).
pub fn switch_user(
    process: &ProcessConfig,
    setgroups_denied: bool,
    before_narrowing: impl FnOnce() -> Result<(), StepError>,
) -> Result<(), StepError> {
    let wanted = process.capabilities();
    let field = "process.capabilities";
    // The bounding set can only shrink while CAP_SETPCAP is still effective.
    for cap in caps::runtime::thread_all_supported() {
        if !wanted.bounding.contains(cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| {
                StepError::msg(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(StepError::sys("PR_SET_KEEPCAPS"))?;
    let user = process.user();
    set_groups(&user.additional_gids, setgroups_denied)?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(StepError::sys(format!(
        "setting process.user.gid {}",
        user.gid
    )))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(StepError::sys(format!(
        "setting process.user.uid {}",
        user.uid
    )))?;
    nix::sys::prctl::set_keepcaps(false).map_err(StepError::sys("PR_SET_KEEPCAPS"))?;
    if let Some(mask) = user.umask {
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    }

    // After setuid to a non-root uid only the permitted set survives; restore effective
    // from it so the sets below can be changed, then narrow everything to what was asked.
    let kept = caps::read(None, CapSet::Permitted)
        .map_err(|e| StepError::msg(format!("reading capabilities: {e}")))?;
    let cap_err = |set: &'static str| {
        move |e: caps::errors::CapsError| StepError::msg(format!("setting {field}.{set}: {e}"))
    };
    // The kernel wants effective within permitted at every step: narrow effective first.
    caps::set(None, CapSet::Effective, &kept).map_err(cap_err("effective"))?;
    before_narrowing()?;
    caps::set(None, CapSet::Inheritable, &wanted.inheritable.to_hash_set())
        .map_err(cap_err("inheritable"))?;
    caps::set(None, CapSet::Effective, &wanted.effective.to_hash_set())
        .map_err(cap_err("effective"))?;
    caps::set(None, CapSet::Permitted, &wanted.permitted.to_hash_set())
        .map_err(cap_err("permitted"))?;
    caps::clear(None, CapSet::Ambient).map_err(cap_err("ambient"))?;
    // Planning kept only ambient capabilities that are permitted and inheritable.
    for cap in wanted.ambient.iter() {
        caps::raise(None, CapSet::Ambient, cap).map_err(cap_err("ambient"))?;
    }
    Ok(())
}

/// `process.user.additionalGids`. Where a runtime without root mapped only its own gid
/// (`setgroups_denied`) the kernel refuses setgroups(2), and the process keeps the
/// groups the runtime was started with.
fn set_groups(groups: &[u32], setgroups_denied: bool) -> Result<(), StepError> {
    if setgroups_denied {
        if groups.is_empty() {
            return Ok(());
        }
        return Err(StepError::msg(format!(
            "process.user.additionalGids {groups:?} cannot be set: setgroups is denied in this user namespace, because the rootless runtime mapped only its own gid (map more gids, from /etc/subgid, in linux.gidMappings)"
        )));
    }
    let gids: Vec<Gid> = groups.iter().map(|g| Gid::from_raw(*g)).collect();
    nix::unistd::setgroups(&gids).map_err(StepError::sys(format!(
        "setting process.user.additionalGids {groups:?}"
    )))
}

/// Applies the LSM labels the program runs under from its exec on (planning kept them
/// only where the host can apply them).
pub fn set_exec_labels(process: &ProcessConfig) -> Result<(), StepError> {
    if let Some(profile) = process.apparmor_profile() {
        write_exec_attr("apparmor/exec", "exec", &format!("exec {profile}")).map_err(|e| {
            StepError::msg(format!("applying process.apparmorProfile {profile:?}: {e}"))
        })?;
    }
    if let Some(label) = process.selinux_label() {
        write_exec_attr("exec", "exec", label)
            .map_err(|e| StepError::msg(format!("applying process.selinuxLabel {label:?}: {e}")))?;
    }
    Ok(())
}

/// Writes `/proc/thread-self/attr/<attr>` (or the older `attr/<fallback>`).
fn write_exec_attr(attr: &str, fallback: &str, value: &str) -> std::io::Result<()> {
    let path = format!("/proc/thread-self/attr/{attr}");
    let path = if Path::new(&path).exists() {
        path
    } else {
        format!("/proc/thread-self/attr/{fallback}")
    };
    std::fs::write(path, value)
}

/// Replaces the process with the user's program; returns only on failure.
pub fn exec(
    path: &Path,
    process: &ProcessConfig,
    seccomp: Option<&bulwark_seccomp::Filter>,
) -> StepError {
    let program = match std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) {
        Ok(program) => program,
        Err(_) => return StepError::msg("the program path contains a NUL byte"),
    };
    if let Err(e) = set_exec_labels(process).and_then(|()| {
        crate::seccomp::install_at(crate::seccomp::Before::Exec, seccomp, process, None)
    }) {
        return e;
    }
    let Err(errno) = nix::unistd::execve(&program, process.args(), process.env());
    StepError::Exec {
        program: path.display().to_string(),
        errno,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(env: &[&str], program: &str) -> ProcessConfig {
        let process: bulwark_spec::runtime::Process = serde_json::from_value(serde_json::json!({
            "args": [program], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": env}))
        .unwrap();
        ProcessConfig::plan(&process, &bulwark_spec::Host::privileged(), &mut Vec::new()).unwrap()
    }

    #[test]
    fn missing_program_wording_and_exit_codes() {
        let err = resolve_executable(&process(&["PATH=/nonexistent"], "no-such-program-xyz"))
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("executable file not found in $PATH"));
        assert_eq!(err.exit_code(), 127);
        let err = resolve_executable(&process(&[], "/nonexistent/prog")).unwrap_err();
        assert!(
            err.to_string().contains("no such file or directory"),
            "{err}"
        );
        assert_eq!(err.exit_code(), 127);
        let err = resolve_executable(&process(&[], "/")).unwrap_err();
        assert!(err.to_string().contains("permission denied"), "{err}");
        assert_eq!(err.exit_code(), 126);
    }
}
