//! Checking a profile field by field and building it with libseccomp.
use std::path::PathBuf;

use bulwark_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use bulwark_sys::seccomp::{SockFilter, FLAG_NEW_LISTENER};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::{export, stub, SeccompError};

/// A compiled profile, ready for `bulwark_sys::seccomp::install`.
#[derive(Debug, Clone)]
pub struct Filter {
    pub program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits, including NEW_LISTENER when a rule notifies.
    pub flags: u32,
    /// Where the notification fd goes, when a rule uses `SCMP_ACT_NOTIFY`.
    pub listener: Option<Listener>,
    /// Syscall names libseccomp does not know; they were left out of the program.
    pub unknown_names: Vec<String>,
}

/// `listenerPath` and `listenerMetadata`.
#[derive(Debug, Clone)]
pub struct Listener {
    pub path: PathBuf,
    pub metadata: String,
}

const FIELD: &str = "linux.seccomp";
/// errno values a filter can return (SECCOMP_RET_DATA holds 16 bits; the kernel's errno
/// range ends at 4095).
const MAX_ERRNO: u32 = 4095;

/// Checks `seccomp` and compiles it for the architectures it lists plus the native one.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        &format!("{FIELD}.defaultErrnoRet"),
    )?;
    if default == ScmpAction::Notify {
        return Err(SeccompError::invalid(
            format!("{FIELD}.defaultAction"),
            "SCMP_ACT_NOTIFY",
            "an action other than SCMP_ACT_NOTIFY (every syscall would wait for the agent)",
        ));
    }
    let mut ctx = ScmpFilterContext::new(default).map_err(|e| SeccompError::library(FIELD, e))?;
    // A binary tree by syscall number: O(log n) per syscall instead of a linear scan, and
    // far less work for the kernel's per-syscall action cache when the filter is loaded.
    // libseccomp before 2.5 cannot; its linear program is just as correct.
    let _ = ctx.set_ctl_optimize(2);
    for (i, arch) in seccomp.architectures().iter().flatten().enumerate() {
        let field = format!("{FIELD}.architectures[{i}]");
        let name = arch.to_string();
        let parsed: ScmpArch = name.parse().map_err(|_| {
            SeccompError::invalid(&field, &name, "an architecture libseccomp knows")
        })?;
        ctx.add_arch(parsed)
            .map_err(|e| SeccompError::library(&field, e))?;
    }

    let mut max_native: Option<u32> = None;
    let mut unknown_names = Vec::new();
    let mut notifies = false;
    for (i, rule) in seccomp.syscalls().iter().flatten().enumerate() {
        let field = format!("{FIELD}.syscalls[{i}]");
        let act = action(
            rule.action(),
            rule.errno_ret(),
            &format!("{field}.errnoRet"),
        )?;
        if rule.names().is_empty() {
            return Err(SeccompError::invalid(
                format!("{field}.names"),
                rule.names(),
                "at least one syscall name",
            ));
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let conditions = args
            .iter()
            .enumerate()
            .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>, _>>()?;
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                unknown_names.push(name.clone());
                continue;
            };
            // Negative numbers are libseccomp's pseudo-syscalls (socketcall on x86_64).
            if let Ok(nr) = u32::try_from(syscall.as_raw_syscall()) {
                max_native = max_native.max(Some(nr));
            }
            // The default action needs no rule, and libseccomp refuses one.
            if act == default {
                continue;
            }
            notifies |= act == ScmpAction::Notify;
            add_rule(&mut ctx, act, syscall, args, &conditions)
                .map_err(|e| SeccompError::library(format!("{field} ({name})"), e))?;
        }
    }

    let listener = listener(seccomp, notifies)?;
    let mut flags = flag_bits(seccomp.flags().as_deref().unwrap_or_default());
    if listener.is_some() {
        flags |= FLAG_NEW_LISTENER;
        // TSYNC and NEW_LISTENER only go together with TSYNC_ESRCH.
        if flags & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
            flags |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
        }
    }
    let mut program = export::program(&ctx)?;
    let permissive = matches!(default, ScmpAction::Allow | ScmpAction::Log);
    if let (false, Some(max)) = (permissive, max_native) {
        program = stub::prepend_enosys(program, max);
    }
    Ok(Filter {
        program,
        flags,
        listener,
        unknown_names,
    })
}

/// Adds one rule. Several conditions on one argument cannot share a libseccomp rule, so
/// then each becomes a rule of its own (any of them matching applies the action), as
/// runc does.
fn add_rule(
    ctx: &mut ScmpFilterContext,
    act: ScmpAction,
    syscall: ScmpSyscall,
    args: &[LinuxSeccompArg],
    conditions: &[ScmpArgCompare],
) -> Result<(), libseccomp::error::SeccompError> {
    let mut indices: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indices.sort_unstable();
    let repeated = indices.windows(2).any(|w| w[0] == w[1]);
    if repeated {
        for condition in conditions {
            ctx.add_rule_conditional(act, syscall, std::slice::from_ref(condition))?;
        }
    } else {
        ctx.add_rule_conditional(act, syscall, conditions)?;
    }
    Ok(())
}

/// The libseccomp action for `action`; `errnoRet` (EPERM when absent) goes with ERRNO
/// and TRACE.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    errno_field: &str,
) -> Result<ScmpAction, SeccompError> {
    let ret = errno_ret.unwrap_or(libc::EPERM as u32);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno if ret <= MAX_ERRNO => ScmpAction::Errno(ret as i32),
        LinuxSeccompAction::ScmpActErrno => {
            return Err(SeccompError::invalid(
                errno_field,
                ret,
                format!("an errno number from 0 to {MAX_ERRNO}"),
            ))
        }
        LinuxSeccompAction::ScmpActTrace => match u16::try_from(ret) {
            Ok(value) => ScmpAction::Trace(value),
            Err(_) => {
                return Err(SeccompError::invalid(
                    errno_field,
                    ret,
                    "a trace value from 0 to 65535",
                ))
            }
        },
    })
}

fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<ScmpArgCompare, SeccompError> {
    let index = u32::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .ok_or_else(|| {
            SeccompError::invalid(
                format!("{field}.index"),
                arg.index(),
                "a syscall argument index from 0 to 5",
            )
        })?;
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // value is the mask, valueTwo what the masked argument must equal; Go writers
        // such as Docker omit a zero valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            let datum = arg.value_two().unwrap_or(0);
            (ScmpCompareOp::MaskedEqual(arg.value()), datum)
        }
    };
    Ok(ScmpArgCompare::new(index, op, datum))
}

fn listener(seccomp: &LinuxSeccomp, notifies: bool) -> Result<Option<Listener>, SeccompError> {
    let path = seccomp.listener_path().clone();
    match (notifies, path) {
        (false, _) => Ok(None),
        (true, Some(path)) if path.is_absolute() => Ok(Some(Listener {
            path,
            metadata: seccomp.listener_metadata().clone().unwrap_or_default(),
        })),
        (true, path) => Err(SeccompError::invalid(
            format!("{FIELD}.listenerPath"),
            path,
            "the absolute path of the seccomp agent's unix socket (a rule uses SCMP_ACT_NOTIFY)",
        )),
    }
}

fn flag_bits(flags: &[LinuxSeccompFilterFlag]) -> u32 {
    flags
        .iter()
        .map(|flag| match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        } as u32)
        .fold(0, |a, b| a | b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(value: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(value).unwrap()
    }

    /// Whether the program begins with the ENOSYS stub (its return is the sixth instruction).
    fn has_stub(program: &[SockFilter]) -> bool {
        program
            .get(5)
            .is_some_and(|i| i.code == 0x06 && i.k == 0x0005_0000 | libc::ENOSYS as u32)
    }

    fn error(value: serde_json::Value) -> String {
        compile(&profile(value)).unwrap_err().to_string()
    }

    #[test]
    fn an_allow_list_compiles_with_the_enosys_stub_in_front() {
        let filter = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        })))
        .unwrap();
        assert_eq!(filter.unknown_names, ["no_such_syscall"]);
        assert_eq!(
            filter.flags,
            (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
        );
        assert!(filter.listener.is_none());
        assert!(has_stub(&filter.program));
        // The stub's bound is the highest native number named: exit_group (231) on x86_64.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(filter.program[4].k, 231);
        assert!(filter.program.len() > 20);
    }

    #[test]
    fn an_allowing_default_needs_no_stub() {
        let filter = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]
        })))
        .unwrap();
        assert!(!has_stub(&filter.program));
    }

    #[test]
    fn notify_needs_a_listener_and_sets_new_listener() {
        let rule = json!([{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]);
        assert!(
            error(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rule}))
                .contains("linux.seccomp.listenerPath")
        );
        let filter = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock",
            "listenerMetadata": "meta",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
            "syscalls": rule
        })))
        .unwrap();
        let listener = filter.listener.unwrap();
        assert_eq!(listener.path, PathBuf::from("/run/agent.sock"));
        assert_eq!(listener.metadata, "meta");
        let expected = FLAG_NEW_LISTENER
            | (libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH) as u32;
        assert_eq!(filter.flags, expected);
        assert!(error(json!({"defaultAction": "SCMP_ACT_NOTIFY"}))
            .contains("linux.seccomp.defaultAction"));
    }

    #[test]
    fn bad_fields_are_named() {
        let with_rule = |rule: serde_json::Value| {
            error(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [rule]}))
        };
        let e = with_rule(json!({"names": ["read"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}));
        assert!(
            e.contains("linux.seccomp.syscalls[0].args[0].index 6"),
            "{e}"
        );
        let e = with_rule(json!({"names": [], "action": "SCMP_ACT_ALLOW"}));
        assert!(e.contains("linux.seccomp.syscalls[0].names"), "{e}");
        let e =
            with_rule(json!({"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}));
        assert!(
            e.contains("linux.seccomp.syscalls[0].errnoRet 70000"),
            "{e}"
        );
        let e = error(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}));
        assert!(e.contains("linux.seccomp.defaultErrnoRet 5000"), "{e}");
    }

    #[test]
    fn every_architecture_name_parses() {
        for arch in [
            "SCMP_ARCH_X86_64",
            "SCMP_ARCH_X86",
            "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM",
            "SCMP_ARCH_RISCV64",
            "SCMP_ARCH_PPC64LE",
        ] {
            compile(&profile(
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}),
            ))
            .unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
    }
}
