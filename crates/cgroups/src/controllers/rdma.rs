//! The rdma controller: `linux.resources.rdma` -> `rdma.max`, one
//! "DEVICE hca_handle=N hca_object=M" line per device (same on v1 and v2).
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

pub(super) fn plan(
    _version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(rdma) = resources.rdma() else {
        return Ok(());
    };
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limits) in devices {
        let field = format!("rdma[{device:?}]");
        if device.is_empty() || device.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(CgroupError::invalid(
                resources_field(&field),
                format!("{device:?}"),
                "an RDMA device name without spaces",
            ));
        }
        let mut line = device.clone();
        if let Some(handles) = limits.hca_handles() {
            line.push_str(&format!(" hca_handle={handles}"));
        }
        if let Some(objects) = limits.hca_objects() {
            line.push_str(&format!(" hca_object={objects}"));
        }
        if line.len() > device.len() {
            out.push(Setting::new(&field, "rdma", "rdma.max", line));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn one_line_per_device() {
        let json =
            r#"{"rdma":{"mlx5_1":{"hcaObjects":1000},"mlx5_0":{"hcaHandles":3,"hcaObjects":10}}}"#;
        for v in [V1, V2] {
            assert_eq!(
                writes(v, json),
                pairs(&[
                    ("rdma.max", "mlx5_0 hca_handle=3 hca_object=10"),
                    ("rdma.max", "mlx5_1 hca_object=1000"),
                ])
            );
        }
        let e = error(V1, r#"{"rdma":{"a b":{"hcaHandles":1}}}"#);
        assert!(e.contains("linux.resources.rdma[\"a b\"]"), "{e}");
    }
}
