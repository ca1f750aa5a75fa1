//! The v1 net_prio controller: `linux.resources.network.priorities` ->
//! `net_prio.ifpriomap`, one "IFNAME PRIORITY" write per interface. cgroup v2 has no
//! such controller.
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

/// IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(priorities) = resources
        .network()
        .as_ref()
        .and_then(|n| n.priorities().as_ref())
    else {
        return Ok(());
    };
    for (i, prio) in priorities.iter().enumerate() {
        let field = format!("network.priorities[{i}]");
        let name = prio.name();
        let line = format!("{name} {}", prio.priority());
        if version == Version::V2 {
            return Err(CgroupError::unsupported(
                resources_field(&field),
                format!("{line:?}"),
                "cgroup v2 has no net_prio controller",
            ));
        }
        let bad = |c: char| c.is_whitespace() || c.is_control() || c == '/';
        if name.is_empty() || name.len() > MAX_IFNAME || name.contains(bad) {
            return Err(CgroupError::invalid(
                resources_field(&format!("{field}.name")),
                format!("{name:?}"),
                "an interface name of 1 to 15 characters without spaces or '/'",
            ));
        }
        out.push(Setting::new(&field, "net_prio", "net_prio.ifpriomap", line));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn one_write_per_interface() {
        let json = r#"{"network":{"priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":1}]}}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("net_prio.ifpriomap", "eth0 5"),
                ("net_prio.ifpriomap", "lo 1")
            ])
        );
        let e = error(V2, json);
        assert!(e.contains("linux.resources.network.priorities[0]"), "{e}");
    }

    #[test]
    fn interface_names_are_checked() {
        let json = r#"{"network":{"priorities":[{"name":"eth0 9\nlo","priority":5}]}}"#;
        let e = error(V1, json);
        assert!(e.contains("network.priorities[0].name"), "{e}");
    }
}
