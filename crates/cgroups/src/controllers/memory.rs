//! The memory controller: `linux.resources.memory`.
//!
//! The OCI `swap` is memory plus swap. v1 writes it as is (`memory.memsw.limit_in_bytes`);
//! v2 limits swap alone, so `memory.swap.max` gets `swap - limit`.
use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

const MEMORY: &str = "memory";

/// A configured byte amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bytes {
    Unlimited,
    Value(i64),
}

impl Bytes {
    fn v1(self) -> String {
        match self {
            Bytes::Unlimited => "-1".to_string(),
            Bytes::Value(n) => n.to_string(),
        }
    }

    fn v2(self) -> String {
        match self {
            Bytes::Unlimited => "max".to_string(),
            Bytes::Value(n) => n.to_string(),
        }
    }
}

/// `None` when unset (absent or 0).
fn bytes(field: &str, value: Option<i64>) -> Result<Option<Bytes>> {
    match value {
        None | Some(0) => Ok(None),
        Some(-1) => Ok(Some(Bytes::Unlimited)),
        Some(n) if n > 0 => Ok(Some(Bytes::Value(n))),
        Some(n) => Err(CgroupError::invalid(
            resources_field(field),
            n,
            "a byte count, -1 for no limit or 0 for unset",
        )),
    }
}

struct Amounts {
    limit: Option<Bytes>,
    reservation: Option<Bytes>,
    swap: Option<Bytes>,
}

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(memory) = resources.memory() else {
        return Ok(());
    };
    let amounts = Amounts {
        limit: bytes("memory.limit", memory.limit())?,
        reservation: bytes("memory.reservation", memory.reservation())?,
        swap: bytes("memory.swap", memory.swap())?,
    };
    check_swap(&amounts)?;
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::invalid(
                resources_field("memory.swappiness"),
                swappiness,
                "0 to 100",
            ));
        }
    }
    match version {
        Version::V1 => {
            v1(memory, &amounts, out);
            Ok(())
        }
        Version::V2 => v2(memory, &amounts, out),
    }
}

/// `swap` counts memory plus swap, so it needs a memory limit no larger than itself.
fn check_swap(a: &Amounts) -> Result<()> {
    let Some(Bytes::Value(swap)) = a.swap else {
        return Ok(());
    };
    match a.limit {
        Some(Bytes::Value(limit)) if swap >= limit => Ok(()),
        Some(Bytes::Value(limit)) => Err(CgroupError::invalid(
            resources_field("memory.swap"),
            swap,
            format!("at least memory.limit ({limit}): it limits memory plus swap"),
        )),
        _ => Err(CgroupError::invalid(
            resources_field("memory.swap"),
            swap,
            "a memory.limit as well: swap limits memory plus swap",
        )),
    }
}

fn v1(memory: &LinuxMemory, a: &Amounts, out: &mut Vec<Setting>) {
    let memsw = "memory.memsw.limit_in_bytes";
    if let (Some(_), Some(_)) = (a.limit, a.swap) {
        // The kernel keeps memory <= memory+swap at every write; lifting memsw first
        // lets the limit move either way, then memsw takes its value.
        out.push(Setting::new("memory.swap", MEMORY, memsw, "-1"));
    }
    if let Some(limit) = a.limit {
        let mut s = Setting::new("memory.limit", MEMORY, "memory.limit_in_bytes", limit.v1());
        if memory.check_before_update() == Some(true) {
            s = s.not_below("memory.usage_in_bytes");
        }
        out.push(s);
    }
    if let Some(swap) = a.swap {
        out.push(Setting::new("memory.swap", MEMORY, memsw, swap.v1()));
    }
    if let Some(reservation) = a.reservation {
        out.push(Setting::new(
            "memory.reservation",
            MEMORY,
            "memory.soft_limit_in_bytes",
            reservation.v1(),
        ));
    }
    #[allow(deprecated)] // kernel memory limits are deprecated, but still configurable on v1
    let kernel = memory.kernel();
    if let Some(kernel) = kernel.filter(|k| *k != 0) {
        out.push(Setting::new(
            "memory.kernel",
            MEMORY,
            "memory.kmem.limit_in_bytes",
            kernel,
        ));
    }
    if let Some(tcp) = memory.kernel_tcp().filter(|k| *k != 0) {
        out.push(Setting::new(
            "memory.kernelTCP",
            MEMORY,
            "memory.kmem.tcp.limit_in_bytes",
            tcp,
        ));
    }
    if let Some(swappiness) = memory.swappiness() {
        out.push(Setting::new(
            "memory.swappiness",
            MEMORY,
            "memory.swappiness",
            swappiness,
        ));
    }
    if let Some(disable) = memory.disable_oom_killer() {
        out.push(Setting::new(
            "memory.disableOOMKiller",
            MEMORY,
            "memory.oom_control",
            u8::from(disable),
        ));
    }
    if let Some(hierarchy) = memory.use_hierarchy() {
        out.push(Setting::new(
            "memory.useHierarchy",
            MEMORY,
            "memory.use_hierarchy",
            u8::from(hierarchy),
        ));
    }
}

fn v2(memory: &LinuxMemory, a: &Amounts, out: &mut Vec<Setting>) -> Result<()> {
    if let Some(limit) = a.limit {
        let mut s = Setting::new("memory.limit", MEMORY, "memory.max", limit.v2());
        if memory.check_before_update() == Some(true) {
            s = s.not_below("memory.current");
        }
        out.push(s);
    }
    match (a.swap, a.limit) {
        (Some(Bytes::Unlimited), _) => {
            out.push(Setting::new(
                "memory.swap",
                MEMORY,
                "memory.swap.max",
                "max",
            ));
        }
        (Some(Bytes::Value(swap)), Some(Bytes::Value(limit))) => out.push(Setting::new(
            "memory.swap",
            MEMORY,
            "memory.swap.max",
            swap - limit,
        )),
        _ => {} // no swap, or rejected by check_swap
    }
    if let Some(reservation) = a.reservation {
        out.push(Setting::new(
            "memory.reservation",
            MEMORY,
            "memory.low",
            reservation.v2(),
        ));
    }
    #[allow(deprecated)] // read only to refuse it
    let kernel = memory.kernel();
    if let Some(kernel) = kernel.filter(|k| *k != 0) {
        return Err(no_v2(
            "memory.kernel",
            kernel,
            "cgroup v2 has no kernel memory limit",
        ));
    }
    if let Some(tcp) = memory.kernel_tcp().filter(|k| *k != 0) {
        return Err(no_v2(
            "memory.kernelTCP",
            tcp,
            "cgroup v2 has no kernel TCP memory limit",
        ));
    }
    if let Some(swappiness) = memory.swappiness() {
        return Err(no_v2(
            "memory.swappiness",
            swappiness,
            "cgroup v2 has no per-cgroup swappiness",
        ));
    }
    if memory.disable_oom_killer() == Some(true) {
        return Err(no_v2(
            "memory.disableOOMKiller",
            true,
            "cgroup v2 cannot disable the OOM killer",
        ));
    }
    if memory.use_hierarchy() == Some(false) {
        return Err(no_v2(
            "memory.useHierarchy",
            false,
            "cgroup v2 accounting is always hierarchical",
        ));
    }
    Ok(())
}

fn no_v2(field: &str, value: impl std::fmt::Display, reason: &str) -> CgroupError {
    CgroupError::unsupported(resources_field(field), value, reason)
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn limit_and_swap_v1_keep_memsw_above_memory_at_every_write() {
        let json = r#"{"memory":{"limit":1000,"swap":3000,"reservation":500}}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("memory.memsw.limit_in_bytes", "-1"),
                ("memory.limit_in_bytes", "1000"),
                ("memory.memsw.limit_in_bytes", "3000"),
                ("memory.soft_limit_in_bytes", "500"),
            ])
        );
    }

    #[test]
    fn limit_and_swap_v2_split_swap_out() {
        let json = r#"{"memory":{"limit":1000,"swap":3000,"reservation":500}}"#;
        assert_eq!(
            writes(V2, json),
            pairs(&[
                ("memory.max", "1000"),
                ("memory.swap.max", "2000"),
                ("memory.low", "500"),
            ])
        );
        let json = r#"{"memory":{"limit":-1,"swap":-1}}"#;
        assert_eq!(
            writes(V2, json),
            pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
        );
        assert_eq!(
            writes(V2, r#"{"memory":{"limit":1000,"swap":1000}}"#),
            pairs(&[("memory.max", "1000"), ("memory.swap.max", "0")])
        );
    }

    #[test]
    fn unlimited_and_unset() {
        assert_eq!(
            writes(V1, r#"{"memory":{"limit":-1,"reservation":0}}"#),
            pairs(&[("memory.limit_in_bytes", "-1")])
        );
        assert!(writes(V2, r#"{"memory":{"limit":0}}"#).is_empty());
    }

    #[test]
    fn bad_values_name_the_field() {
        for v in [V1, V2] {
            let e = error(v, r#"{"memory":{"limit":-5}}"#);
            assert!(e.contains("linux.resources.memory.limit -5"), "{e}");
            let e = error(v, r#"{"memory":{"limit":2000,"swap":1000}}"#);
            assert!(e.contains("linux.resources.memory.swap 1000"), "{e}");
            let e = error(v, r#"{"memory":{"swap":1000}}"#);
            assert!(e.contains("memory.limit"), "{e}");
            let e = error(v, r#"{"memory":{"swappiness":101}}"#);
            assert!(e.contains("0 to 100"), "{e}");
        }
    }

    #[test]
    fn v1_only_knobs() {
        let json = r#"{"memory":{"kernel":100,"kernelTCP":200,"swappiness":10,
            "disableOOMKiller":true,"useHierarchy":true}}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("memory.kmem.limit_in_bytes", "100"),
                ("memory.kmem.tcp.limit_in_bytes", "200"),
                ("memory.swappiness", "10"),
                ("memory.oom_control", "1"),
                ("memory.use_hierarchy", "1"),
            ])
        );
        for (json, field) in [
            (r#"{"memory":{"kernel":100}}"#, "memory.kernel"),
            (r#"{"memory":{"kernelTCP":100}}"#, "memory.kernelTCP"),
            (r#"{"memory":{"swappiness":10}}"#, "memory.swappiness"),
            (
                r#"{"memory":{"disableOOMKiller":true}}"#,
                "memory.disableOOMKiller",
            ),
            (
                r#"{"memory":{"useHierarchy":false}}"#,
                "memory.useHierarchy",
            ),
        ] {
            let e = error(V2, json);
            assert!(e.contains(field) && e.contains("not supported"), "{e}");
        }
        // What v2 always does is not an error.
        assert!(writes(
            V2,
            r#"{"memory":{"useHierarchy":true,"disableOOMKiller":false}}"#
        )
        .is_empty());
    }

    #[test]
    fn check_before_update_guards_the_limit() {
        let json = r#"{"memory":{"limit":1000,"checkBeforeUpdate":true}}"#;
        let s = crate::controllers::plan(V2, &resources(json)).unwrap();
        assert_eq!(s[0].not_below_file(), Some("memory.current"));
        let s = crate::controllers::plan(V1, &resources(json)).unwrap();
        assert_eq!(s[0].not_below_file(), Some("memory.usage_in_bytes"));
    }
}
