//! `process` (of `config.json`, or of an `exec`) checked and turned into the values the
//! stages apply as they are: C strings for `execve`, capability sets, numeric scheduler
//! and I/O settings, CPU lists. Shared by the container's init and every exec'd process.
use std::ffi::CString;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    IOPriorityClass, LinuxSchedulerFlag, LinuxSchedulerPolicy, PosixRlimitType, Process,
};

use crate::capabilities::{self, Capabilities};
use crate::{Host, SpecError};

/// `process.user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
}

/// One of `process.rlimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub kind: PosixRlimitType,
    pub soft: u64,
    pub hard: u64,
}

/// `process.scheduler` in the numbers `sched_setattr(2)` takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scheduler {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

/// `process.ioPriority`: the `IOPRIO_CLASS_*` number and the level within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoPriority {
    pub class: u32,
    pub level: u32,
}

/// CPU numbers, from a list such as `0-3,7`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// A checked process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    args: Vec<CString>,
    env: Vec<CString>,
    cwd: PathBuf,
    user: User,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    oom_score_adj: Option<i32>,
    no_new_privileges: bool,
    terminal: bool,
    console_size: Option<(u16, u16)>,
    io_priority: Option<IoPriority>,
    scheduler: Option<Scheduler>,
    affinity_initial: Option<CpuList>,
    affinity_final: Option<CpuList>,
    apparmor_profile: Option<String>,
    selinux_label: Option<String>,
}

impl ProcessConfig {
    /// Checks `process` and plans it for `host`; what the runtime would only warn about
    /// (ambient capabilities it cannot raise) goes to `warnings`.
    pub fn plan(
        process: &Process,
        host: &Host,
        warnings: &mut Vec<String>,
    ) -> Result<ProcessConfig, SpecError> {
        let args = process.args().as_deref().unwrap_or_default();
        if args.is_empty() || args[0].is_empty() {
            return Err(SpecError::invalid(
                "process.args",
                args,
                "at least one argument, the program to run",
            ));
        }
        if !process.cwd().is_absolute() {
            return Err(SpecError::invalid(
                "process.cwd",
                process.cwd(),
                "an absolute path inside the container",
            ));
        }
        Ok(ProcessConfig {
            args: c_strings(args, "process.args", |_| true, "text without NUL bytes")?,
            env: c_strings(
                process.env().as_deref().unwrap_or_default(),
                "process.env",
                |v| v.contains('=') && !v.starts_with('='),
                "NAME=value without NUL bytes",
            )?,
            cwd: process.cwd().clone(),
            user: user(process)?,
            capabilities: capabilities::plan(process.capabilities().as_ref(), host, warnings)?,
            rlimits: rlimits(process)?,
            oom_score_adj: oom_score_adj(process)?,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            terminal: process.terminal().unwrap_or(false),
            console_size: process
                .console_size()
                .as_ref()
                .map(|b| (clamp_u16(b.height()), clamp_u16(b.width()))),
            io_priority: process.io_priority().as_ref().map(|io| IoPriority {
                class: match io.class() {
                    IOPriorityClass::IoprioClassRt => 1,
                    IOPriorityClass::IoprioClassBe => 2,
                    IOPriorityClass::IoprioClassIdle => 3,
                },
                level: io.priority().clamp(0, i64::from(u32::MAX)) as u32,
            }),
            scheduler: process.scheduler().as_ref().map(scheduler),
            affinity_initial: affinity(process, true)?,
            affinity_final: affinity(process, false)?,
            apparmor_profile: lsm_label(
                process.apparmor_profile(),
                "process.apparmorProfile",
                host.apparmor,
                "AppArmor",
            )?,
            selinux_label: lsm_label(
                process.selinux_label(),
                "process.selinuxLabel",
                host.selinux,
                "SELinux",
            )?,
        })
    }

    /// `args`, NUL-terminated for `execve`.
    pub fn args(&self) -> &[CString] {
        &self.args
    }

    /// The program as given (`args[0]`).
    pub fn program(&self) -> &str {
        self.args[0].to_str().unwrap_or_default()
    }

    /// `env`, NUL-terminated for `execve`.
    pub fn env(&self) -> &[CString] {
        &self.env
    }

    /// The value of `name` in `env` (the last one wins, as in a shell).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|kv| kv.to_str().ok()?.strip_prefix(name)?.strip_prefix('='))
    }

    /// `env` as text, for hooks that run with the process's environment.
    pub fn env_strings(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect()
    }

    pub fn cwd(&self) -> &Path {
        &self.cwd
    }

    pub fn user(&self) -> &User {
        &self.user
    }

    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    pub fn rlimits(&self) -> &[Rlimit] {
        &self.rlimits
    }

    /// The soft `RLIMIT_NPROC`, if the process sets one.
    pub fn nproc_limit(&self) -> Option<u64> {
        self.rlimits
            .iter()
            .find(|r| r.kind == PosixRlimitType::RlimitNproc)
            .map(|r| r.soft)
    }

    pub fn oom_score_adj(&self) -> Option<i32> {
        self.oom_score_adj
    }

    pub fn no_new_privileges(&self) -> bool {
        self.no_new_privileges
    }

    pub fn terminal(&self) -> bool {
        self.terminal
    }

    /// `(rows, columns)` of the terminal, when given.
    pub fn console_size(&self) -> Option<(u16, u16)> {
        self.console_size
    }

    pub fn io_priority(&self) -> Option<IoPriority> {
        self.io_priority
    }

    pub fn scheduler(&self) -> Option<Scheduler> {
        self.scheduler
    }

    /// `execCPUAffinity.initial`: the CPUs while the runtime sets the process up.
    pub fn affinity_initial(&self) -> Option<&CpuList> {
        self.affinity_initial.as_ref()
    }

    /// `execCPUAffinity.final`: the CPUs from the exec on.
    pub fn affinity_final(&self) -> Option<&CpuList> {
        self.affinity_final.as_ref()
    }

    /// The AppArmor profile to run the program under (only on a host with AppArmor).
    pub fn apparmor_profile(&self) -> Option<&str> {
        self.apparmor_profile.as_deref()
    }

    /// The SELinux label to run the program with (only on a host with SELinux).
    pub fn selinux_label(&self) -> Option<&str> {
        self.selinux_label.as_deref()
    }
}

fn clamp_u16(n: u64) -> u16 {
    n.min(u64::from(u16::MAX)) as u16
}

/// Each of `values` as a C string, checked with `ok`; errors name `field[i]`.
fn c_strings(
    values: &[String],
    field: &str,
    ok: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<Vec<CString>, SpecError> {
    values
        .iter()
        .enumerate()
        .map(|(index, value)| {
            CString::new(value.as_bytes())
                .ok()
                .filter(|_| ok(value))
                .ok_or_else(|| SpecError::invalid(format!("{field}[{index}]"), value, expected))
        })
        .collect()
}

fn user(process: &Process) -> Result<User, SpecError> {
    let user = process.user();
    if let Some(umask) = user.umask().filter(|m| *m > 0o777) {
        return Err(SpecError::invalid(
            "process.user.umask",
            umask,
            "a file mode mask up to 0o777 (511)",
        ));
    }
    Ok(User {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
    })
}

fn rlimits(process: &Process) -> Result<Vec<Rlimit>, SpecError> {
    let mut out: Vec<Rlimit> = Vec::new();
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        if out.iter().any(|r| r.kind == rlimit.typ()) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{index}].type"),
                rlimit.typ(),
                "each rlimit type at most once",
            ));
        }
        if rlimit.soft() > rlimit.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{index}].soft"),
                rlimit.soft(),
                format!("at most the hard limit {}", rlimit.hard()),
            ));
        }
        out.push(Rlimit {
            kind: rlimit.typ(),
            soft: rlimit.soft(),
            hard: rlimit.hard(),
        });
    }
    Ok(out)
}

fn oom_score_adj(process: &Process) -> Result<Option<i32>, SpecError> {
    match process.oom_score_adj() {
        Some(adj) if !(-1000..=1000).contains(&adj) => Err(SpecError::invalid(
            "process.oomScoreAdj",
            adj,
            "a value from -1000 to 1000",
        )),
        other => Ok(other),
    }
}

fn scheduler(scheduler: &oci_spec::runtime::Scheduler) -> Scheduler {
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
    Scheduler {
        policy,
        flags,
        nice: scheduler.nice().unwrap_or(0),
        priority: scheduler.priority().unwrap_or(0).max(0) as u32,
        runtime: scheduler.runtime().unwrap_or(0),
        deadline: scheduler.deadline().unwrap_or(0),
        period: scheduler.period().unwrap_or(0),
    }
}

fn affinity(process: &Process, initial: bool) -> Result<Option<CpuList>, SpecError> {
    let Some(affinity) = process.exec_cpu_affinity() else {
        return Ok(None);
    };
    let (list, field) = if initial {
        (affinity.initial(), "process.execCPUAffinity.initial")
    } else {
        (
            affinity.cpu_affinity_final(),
            "process.execCPUAffinity.final",
        )
    };
    list.as_deref()
        .map(|l| parse_list(l, field).map(CpuList))
        .transpose()
}

/// Parses a list such as `0-3,7` into its members (at most 8192, as CPU and node sets go).
pub(crate) fn parse_list(list: &str, field: &str) -> Result<Vec<usize>, SpecError> {
    let bad = || SpecError::invalid(field, list, "a list such as 0-3,7");
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
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// An LSM label the config asks for: kept when the host can apply it, refused when it
/// cannot (the user asked for confinement; running without it would be silent).
fn lsm_label(
    label: &Option<String>,
    field: &str,
    enabled: bool,
    lsm: &str,
) -> Result<Option<String>, SpecError> {
    match label.as_deref().filter(|l| !l.is_empty()) {
        None => Ok(None),
        Some(label) if enabled => Ok(Some(label.to_owned())),
        Some(label) => Err(SpecError::invalid(
            field,
            label,
            format!("no {lsm} label: {lsm} is not enabled on this host, so it cannot be applied"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(json: serde_json::Value) -> Result<ProcessConfig, SpecError> {
        let mut base =
            serde_json::json!({"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        base.as_object_mut()
            .unwrap()
            .extend(json.as_object().unwrap().clone());
        let process: Process = serde_json::from_value(base).unwrap();
        ProcessConfig::plan(&process, &Host::privileged(), &mut Vec::new())
    }

    fn error(json: serde_json::Value) -> String {
        planned(json).unwrap_err().to_string()
    }

    #[test]
    fn strings_become_c_strings_and_nul_bytes_are_refused() {
        let p = planned(serde_json::json!({"env": ["PATH=/bin", "A=1", "PATH=/usr/bin"]})).unwrap();
        assert_eq!(p.env_var("PATH"), Some("/usr/bin"));
        assert_eq!(p.program(), "sh");
        let e = error(serde_json::json!({"env": ["A=1", "B=x\u{0}y"]}));
        assert!(e.contains("process.env[1]"), "{e}");
        assert!(error(serde_json::json!({"args": ["sh", "a\u{0}"]})).contains("process.args[1]"));
        assert!(error(serde_json::json!({"env": ["=x"]})).contains("process.env[0]"));
    }

    #[test]
    fn field_rules() {
        assert!(error(serde_json::json!({"args": []})).contains("process.args"));
        assert!(error(serde_json::json!({"cwd": "tmp"})).contains("process.cwd"));
        assert!(error(serde_json::json!({"oomScoreAdj": 1001})).contains("process.oomScoreAdj"));
        assert!(
            error(serde_json::json!({"user": {"uid": 0, "gid": 0, "umask": 1024}}))
                .contains("process.user.umask")
        );
        let e = error(serde_json::json!({"rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1},
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}]}));
        assert!(e.contains("process.rlimits[1].type"), "{e}");
    }

    #[test]
    fn cpu_lists_and_the_final_affinity() {
        let p = planned(serde_json::json!({"execCPUAffinity": {"initial": "0-2,5", "final": "1"}}))
            .unwrap();
        assert_eq!(p.affinity_initial(), Some(&CpuList(vec![0, 1, 2, 5])));
        assert_eq!(p.affinity_final(), Some(&CpuList(vec![1])));
        let e = error(serde_json::json!({"execCPUAffinity": {"final": "3-1"}}));
        assert!(e.contains("process.execCPUAffinity.final"), "{e}");
    }

    #[test]
    fn lsm_labels_are_refused_where_the_host_cannot_apply_them() {
        let e = error(serde_json::json!({"apparmorProfile": "docker-default"}));
        assert!(
            e.contains("process.apparmorProfile") && e.contains("AppArmor"),
            "{e}"
        );
        let e = error(serde_json::json!({"selinuxLabel": "system_u:system_r:container_t:s0"}));
        assert!(e.contains("process.selinuxLabel"), "{e}");
        let process: Process = serde_json::from_value(serde_json::json!({
            "args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "apparmorProfile": "p"}))
        .unwrap();
        let host = Host {
            apparmor: true,
            ..Host::privileged()
        };
        let p = ProcessConfig::plan(&process, &host, &mut Vec::new()).unwrap();
        assert_eq!(p.apparmor_profile(), Some("p"));
        assert!(planned(serde_json::json!({"apparmorProfile": ""})).is_ok());
    }
}
