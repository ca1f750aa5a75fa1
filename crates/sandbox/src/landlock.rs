//! Landlock, on by default where the kernel has it: the container process may open files
//! only beneath its own root. Namespaces already keep the host's files out of reach by
//! path; Landlock also stops the ways around them, such as a host directory fd that
//! leaked or was passed in (the CVE-2024-21626 class) or a `/proc/<pid>/root` of a process
//! outside the container. Best effort by ABI: on a kernel without Landlock the container
//! runs as before. The annotation `bulwark.landlock` = "false" turns it off.
use landlock::{
    Access, AccessFs, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, ABI,
};

use crate::StepError;

/// The newest Landlock ABI this build asks for; older kernels get what they have.
const ABI_WANTED: ABI = ABI::V6;

/// Restricts the calling process (after `pivot_root`, before the user switch) to files
/// beneath `/`, the container's root, plus reopening the files it was handed on its first
/// `inherited` fds (stdio and `--preserve-fds`, such as `/dev/stdout` on a host file).
/// Directories among those get nothing: a directory handed in stays a handle, not a way
/// to the files below it. Does not set no_new_privs: that stays the config's choice (the
/// caller still has CAP_SYS_ADMIN in its user namespace).
pub fn restrict_to_root(inherited: u32) -> Result<RulesetStatus, StepError> {
    let fail = |e: &dyn std::fmt::Display| {
        StepError::msg(format!(
            "Landlock: {e} (annotation {:?} \"false\" turns it off)",
            bulwark_spec::LANDLOCK
        ))
    };
    let access = AccessFs::from_all(ABI_WANTED);
    let root = PathFd::new("/").map_err(|e| fail(&e))?;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(access)
        .map_err(|e| fail(&e))?
        .create()
        .map_err(|e| fail(&e))?
        .no_new_privs(false)
        .add_rule(PathBeneath::new(root, access))
        .map_err(|e| fail(&e))?;
    for fd in 0..inherited {
        let path = format!("/proc/self/fd/{fd}");
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // Pipes and sockets have no path to reopen; skip what cannot take a rule.
        let Ok(file) = PathFd::new(&path) else {
            continue;
        };
        let rule = PathBeneath::new(file, AccessFs::from_file(ABI_WANTED));
        ruleset = match ruleset.try_clone() {
            Ok(copy) => copy.add_rule(rule).unwrap_or(ruleset),
            Err(_) => ruleset,
        };
    }
    let status = ruleset.restrict_self().map_err(|e| fail(&e))?;
    Ok(status.ruleset)
}
