//! The cpu controller: shares/weight, CFS bandwidth (quota, period, burst), the idle
//! flag and, on v1 only, realtime bandwidth (`linux.resources.cpu`, except cpus/mems,
//! which belong to cpuset).
use oci_spec::runtime::{LinuxCpu, LinuxResources};

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

const CPU: &str = "cpu";
const MIN_SHARES: u64 = 2;
const MAX_SHARES: u64 = 262_144;

/// The cgroup v2 `cpu.weight` (1..=10000) for v1 `cpu.shares` (2..=262144), the
/// linear mapping runc and crun use so both runtimes give a container the same weight.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(cpu) = resources.cpu() else {
        return Ok(());
    };
    let shares = cpu.shares().filter(|s| *s != 0);
    if let Some(shares) = shares {
        if !(MIN_SHARES..=MAX_SHARES).contains(&shares) {
            return Err(CgroupError::invalid(
                resources_field("cpu.shares"),
                shares,
                format!("{MIN_SHARES} to {MAX_SHARES}, or 0 for unset"),
            ));
        }
    }
    if let Some(idle) = cpu.idle() {
        if !(0..=1).contains(&idle) {
            return Err(CgroupError::invalid(
                resources_field("cpu.idle"),
                idle,
                "0 (normal) or 1 (SCHED_IDLE)",
            ));
        }
    }
    match version {
        Version::V1 => {
            v1(cpu, shares, out);
            Ok(())
        }
        Version::V2 => v2(cpu, shares, out),
    }
}

fn v1(cpu: &LinuxCpu, shares: Option<u64>, out: &mut Vec<Setting>) {
    if let Some(shares) = shares {
        out.push(Setting::new("cpu.shares", CPU, "cpu.shares", shares));
    }
    // The period first: a fresh cgroup has no quota, so any period is accepted, and the
    // quota is then checked against the new period.
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        out.push(Setting::new("cpu.period", CPU, "cpu.cfs_period_us", period));
    }
    if let Some(quota) = cpu.quota().filter(|q| *q != 0) {
        out.push(Setting::new(
            "cpu.quota",
            CPU,
            "cpu.cfs_quota_us",
            quota.max(-1),
        ));
    }
    if let Some(burst) = cpu.burst() {
        out.push(Setting::new("cpu.burst", CPU, "cpu.cfs_burst_us", burst));
    }
    if let Some(idle) = cpu.idle() {
        out.push(Setting::new("cpu.idle", CPU, "cpu.idle", idle));
    }
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        out.push(Setting::new(
            "cpu.realtimePeriod",
            CPU,
            "cpu.rt_period_us",
            period,
        ));
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
        out.push(Setting::new(
            "cpu.realtimeRuntime",
            CPU,
            "cpu.rt_runtime_us",
            runtime,
        ));
    }
}

fn v2(cpu: &LinuxCpu, shares: Option<u64>, out: &mut Vec<Setting>) -> Result<()> {
    if let Some(shares) = shares {
        out.push(Setting::new(
            "cpu.shares",
            CPU,
            "cpu.weight",
            shares_to_weight(shares),
        ));
    }
    if let Some(max) = cpu_max(cpu.quota(), cpu.period()) {
        let field = if cpu.quota().is_some_and(|q| q != 0) {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        out.push(Setting::new(field, CPU, "cpu.max", max));
    }
    if let Some(burst) = cpu.burst() {
        out.push(Setting::new("cpu.burst", CPU, "cpu.max.burst", burst));
    }
    if let Some(idle) = cpu.idle() {
        out.push(Setting::new("cpu.idle", CPU, "cpu.idle", idle));
    }
    let realtime = [
        (
            "cpu.realtimeRuntime",
            cpu.realtime_runtime().filter(|r| *r != 0),
        ),
        (
            "cpu.realtimePeriod",
            cpu.realtime_period().filter(|p| *p != 0).map(|p| p as i64),
        ),
    ];
    if let Some((field, Some(value))) = realtime.into_iter().find(|(_, v)| v.is_some()) {
        return Err(CgroupError::unsupported(
            resources_field(field),
            value,
            "cgroup v2 has no realtime bandwidth control",
        ));
    }
    Ok(())
}

/// `cpu.max`: "QUOTA PERIOD", "max PERIOD" for no quota, or the quota alone to keep the
/// current period. A period alone comes with "max", as in runc.
fn cpu_max(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let quota = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    Some(match period {
        Some(p) => format!("{quota} {p}"),
        None => quota,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn weight_conversion_matches_runc_and_crun() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(u64::MAX), 10_000);
    }

    #[test]
    fn bandwidth_v1() {
        let json = r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"burst":1000,"idle":0,
            "realtimeRuntime":950,"realtimePeriod":1000}}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("cpu.shares", "512"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "50000"),
                ("cpu.cfs_burst_us", "1000"),
                ("cpu.idle", "0"),
                ("cpu.rt_period_us", "1000"),
                ("cpu.rt_runtime_us", "950"),
            ])
        );
        assert_eq!(
            writes(V1, r#"{"cpu":{"quota":-7}}"#),
            pairs(&[("cpu.cfs_quota_us", "-1")])
        );
    }

    #[test]
    fn bandwidth_v2() {
        let json = r#"{"cpu":{"shares":1024,"quota":50000,"period":100000,"burst":1000,"idle":1}}"#;
        assert_eq!(
            writes(V2, json),
            pairs(&[
                ("cpu.weight", "39"),
                ("cpu.max", "50000 100000"),
                ("cpu.max.burst", "1000"),
                ("cpu.idle", "1"),
            ])
        );
        assert_eq!(cpu_max(Some(-1), Some(100_000)).unwrap(), "max 100000");
        assert_eq!(cpu_max(Some(20_000), None).unwrap(), "20000");
        assert_eq!(cpu_max(None, Some(5_000)).unwrap(), "max 5000");
        assert_eq!(cpu_max(Some(0), Some(0)), None);
    }

    #[test]
    fn refusals_name_the_field() {
        let e = error(V2, r#"{"cpu":{"realtimeRuntime":950}}"#);
        assert!(
            e.contains("linux.resources.cpu.realtimeRuntime 950 is not supported"),
            "{e}"
        );
        let e = error(V2, r#"{"cpu":{"realtimePeriod":1000}}"#);
        assert!(e.contains("cpu.realtimePeriod"), "{e}");
        let e = error(V1, r#"{"cpu":{"shares":1}}"#);
        assert!(
            e.contains("linux.resources.cpu.shares 1 is not valid"),
            "{e}"
        );
        let e = error(V1, r#"{"cpu":{"idle":3}}"#);
        assert!(e.contains("cpu.idle 3"), "{e}");
    }
}
