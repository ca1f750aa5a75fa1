//! The container process's own settings: limits, scheduling, identity, capabilities,
//! and finally the exec of the user's program. Shared by `create` and `exec`.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bulwark_spec::runtime::{
    Capabilities, Linux, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process,
};
use bulwark_sys::tune;
use caps::CapSet;
use nix::sys::resource::{setrlimit, Resource};
use nix::unistd::{Gid, Uid};

use crate::StepError;

/// Settings that need privileges the process is about to lose: rlimits (raising a hard
/// limit), oom_score_adj (lowering it), scheduler, io priority, memory policy, affinity.
pub fn apply_privileged_settings(
    process: &Process,
    linux: Option<&Linux>,
) -> Result<(), StepError> {
    apply_rlimits(process)?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| StepError::msg(format!("setting process.oomScoreAdj {adj}: {e}")))?;
    }
    if let Some(personality) = linux.and_then(|l| l.personality().as_ref()) {
        let persona = match personality.domain() {
            bulwark_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
            bulwark_spec::runtime::LinuxPersonalityDomain::PerLinux => 0,
        };
        nix::sys::personality::set(nix::sys::personality::Persona::from_bits_retain(persona))
            .map_err(StepError::sys("setting linux.personality"))?;
    }
    if let Some(io) = process.io_priority() {
        let class = match io.class() {
            bulwark_spec::runtime::IOPriorityClass::IoprioClassRt => 1,
            bulwark_spec::runtime::IOPriorityClass::IoprioClassBe => 2,
            bulwark_spec::runtime::IOPriorityClass::IoprioClassIdle => 3,
        };
        tune::set_io_priority(class, io.priority() as u32)
            .map_err(StepError::sys("setting process.ioPriority"))?;
    }
    if let Some(scheduler) = process.scheduler() {
        apply_scheduler(scheduler)?;
    }
    if let Some(policy) = linux.and_then(|l| l.memory_policy().as_ref()) {
        apply_memory_policy(policy)?;
    }
    if let Some(cpus) = process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.initial().as_deref())
    {
        set_affinity(cpus, "process.execCPUAffinity.initial")?;
    }
    Ok(())
}

fn rlimit_resource(typ: PosixRlimitType) -> Option<Resource> {
    use PosixRlimitType as T;
    Some(match typ {
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
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn apply_rlimits(process: &Process) -> Result<(), StepError> {
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let resource = rlimit_resource(rlimit.typ()).ok_or_else(|| {
            StepError::msg(format!(
                "process.rlimits[{index}].type {} is not supported",
                rlimit.typ()
            ))
        })?;
        setrlimit(resource, rlimit.soft(), rlimit.hard()).map_err(StepError::sys(format!(
            "setting process.rlimits[{index}] ({})",
            rlimit.typ()
        )))?;
    }
    Ok(())
}

fn apply_scheduler(scheduler: &bulwark_spec::runtime::Scheduler) -> Result<(), StepError> {
    use LinuxSchedulerPolicy as P;
    let policy = match scheduler.policy() {
        P::SchedOther => 0,
        P::SchedFifo => 1,
        P::SchedRr => 2,
        P::SchedBatch => 3,
        P::SchedIso => 4,
        P::SchedIdle => 5,
        P::SchedDeadline => 6,
    };
    let flags = scheduler.flags().iter().flatten().fold(0u64, |acc, flag| {
        acc | match flag {
            LinuxSchedulerFlag::SchedResetOnFork => 0x01,
            LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
            LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
            LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
            LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
            LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
            LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
        }
    });
    tune::set_scheduler(tune::SchedAttr {
        policy,
        flags,
        nice: scheduler.nice().unwrap_or(0),
        priority: scheduler.priority().unwrap_or(0) as u32,
        runtime: scheduler.runtime().unwrap_or(0),
        deadline: scheduler.deadline().unwrap_or(0),
        period: scheduler.period().unwrap_or(0),
        ..Default::default()
    })
    .map_err(StepError::sys("setting process.scheduler"))
}

fn apply_memory_policy(policy: &bulwark_spec::runtime::LinuxMemoryPolicy) -> Result<(), StepError> {
    use bulwark_spec::runtime::{MemoryPolicyFlagType as F, MemoryPolicyModeType as M};
    let mut mode = match policy.mode() {
        M::MpolDefault => 0,
        M::MpolPreferred => 1,
        M::MpolBind => 2,
        M::MpolInterleave => 3,
        M::MpolLocal => 4,
        M::MpolPreferredMany => 5,
        M::MpolWeightedInterleave => 6,
    };
    for flag in policy.flags().iter().flatten() {
        mode |= match flag {
            F::MpolFNumaBalancing => 1 << 13,
            F::MpolFRelativeNodes => 1 << 14,
            F::MpolFStaticNodes => 1 << 15,
        };
    }
    let mut mask = Vec::new();
    if let Some(nodes) = policy.nodes() {
        for node in parse_list(nodes, "linux.memoryPolicy.nodes")? {
            if mask.len() <= node / 64 {
                mask.resize(node / 64 + 1, 0u64);
            }
            mask[node / 64] |= 1 << (node % 64);
        }
    }
    tune::set_memory_policy(mode, &mask).map_err(StepError::sys("setting linux.memoryPolicy"))
}

/// Parses a list such as `0-3,7` into its members.
pub(crate) fn parse_list(list: &str, field: &str) -> Result<Vec<usize>, StepError> {
    let bad = || {
        StepError::msg(format!(
            "{field} {list:?} is not valid (expected a list such as 0-3,7)"
        ))
    };
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let lo: usize = lo.trim().parse().map_err(|_| bad())?;
        let hi: usize = hi.trim().parse().map_err(|_| bad())?;
        if lo > hi || hi > 8192 {
            return Err(bad());
        }
        out.extend(lo..=hi);
    }
    Ok(out)
}

/// Pins the process to the listed cpus.
pub fn set_affinity(list: &str, field: &str) -> Result<(), StepError> {
    let mut set = nix::sched::CpuSet::new();
    for cpu in parse_list(list, field)? {
        set.set(cpu)
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
    let now = nix::unistd::getcwd().map_err(|_| {
        StepError::msg(format!(
            "process.cwd {} is outside the container's root",
            cwd.display()
        ))
    })?;
    if !now.is_absolute() {
        return Err(StepError::msg(format!(
            "process.cwd {} is outside the container's root",
            cwd.display()
        )));
    }
    Ok(())
}

fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Finds the program to run as a shell would, with the container's `PATH`. The wording
/// of the errors is the one engines look for to pick exit codes 126 and 127.
pub fn resolve_executable(program: &str, env: &[String]) -> Result<PathBuf, StepError> {
    let check = |path: &Path| -> Result<(), StepError> {
        let meta = std::fs::metadata(path).map_err(|e| {
            StepError::msg(format!(
                "exec: {program:?}: stat {}: {}",
                path.display(),
                if e.kind() == std::io::ErrorKind::NotFound {
                    "no such file or directory".to_string()
                } else {
                    e.to_string()
                }
            ))
        })?;
        if meta.is_dir() || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
            return Err(StepError::msg(format!(
                "exec: {program:?}: permission denied"
            )));
        }
        Ok(())
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        check(&path)?;
        return Ok(path);
    }
    let search = env_value(env, "PATH")
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
    Err(denied.unwrap_or_else(|| {
        StepError::msg(format!(
            "exec: {program:?}: executable file not found in $PATH"
        ))
    }))
}

/// The capabilities named in `set`, less those this kernel does not have (`supported`).
fn cap_list(
    set: &Option<Capabilities>,
    field: &str,
    supported: &caps::CapsHashSet,
) -> Result<caps::CapsHashSet, StepError> {
    let mut out = caps::CapsHashSet::new();
    for cap in set.iter().flatten() {
        let name = serde_json::to_value(cap)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let parsed: caps::Capability = name.parse().map_err(|_| {
            StepError::msg(format!(
                "{field}: {name} is not a capability this runtime knows"
            ))
        })?;
        // Capabilities this kernel does not have are skipped, as runc does.
        if supported.contains(&parsed) {
            out.insert(parsed);
        }
    }
    Ok(out)
}

/// Refuses capabilities outside the runtime's own bounding set: they can never be given,
/// and finding out only after `start` would look like the program failing.
pub fn check_capabilities_grantable(process: &Process) -> Result<(), StepError> {
    let Some(wanted) = process.capabilities() else {
        return Ok(());
    };
    let ours = caps::read(None, CapSet::Bounding)
        .map_err(|e| StepError::msg(format!("reading the bounding set: {e}")))?;
    let supported = caps::runtime::thread_all_supported();
    let sets = [
        ("bounding", wanted.bounding()),
        ("effective", wanted.effective()),
        ("permitted", wanted.permitted()),
        ("inheritable", wanted.inheritable()),
        ("ambient", wanted.ambient()),
    ];
    for (name, set) in sets {
        let field = format!("process.capabilities.{name}");
        if let Some(missing) = cap_list(set, &field, &supported)?
            .into_iter()
            .find(|cap| !ours.contains(cap))
        {
            return Err(StepError::msg(format!(
                "{field}: {missing} cannot be granted: it is not in the runtime's own bounding set on this host"
            )));
        }
    }
    Ok(())
}

/// A capability object with every set empty.
pub fn no_capabilities() -> bulwark_spec::runtime::LinuxCapabilities {
    serde_json::from_str("{}").expect("an empty object is a valid capabilities object")
}

/// Takes on `process.user` (groups, gid, uid, umask) and `process.capabilities`.
/// `before_narrowing` runs once the ids are switched, while every permitted capability
/// is still effective (the seccomp filter goes on there when it needs CAP_SYS_ADMIN).
pub fn switch_user(
    process: &Process,
    setgroups_denied: bool,
    before_narrowing: impl FnOnce() -> Result<(), StepError>,
) -> Result<(), StepError> {
    // Not `unwrap_or_default()`: oci-spec's default grants capabilities; absent means none.
    let wanted = process
        .capabilities()
        .clone()
        .unwrap_or_else(no_capabilities);
    let field = "process.capabilities";
    let supported = caps::runtime::thread_all_supported();
    let set = |name: &str, caps: &Option<Capabilities>| {
        cap_list(caps, &format!("{field}.{name}"), &supported)
    };
    let bounding = set("bounding", wanted.bounding())?;
    let effective = set("effective", wanted.effective())?;
    let permitted = set("permitted", wanted.permitted())?;
    let inheritable = set("inheritable", wanted.inheritable())?;
    let ambient = set("ambient", wanted.ambient())?;

    // The bounding set can only shrink while CAP_SETPCAP is still effective.
    for cap in &supported {
        if !bounding.contains(cap) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| {
                StepError::msg(format!("dropping {cap} from the bounding set: {e}"))
            })?;
        }
    }
    nix::sys::prctl::set_keepcaps(true).map_err(StepError::sys("PR_SET_KEEPCAPS"))?;
    let user = process.user();
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    set_groups(&groups, setgroups_denied)?;
    let gid = Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid).map_err(StepError::sys(format!(
        "setting process.user.gid {}",
        user.gid()
    )))?;
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid).map_err(StepError::sys(format!(
        "setting process.user.uid {}",
        user.uid()
    )))?;
    nix::sys::prctl::set_keepcaps(false).map_err(StepError::sys("PR_SET_KEEPCAPS"))?;
    if let Some(mask) = user.umask() {
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
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(cap_err("inheritable"))?;
    caps::set(None, CapSet::Effective, &effective).map_err(cap_err("effective"))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(cap_err(
        "permitted (it must contain every effective capability)",
    ))?;
    caps::clear(None, CapSet::Ambient).map_err(cap_err("ambient"))?;
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, cap).map_err(cap_err("ambient"))?;
    }
    Ok(())
}

/// `process.user.additionalGids`. Where a runtime without root mapped only its own gid
/// (`setgroups_denied`, see [`crate::idmap::denies_setgroups`]) the kernel refuses
/// setgroups(2), and the process keeps the groups the runtime was started with.
fn set_groups(groups: &[Gid], setgroups_denied: bool) -> Result<(), StepError> {
    let raw: Vec<u32> = groups.iter().map(|g| g.as_raw()).collect();
    if setgroups_denied {
        if groups.is_empty() {
            return Ok(());
        }
        return Err(StepError::msg(format!(
            "process.user.additionalGids {raw:?} cannot be set: setgroups is denied in this user namespace, because the rootless runtime mapped only its own gid (map more gids, from /etc/subgid, in linux.gidMappings)"
        )));
    }
    nix::unistd::setgroups(groups).map_err(StepError::sys(format!(
        "setting process.user.additionalGids {raw:?}"
    )))
}

/// Replaces the process with the user's program; returns only on failure.
pub fn exec(
    path: &Path,
    process: &Process,
    seccomp: Option<&bulwark_seccomp::Filter>,
) -> StepError {
    let to_c =
        |s: &str| CString::new(s).map_err(|_| StepError::msg(format!("{s:?} contains a NUL byte")));
    let build = || -> Result<(CString, Vec<CString>, Vec<CString>), StepError> {
        let program = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| StepError::msg("program path contains a NUL byte"))?;
        let args = process
            .args()
            .iter()
            .flatten()
            .map(|a| to_c(a))
            .collect::<Result<_, _>>()?;
        let env = process
            .env()
            .iter()
            .flatten()
            .map(|e| to_c(e))
            .collect::<Result<_, _>>()?;
        Ok((program, args, env))
    };
    let ready = build().and_then(|built| {
        crate::seccomp::install_at(crate::seccomp::Before::Exec, seccomp, process, None)?;
        Ok(built)
    });
    match ready {
        Ok((program, args, env)) => match nix::unistd::execve(&program, &args, &env) {
            Err(nix::errno::Errno::EACCES) => StepError::msg(format!(
                "exec: {:?}: permission denied",
                path.display().to_string()
            )),
            Err(nix::errno::Errno::ENOENT) => StepError::msg(format!(
                "exec: {:?}: no such file or directory",
                path.display().to_string()
            )),
            Err(e) => StepError::msg(format!("exec {}: {e}", path.display())),
        },
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse() {
        assert_eq!(parse_list("0-2,5", "f").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_list("3-1", "f").is_err());
        assert!(parse_list("x", "f").is_err());
    }

    #[test]
    fn env_lookup_takes_the_last() {
        let env = vec![
            "PATH=/a".to_string(),
            "PATHX=1".to_string(),
            "PATH=/b".to_string(),
        ];
        assert_eq!(env_value(&env, "PATH"), Some("/b"));
    }

    #[test]
    fn missing_program_wording() {
        let err =
            resolve_executable("no-such-program-xyz", &["PATH=/nonexistent".into()]).unwrap_err();
        assert!(err
            .to_string()
            .contains("executable file not found in $PATH"));
        let err = resolve_executable("/nonexistent/prog", &[]).unwrap_err();
        assert!(err.to_string().contains("no such file or directory"));
    }
}
