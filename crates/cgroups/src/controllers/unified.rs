//! `linux.resources.unified`: raw cgroup v2 files and values, written as given after
//! every translated setting. Keys are single file names owned by a controller
//! (`memory.high`) or a few core limits (`cgroup.max.depth`); files that would move
//! processes or change the tree (`cgroup.procs`, `cgroup.subtree_control`, ...) are
//! refused. cgroup v1 has no unified hierarchy to write them to.
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

/// The core (`cgroup.`) files a container configuration may set.
const CORE_FILES: &[&str] = &["cgroup.max.depth", "cgroup.max.descendants"];

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(unified) = resources.unified().as_ref().filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let mut entries: Vec<_> = unified.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    for (key, value) in entries {
        let field = format!("unified[{key:?}]");
        if version == Version::V1 {
            return Err(CgroupError::unsupported(
                resources_field(&field),
                format!("{value:?}"),
                "unified settings need cgroup v2, and this host's controllers are on cgroup v1",
            ));
        }
        let controller = controller_of(key).ok_or_else(|| {
            CgroupError::invalid(
                resources_field("unified"),
                format!("key {key:?}"),
                "a file name of the form CONTROLLER.NAME such as \"memory.high\", or one of \
                 cgroup.max.depth, cgroup.max.descendants",
            )
        })?;
        out.push(Setting::new(&field, controller, key, value));
    }
    Ok(())
}

/// The controller owning a unified key, `cgroup` for the allowed core files.
fn controller_of(key: &str) -> Option<&str> {
    if CORE_FILES.contains(&key) {
        return Some("cgroup");
    }
    let (controller, rest) = key.split_once('.')?;
    let plain = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    };
    let valid = plain(controller)
        && !controller.contains('.')
        && controller != "cgroup"
        && plain(rest)
        && !rest.starts_with('.')
        && !rest.ends_with('.')
        && !rest.contains("..");
    valid.then_some(controller)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn keys_are_written_last_and_sorted() {
        let json = r#"{"pids":{"limit":3},"unified":{"memory.high":"1000","io.max":"8:0 rbps=1"}}"#;
        assert_eq!(
            writes(V2, json),
            pairs(&[
                ("pids.max", "3"),
                ("io.max", "8:0 rbps=1"),
                ("memory.high", "1000"),
            ])
        );
        let s = crate::controllers::plan(V2, &resources(json)).unwrap();
        assert_eq!(s[2].controller(), "memory");
        assert_eq!(s[2].field(), "linux.resources.unified[\"memory.high\"]");
    }

    #[test]
    fn v1_refuses_unified() {
        let e = error(V1, r#"{"unified":{"memory.high":"1000"}}"#);
        assert!(
            e.contains("linux.resources.unified[\"memory.high\"]"),
            "{e}"
        );
        assert!(writes(V1, r#"{"unified":{}}"#).is_empty());
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(controller_of("cgroup.max.depth"), Some("cgroup"));
        assert_eq!(controller_of("memory.swap.max"), Some("memory"));
        for bad in [
            "cgroup.procs",
            "cgroup.subtree_control",
            "../memory.max",
            "memory/max",
            "memory",
            ".max",
            "memory.",
            "memory..x",
        ] {
            assert_eq!(controller_of(bad), None, "{bad}");
        }
        let e = error(V2, r#"{"unified":{"cgroup.procs":"1"}}"#);
        assert!(
            e.contains("linux.resources.unified key \"cgroup.procs\""),
            "{e}"
        );
    }
}
