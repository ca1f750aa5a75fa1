//! The device controller: `linux.resources.devices`.
//!
//! v1: `devices.deny` "a" first (nothing allowed), then each rule in order as a
//! "TYPE MAJOR:MINOR ACCESS" line to `devices.allow` or `devices.deny`. A missing list
//! leaves the cgroup's device rules as they are, so the runtime should always pass its
//! default rules.
//!
//! v2 has no device files: access is decided by an eBPF program attached to the cgroup
//! ([`crate::device_filter`]), which the v2 manager loads itself. Here the rules are only
//! checked, so that a bad rule fails before anything is written.
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::device_rules::{self, DeviceKind, DeviceRule, ALL_ACCESS};
use crate::error::{CgroupError, Result};

const DEVICES: &str = "devices";

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    let Some(rules) = resources.devices() else {
        return Ok(());
    };
    let rules = device_rules::parse(rules)?;
    if version == Version::V2 {
        return Ok(());
    }
    out.push(Setting::new("devices", DEVICES, "devices.deny", "a"));
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("devices[{i}]");
        let line = rule_line(&field, rule)?;
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push(Setting::new(&field, DEVICES, file, line));
    }
    Ok(())
}

/// "TYPE MAJOR:MINOR ACCESS" as the v1 device controller reads it.
fn rule_line(field: &str, rule: &DeviceRule) -> Result<String> {
    let number = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
    let (major, minor, access) = (number(rule.major), number(rule.minor), rule.access_text());
    let kind = match rule.kind {
        Some(DeviceKind::Block) => 'b',
        Some(DeviceKind::Char) => 'c',
        None => 'a',
    };
    // The kernel reads type "a" as every device with every access whatever follows, so a
    // narrower "a" rule would silently widen; refuse it instead.
    if kind == 'a' && (rule.major.is_some() || rule.minor.is_some() || rule.access != ALL_ACCESS) {
        return Err(CgroupError::invalid(
            resources_field(field),
            format!("\"a {major}:{minor} {access}\""),
            "type a only with any major, any minor and rwm access (cgroup v1 cannot \
             narrow an \"all devices\" rule)",
        ));
    }
    Ok(format!("{kind} {major}:{minor} {access}"))
}

#[cfg(test)]
mod tests {
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn deny_all_then_rules_in_order() {
        let json = r#"{"devices":[
            {"allow":false,"access":"rwm"},
            {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
            {"allow":true,"type":"c","major":136,"access":"rwm"},
            {"allow":false,"type":"b","major":8,"minor":-1}]}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("devices.deny", "a"),
                ("devices.deny", "a *:* rwm"),
                ("devices.allow", "c 1:3 rw"),
                ("devices.allow", "c 136:* rwm"),
                ("devices.deny", "b 8:* rwm"),
            ])
        );
        assert_eq!(
            writes(V1, r#"{"devices":[]}"#),
            pairs(&[("devices.deny", "a")])
        );
    }

    #[test]
    fn v2_checks_rules_but_writes_no_files() {
        let json = r#"{"devices":[{"allow":false,"access":"rwm"},
            {"allow":true,"type":"a","major":1,"access":"r"}]}"#;
        assert!(writes(V2, json).is_empty());
        let e = error(V2, r#"{"devices":[{"allow":true,"access":"rx"}]}"#);
        assert!(e.contains("linux.resources.devices[0].access"), "{e}");
    }

    #[test]
    fn bad_rules_are_refused() {
        for (rule, field) in [
            (
                r#"{"allow":true,"type":"c","major":1,"access":"rx"}"#,
                "devices[0].access",
            ),
            (
                r#"{"allow":true,"type":"c","major":1,"access":""}"#,
                "devices[0].access",
            ),
            (
                r#"{"allow":true,"type":"c","major":1,"access":"rr"}"#,
                "devices[0].access",
            ),
            (
                r#"{"allow":true,"type":"p","access":"rwm"}"#,
                "devices[0].type",
            ),
            (
                r#"{"allow":true,"type":"c","major":-2,"access":"r"}"#,
                "devices[0].major",
            ),
            (
                r#"{"allow":true,"type":"c","major":4294967296,"access":"r"}"#,
                "devices[0].major",
            ),
            (
                r#"{"allow":true,"type":"a","major":1,"access":"r"}"#,
                "devices[0]",
            ),
            (r#"{"allow":true,"access":"r"}"#, "devices[0]"),
        ] {
            let e = error(V1, &format!(r#"{{"devices":[{rule}]}}"#));
            assert!(
                e.contains(&format!("linux.resources.{field}")),
                "{rule}: {e}"
            );
        }
    }
}
