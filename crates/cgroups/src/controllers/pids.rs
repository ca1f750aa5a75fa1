//! The pids controller: `linux.resources.pids.limit` -> `pids.max` (same on v1 and v2).
use oci_spec::runtime::LinuxResources;

use super::{Setting, Version};
use crate::error::Result;

pub(super) fn plan(
    _version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    if let Some(pids) = resources.pids() {
        let limit = pids.limit();
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".to_string()
        };
        out.push(Setting::new("pids.limit", "pids", "pids.max", value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn limit_or_max() {
        for v in [V1, V2] {
            assert_eq!(
                writes(v, r#"{"pids":{"limit":64}}"#),
                pairs(&[("pids.max", "64")])
            );
            assert_eq!(
                writes(v, r#"{"pids":{"limit":0}}"#),
                pairs(&[("pids.max", "max")])
            );
            assert_eq!(
                writes(v, r#"{"pids":{"limit":-1}}"#),
                pairs(&[("pids.max", "max")])
            );
        }
    }
}
