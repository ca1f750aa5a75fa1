//! Block I/O: v1's blkio controller and v2's io controller (`linux.resources.blockIO`).
//!
//! Weights go to the CFQ files (`blkio.weight`) or, when the kernel only has BFQ, to
//! `blkio.bfq.weight`; on v2 to `io.bfq.weight` (same 1..1000 scale) or else `io.weight`
//! (1..10000, converted as runc does). Throttles become `blkio.throttle.*` lines or
//! `io.max` "MAJ:MIN rbps=N" lines.
use oci_spec::runtime::{LinuxResources, LinuxThrottleDevice};

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

const MIN_WEIGHT: u16 = 10;
const MAX_WEIGHT: u16 = 1000;

/// `io.weight` (1..=10000) for a blkio weight (10..=1000).
fn io_weight(weight: u16) -> u64 {
    1 + (u64::from(weight) - u64::from(MIN_WEIGHT)) * 9999 / u64::from(MAX_WEIGHT - MIN_WEIGHT)
}

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(io) = resources.block_io() else {
        return Ok(());
    };
    let controller = match version {
        Version::V1 => "blkio",
        Version::V2 => "io",
    };
    if let Some(weight) = io.weight().filter(|w| *w != 0) {
        check_weight("blockIO.weight", weight)?;
        out.push(match version {
            Version::V1 => Setting::new("blockIO.weight", controller, "blkio.weight", weight)
                .or_file("blkio.bfq.weight", weight),
            Version::V2 => Setting::new("blockIO.weight", controller, "io.bfq.weight", weight)
                .or_file("io.weight", io_weight(weight)),
        });
    }
    if let Some(leaf) = io.leaf_weight().filter(|w| *w != 0) {
        check_weight("blockIO.leafWeight", leaf)?;
        out.push(leaf_weight(
            version,
            "blockIO.leafWeight",
            "blkio.leaf_weight",
            leaf,
        )?);
    }
    for (i, dev) in io.weight_device().iter().flatten().enumerate() {
        let field = format!("blockIO.weightDevice[{i}]");
        let id = device(&field, dev.major(), dev.minor())?;
        if let Some(weight) = dev.weight().filter(|w| *w != 0) {
            check_weight(&format!("{field}.weight"), weight)?;
            let line = format!("{id} {weight}");
            out.push(match version {
                Version::V1 => Setting::new(&field, controller, "blkio.weight_device", &line)
                    .or_file("blkio.bfq.weight_device", &line),
                Version::V2 => Setting::new(&field, controller, "io.bfq.weight", &line)
                    .or_file("io.weight", format!("{id} {}", io_weight(weight))),
            });
        }
        if let Some(leaf) = dev.leaf_weight().filter(|w| *w != 0) {
            let field = format!("{field}.leafWeight");
            check_weight(&field, leaf)?;
            let line = format!("{id} {leaf}");
            out.push(leaf_weight(
                version,
                &field,
                "blkio.leaf_weight_device",
                line,
            )?);
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "read_bps_device",
            "rbps",
            io.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "write_bps_device",
            "wbps",
            io.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "read_iops_device",
            "riops",
            io.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "write_iops_device",
            "wiops",
            io.throttle_write_iops_device(),
        ),
    ];
    for (name, v1_suffix, v2_key, devices) in throttles {
        for (i, dev) in devices.iter().flatten().enumerate() {
            let field = format!("blockIO.{name}[{i}]");
            out.push(throttle(version, &field, v1_suffix, v2_key, dev)?);
        }
    }
    Ok(())
}

fn leaf_weight(version: Version, field: &str, file: &str, value: impl ToString) -> Result<Setting> {
    match version {
        Version::V1 => Ok(Setting::new(field, "blkio", file, value)),
        Version::V2 => Err(CgroupError::unsupported(
            resources_field(field),
            value.to_string(),
            "cgroup v2 has no leaf weights",
        )),
    }
}

fn throttle(
    version: Version,
    field: &str,
    v1_suffix: &str,
    v2_key: &str,
    dev: &LinuxThrottleDevice,
) -> Result<Setting> {
    let id = device(field, dev.major(), dev.minor())?;
    let rate = dev.rate();
    Ok(match version {
        // 0 removes the device's limit on v1.
        Version::V1 => Setting::new(
            field,
            "blkio",
            &format!("blkio.throttle.{v1_suffix}"),
            format!("{id} {rate}"),
        ),
        Version::V2 => {
            let rate = if rate == 0 {
                "max".to_string()
            } else {
                rate.to_string()
            };
            Setting::new(field, "io", "io.max", format!("{id} {v2_key}={rate}"))
        }
    })
}

fn check_weight(field: &str, weight: u16) -> Result<()> {
    if (MIN_WEIGHT..=MAX_WEIGHT).contains(&weight) {
        Ok(())
    } else {
        Err(CgroupError::invalid(
            resources_field(field),
            weight,
            format!("{MIN_WEIGHT} to {MAX_WEIGHT}, or 0 for unset"),
        ))
    }
}

/// "MAJOR:MINOR" of a block device.
fn device(field: &str, major: i64, minor: i64) -> Result<String> {
    if major < 0 || minor < 0 {
        return Err(CgroupError::invalid(
            resources_field(field),
            format!("{major}:{minor}"),
            "non-negative major and minor device numbers",
        ));
    }
    Ok(format!("{major}:{minor}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    const ALL: &str = r#"{"blockIO":{"weight":500,
        "weightDevice":[{"major":8,"minor":0,"weight":300}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
        "throttleWriteBpsDevice":[{"major":8,"minor":0,"rate":0}],
        "throttleReadIOPSDevice":[{"major":8,"minor":16,"rate":100}],
        "throttleWriteIOPSDevice":[{"major":8,"minor":16,"rate":200}]}}"#;

    #[test]
    fn v1_files() {
        assert_eq!(
            writes(V1, ALL),
            pairs(&[
                ("blkio.weight", "500"),
                ("blkio.weight_device", "8:0 300"),
                ("blkio.throttle.read_bps_device", "8:0 1048576"),
                ("blkio.throttle.write_bps_device", "8:0 0"),
                ("blkio.throttle.read_iops_device", "8:16 100"),
                ("blkio.throttle.write_iops_device", "8:16 200"),
            ])
        );
        let s = crate::controllers::plan(V1, &resources(ALL)).unwrap();
        assert_eq!(s[0].fallback(), Some(("blkio.bfq.weight", "500")));
        assert_eq!(s[0].controller(), "blkio");
    }

    #[test]
    fn v2_files() {
        assert_eq!(
            writes(V2, ALL),
            pairs(&[
                ("io.bfq.weight", "500"),
                ("io.bfq.weight", "8:0 300"),
                ("io.max", "8:0 rbps=1048576"),
                ("io.max", "8:0 wbps=max"),
                ("io.max", "8:16 riops=100"),
                ("io.max", "8:16 wiops=200"),
            ])
        );
        let s = crate::controllers::plan(V2, &resources(ALL)).unwrap();
        assert_eq!(s[0].fallback(), Some(("io.weight", "4950")));
        assert_eq!(s[1].fallback(), Some(("io.weight", "8:0 2930")));
        assert_eq!(s[0].controller(), "io");
    }

    #[test]
    fn weight_scale() {
        assert_eq!(io_weight(10), 1);
        assert_eq!(io_weight(1000), 10_000);
    }

    #[test]
    fn refusals() {
        let e = error(V2, r#"{"blockIO":{"leafWeight":100}}"#);
        assert!(
            e.contains("linux.resources.blockIO.leafWeight 100 is not supported"),
            "{e}"
        );
        assert_eq!(
            writes(V1, r#"{"blockIO":{"leafWeight":100}}"#),
            pairs(&[("blkio.leaf_weight", "100")])
        );
        let e = error(V1, r#"{"blockIO":{"weight":5}}"#);
        assert!(e.contains("blockIO.weight 5 is not valid"), "{e}");
        let e = error(
            V1,
            r#"{"blockIO":{"throttleReadBpsDevice":[{"major":-1,"minor":0,"rate":1}]}}"#,
        );
        assert!(e.contains("blockIO.throttleReadBpsDevice[0] -1:0"), "{e}");
    }
}
