//! Which sysctls a container may set: only those scoped to one of its own namespaces.
use crate::{NamespaceKind, NamespacePlan, SpecError};

const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The namespace a sysctl belongs to, or `None` when it is host-wide.
fn owning_namespace(key: &str) -> Option<NamespaceKind> {
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(NamespaceKind::Ipc)
    } else if key.starts_with("net.") {
        Some(NamespaceKind::Network)
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(NamespaceKind::Uts)
    } else {
        None
    }
}

/// Checks one `linux.sysctl` entry against the namespaces the container has.
pub(crate) fn check(key: &str, plan: &NamespacePlan) -> Result<(), SpecError> {
    let field = format!("linux.sysctl[{key:?}]");
    let well_formed = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !well_formed {
        return Err(SpecError::invalid(
            field,
            key,
            "a sysctl name such as net.ipv4.ip_forward",
        ));
    }
    match owning_namespace(key) {
        Some(kind) if plan.contains(kind) => Ok(()),
        Some(kind) => Err(SpecError::invalid(
            field,
            key,
            format!(
                "a {} namespace in linux.namespaces, since this sysctl belongs to it",
                crate::namespaces::proc_name(kind)
            ),
        )),
        None => Err(SpecError::invalid(
            field,
            key,
            "a namespaced sysctl (ipc: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*; net.*; kernel.hostname, kernel.domainname): this one would change the host",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_sysctls_need_their_namespace() {
        let mut plan = NamespacePlan::default();
        assert!(check("net.ipv4.ip_forward", &plan).is_err());
        plan.new.push(NamespaceKind::Network);
        assert!(check("net.ipv4.ip_forward", &plan).is_ok());
        assert!(check("kernel.shmmax", &plan).is_err());
        let err = check("vm.swappiness", &plan).unwrap_err().to_string();
        assert!(
            err.contains("vm.swappiness") && err.contains("host"),
            "{err}"
        );
    }

    #[test]
    fn refuses_path_tricks() {
        let mut plan = NamespacePlan::default();
        plan.new.push(NamespaceKind::Network);
        assert!(check("net.../../../etc", &plan).is_err());
        assert!(check("net.ipv4/conf", &plan).is_err());
        assert!(check("net..x", &plan).is_err());
    }
}
