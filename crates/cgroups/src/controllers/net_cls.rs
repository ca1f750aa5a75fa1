//! The v1 net_cls controller: `linux.resources.network.classID` -> `net_cls.classid`.
//! cgroup v2 has no such controller (packet classification there is eBPF's job).
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(class_id) = resources.network().as_ref().and_then(|n| n.class_id()) else {
        return Ok(());
    };
    match version {
        Version::V1 => {
            out.push(Setting::new(
                "network.classID",
                "net_cls",
                "net_cls.classid",
                class_id,
            ));
            Ok(())
        }
        Version::V2 => Err(CgroupError::unsupported(
            resources_field("network.classID"),
            class_id,
            "cgroup v2 has no net_cls controller",
        )),
    }
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn class_id_is_v1_only() {
        let json = r#"{"network":{"classID":1048577}}"#;
        assert_eq!(writes(V1, json), pairs(&[("net_cls.classid", "1048577")]));
        let e = error(V2, json);
        assert!(e.contains("linux.resources.network.classID 1048577"), "{e}");
    }
}
