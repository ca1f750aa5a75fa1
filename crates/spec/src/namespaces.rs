//! Which namespaces a container gets new and which it joins by path.
use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::SpecError;

/// A Linux namespace type, as `config.json` names it.
pub type NamespaceKind = LinuxNamespaceType;

/// Every namespace kind, in the order they are joined: the user namespace first so the
/// others can be joined with the capabilities it grants, the mount namespace last so the
/// `/proc/<pid>/ns` paths of the others still resolve.
pub const JOIN_ORDER: [NamespaceKind; 8] = [
    NamespaceKind::User,
    NamespaceKind::Ipc,
    NamespaceKind::Uts,
    NamespaceKind::Network,
    NamespaceKind::Pid,
    NamespaceKind::Cgroup,
    NamespaceKind::Time,
    NamespaceKind::Mount,
];

/// The name `/proc/<pid>/ns/` uses for a namespace kind.
pub fn proc_name(kind: NamespaceKind) -> &'static str {
    match kind {
        NamespaceKind::Mount => "mnt",
        NamespaceKind::Cgroup => "cgroup",
        NamespaceKind::Uts => "uts",
        NamespaceKind::Ipc => "ipc",
        NamespaceKind::User => "user",
        NamespaceKind::Pid => "pid",
        NamespaceKind::Network => "net",
        NamespaceKind::Time => "time",
    }
}

/// The clone(2) flag for a namespace kind.
pub fn clone_flag(kind: NamespaceKind) -> u64 {
    kind as u64
}

/// The namespaces requested by `linux.namespaces`, split into new ones and joined ones.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespacePlan {
    pub new: Vec<NamespaceKind>,
    pub join: Vec<(NamespaceKind, PathBuf)>,
}

impl NamespacePlan {
    /// Builds the plan, refusing duplicates and relative paths.
    pub fn from_spec(spec: &Spec) -> Result<Self, SpecError> {
        let mut plan = NamespacePlan::default();
        let Some(namespaces) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
            return Ok(plan);
        };
        for (index, ns) in namespaces.iter().enumerate() {
            let kind = ns.typ();
            if plan.contains(kind) {
                return Err(SpecError::invalid(
                    format!("linux.namespaces[{index}].type"),
                    proc_name(kind),
                    "each namespace type at most once",
                ));
            }
            match ns.path() {
                Some(path) if !path.is_absolute() => {
                    return Err(SpecError::invalid(
                        format!("linux.namespaces[{index}].path"),
                        path,
                        "an absolute path to a namespace file such as /proc/<pid>/ns/net",
                    ))
                }
                Some(path) => plan.join.push((kind, path.clone())),
                None => plan.new.push(kind),
            }
        }
        plan.join
            .sort_by_key(|(kind, _)| JOIN_ORDER.iter().position(|k| k == kind));
        Ok(plan)
    }

    /// Whether the container has a namespace of this kind at all (new or joined).
    pub fn contains(&self, kind: NamespaceKind) -> bool {
        self.creates(kind) || self.joins(kind)
    }

    pub fn creates(&self, kind: NamespaceKind) -> bool {
        self.new.contains(&kind)
    }

    pub fn joins(&self, kind: NamespaceKind) -> bool {
        self.join.iter().any(|(k, _)| *k == kind)
    }

    /// The clone flags of the namespaces to create.
    pub fn new_flags(&self) -> u64 {
        self.new
            .iter()
            .map(|k| clone_flag(*k))
            .fold(0, |a, b| a | b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_config;

    fn plan(json: &str) -> Result<NamespacePlan, SpecError> {
        let spec = parse_config(json.as_bytes()).unwrap();
        NamespacePlan::from_spec(&spec)
    }

    #[test]
    fn splits_new_and_joined_and_orders_joins() {
        let p = plan(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[
            {"type":"mount","path":"/proc/1/ns/mnt"},{"type":"pid"},{"type":"user","path":"/proc/1/ns/user"}]}}"#,
        )
        .unwrap();
        assert_eq!(p.new, vec![NamespaceKind::Pid]);
        assert_eq!(p.join[0].0, NamespaceKind::User);
        assert_eq!(p.join[1].0, NamespaceKind::Mount);
        assert_eq!(p.new_flags(), libc::CLONE_NEWPID as u64);
    }

    #[test]
    fn refuses_duplicates_and_relative_paths() {
        let dup = plan(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}}"#,
        );
        assert!(dup
            .unwrap_err()
            .to_string()
            .contains("linux.namespaces[1].type"));
        let rel = plan(
            r#"{"ociVersion":"1.2.0","linux":{"namespaces":[{"type":"network","path":"ns/net"}]}}"#,
        );
        assert!(rel
            .unwrap_err()
            .to_string()
            .contains("linux.namespaces[0].path"));
    }

    #[test]
    fn flags_match_the_kernel() {
        assert_eq!(clone_flag(NamespaceKind::Time), libc::CLONE_NEWTIME as u64);
        assert_eq!(
            clone_flag(NamespaceKind::Network),
            libc::CLONE_NEWNET as u64
        );
        assert_eq!(clone_flag(NamespaceKind::Mount), libc::CLONE_NEWNS as u64);
    }
}
