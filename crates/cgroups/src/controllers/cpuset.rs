//! The cpuset controller: `linux.resources.cpu.cpus` and `.mems`. The file names are the
//! same on v1 and v2; v1's need to inherit a parent's sets is handled when the
//! directories are created (see the v1 manager), not here.
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

const CPUSET: &str = "cpuset";

pub(super) fn plan(
    _version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    for (field, file, value) in [
        ("cpu.cpus", "cpuset.cpus", cpu.cpus()),
        ("cpu.mems", "cpuset.mems", cpu.mems()),
    ] {
        // An empty list means "not set", as in runc: an empty cpuset could run nothing.
        let Some(list) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) else {
            continue;
        };
        check_list(field, list)?;
        out.push(Setting::new(field, CPUSET, file, list));
    }
    Ok(())
}

/// A kernel list: comma-separated numbers and ranges (`0-3,8,10-11`).
fn check_list(field: &str, list: &str) -> Result<()> {
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let valid = list.split(',').all(|item| match item.split_once('-') {
        Some((low, high)) => number(low) && number(high),
        None => number(item),
    });
    if valid {
        Ok(())
    } else {
        Err(CgroupError::invalid(
            resources_field(field),
            format!("{list:?}"),
            "a list of numbers and ranges such as \"0-3,8\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn cpus_and_mems_are_written_on_both_versions() {
        let json = r#"{"cpu":{"cpus":"0-1,3","mems":"0"}}"#;
        for v in [V1, V2] {
            assert_eq!(
                writes(v, json),
                pairs(&[("cpuset.cpus", "0-1,3"), ("cpuset.mems", "0")])
            );
        }
        assert!(writes(V1, r#"{"cpu":{"cpus":""}}"#).is_empty());
    }

    #[test]
    fn malformed_lists_are_refused() {
        for bad in ["0-", "a", "1,,2", "0\n1"] {
            let json = format!(r#"{{"cpu":{{"cpus":{bad:?}}}}}"#);
            let e = error(V1, &json);
            assert!(e.contains("linux.resources.cpu.cpus"), "{e}");
        }
    }
}
