//! `mounts[]` checked and planned: what each entry is (a bind, a cgroup filesystem, any
//! other filesystem), its options parsed, a relative bind source resolved from the
//! bundle, and its id mappings when it is idmapped.
use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use crate::ids::{self, IdMapping};
use crate::mount_options::{Bind, MountOptions};
use crate::{NamespaceKind, NamespacePlan, SpecError};

/// What a mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A bind of a host path (absolute; a relative `source` is taken from the bundle).
    Bind { source: PathBuf, recursive: bool },
    /// A cgroup filesystem, made to show only the container's own cgroup.
    Cgroup,
    /// Any other filesystem (`type`), from `source` (the type's name when absent).
    Filesystem { typ: String, source: PathBuf },
}

/// An idmapped bind: through the mount's own mappings, or the container's when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdmap {
    pub recursive: bool,
    pub uids: Option<Vec<IdMapping>>,
    pub gids: Option<Vec<IdMapping>>,
}

/// One checked entry of `mounts[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountConfig {
    /// Its position in `mounts[]`, for messages.
    pub index: usize,
    pub destination: PathBuf,
    pub kind: MountKind,
    pub options: MountOptions,
    pub idmap: Option<MountIdmap>,
}

impl MountConfig {
    /// `mounts[i] (TYPE on DESTINATION)`, as messages name a mount.
    pub fn describe(&self) -> String {
        let typ = match &self.kind {
            MountKind::Bind { .. } => "bind",
            MountKind::Cgroup => "cgroup",
            MountKind::Filesystem { typ, .. } => typ,
        };
        format!(
            "mounts[{}] ({typ} on {})",
            self.index,
            self.destination.display()
        )
    }
}

/// Plans every entry of `mounts[]`.
pub(crate) fn plan(
    mounts: &[Mount],
    bundle_dir: &Path,
    namespaces: &NamespacePlan,
) -> Result<Vec<MountConfig>, SpecError> {
    mounts
        .iter()
        .enumerate()
        .map(|(index, mount)| plan_one(index, mount, bundle_dir, namespaces))
        .collect()
}

fn plan_one(
    index: usize,
    mount: &Mount,
    bundle_dir: &Path,
    namespaces: &NamespacePlan,
) -> Result<MountConfig, SpecError> {
    let field = format!("mounts[{index}]");
    if !mount.destination().is_absolute() {
        return Err(SpecError::invalid(
            format!("{field}.destination"),
            mount.destination(),
            "an absolute path inside the container",
        ));
    }
    let options = MountOptions::parse(
        mount.options().as_deref().unwrap_or_default(),
        &format!("{field}.options"),
    )?;
    let typ = mount.typ().as_deref().unwrap_or_default();
    let is_bind = options.bind.is_some() || typ == "bind";
    let kind = if is_bind {
        let source = mount.source().as_ref().ok_or_else(|| {
            SpecError::invalid(format!("{field}.source"), "null", "the host path to bind")
        })?;
        MountKind::Bind {
            source: if source.is_absolute() {
                source.clone()
            } else {
                bundle_dir.join(source)
            },
            recursive: options.bind == Some(Bind::Recursive),
        }
    } else if typ.is_empty() {
        return Err(SpecError::invalid(
            format!("{field}.type"),
            typ,
            "a filesystem type such as tmpfs or proc, or a bind/rbind option",
        ));
    } else if typ == "cgroup" {
        MountKind::Cgroup
    } else {
        MountKind::Filesystem {
            typ: typ.to_owned(),
            source: mount.source().clone().unwrap_or_else(|| PathBuf::from(typ)),
        }
    };
    if options.copy_up && !matches!(&kind, MountKind::Filesystem { typ, .. } if typ == "tmpfs") {
        return Err(SpecError::invalid(
            format!("{field}.options"),
            "tmpcopyup",
            format!(
                "tmpcopyup only on a tmpfs (this mount is a {typ:?}{})",
                if is_bind { " bind" } else { "" }
            ),
        ));
    }
    let idmap = idmap(&field, mount, &options, is_bind, namespaces)?;
    Ok(MountConfig {
        index,
        destination: mount.destination().clone(),
        kind,
        options,
        idmap,
    })
}

fn idmap(
    field: &str,
    mount: &Mount,
    options: &MountOptions,
    is_bind: bool,
    namespaces: &NamespacePlan,
) -> Result<Option<MountIdmap>, SpecError> {
    let has_maps = mount.uid_mappings().is_some() || mount.gid_mappings().is_some();
    if options.idmap.is_none() && !has_maps {
        return Ok(None);
    }
    if !is_bind {
        return Err(SpecError::invalid(
            format!("{field}.type"),
            mount.typ().as_deref().unwrap_or_default(),
            "a bind mount: only binds can be idmapped",
        ));
    }
    if !namespaces.creates(NamespaceKind::User) {
        return Err(SpecError::invalid(
            format!("{field} (an idmapped mount)"),
            "no new user namespace",
            "linux.namespaces to create a user namespace, whose id mappings the mount uses",
        ));
    }
    let maps = |name: &str, maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_deref()
            .map(|m| ids::parse(m, &format!("{field}.{name}")))
            .transpose()
    };
    Ok(Some(MountIdmap {
        recursive: options.idmap == Some(Bind::Recursive),
        uids: maps("uidMappings", mount.uid_mappings())?,
        gids: maps("gidMappings", mount.gid_mappings())?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(json: serde_json::Value) -> Result<MountConfig, SpecError> {
        let mount: Mount = serde_json::from_value(json).unwrap();
        let namespaces = NamespacePlan {
            new: vec![NamespaceKind::Mount, NamespaceKind::User],
            join: Vec::new(),
        };
        plan_one(3, &mount, Path::new("/bundle"), &namespaces)
    }

    #[test]
    fn kinds_and_relative_sources() {
        let bind = planned(serde_json::json!({"destination": "/data", "source": "data", "options": ["rbind", "ro"]}))
            .unwrap();
        assert_eq!(
            bind.kind,
            MountKind::Bind {
                source: PathBuf::from("/bundle/data"),
                recursive: true
            }
        );
        assert!(bind.options.read_only());
        let proc = planned(serde_json::json!({"destination": "/proc", "type": "proc"})).unwrap();
        assert_eq!(
            proc.kind,
            MountKind::Filesystem {
                typ: "proc".into(),
                source: PathBuf::from("proc")
            }
        );
        assert_eq!(proc.describe(), "mounts[3] (proc on /proc)");
    }

    #[test]
    fn refusals_name_the_field() {
        let e = planned(serde_json::json!({"destination": "data", "type": "tmpfs"})).unwrap_err();
        assert!(e.to_string().contains("mounts[3].destination"), "{e}");
        let e = planned(serde_json::json!({"destination": "/d", "type": "bind"})).unwrap_err();
        assert!(e.to_string().contains("mounts[3].source"), "{e}");
        let e = planned(
            serde_json::json!({"destination": "/d", "type": "proc", "options": ["tmpcopyup"]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("tmpcopyup"), "{e}");
        let e = planned(
            serde_json::json!({"destination": "/d", "type": "tmpfs", "options": ["idmap"]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("only binds"), "{e}");
    }
}
