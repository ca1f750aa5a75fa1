//! User namespace id mappings (`linux.uidMappings`, `linux.gidMappings` and a mount's own).
use oci_spec::runtime::LinuxIdMapping;

use crate::SpecError;

/// `size` ids from `container_id` in the namespace are `host_id`... on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl IdMapping {
    pub fn contains(&self, id: u32) -> bool {
        id >= self.container_id
            && u64::from(id) < u64::from(self.container_id) + u64::from(self.size)
    }
}

/// The maps in the form `/proc/<pid>/uid_map` takes: one `inside outside count` line each.
pub fn format(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Checks and converts a list of mappings; errors name `field[i]`.
pub(crate) fn parse(maps: &[LinuxIdMapping], field: &str) -> Result<Vec<IdMapping>, SpecError> {
    maps.iter()
        .enumerate()
        .map(|(index, m)| {
            if m.size() == 0 {
                return Err(SpecError::invalid(
                    format!("{field}[{index}].size"),
                    0,
                    "a mapping of at least one id",
                ));
            }
            Ok(IdMapping {
                container_id: m.container_id(),
                host_id: m.host_id(),
                size: m.size(),
            })
        })
        .collect()
}

/// The user namespace's maps, when the container creates one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdMaps {
    pub uids: Vec<IdMapping>,
    pub gids: Vec<IdMapping>,
}

impl IdMaps {
    /// Whether `gids` is the one map a runtime without root may write itself: its own
    /// gid, once. Such a runtime must then deny setgroups(2) in the namespace.
    pub fn gids_are_only(&self, gid: u32) -> bool {
        self.gids.len() == 1 && self.gids[0].size == 1 && self.gids[0].host_id == gid
    }
}
