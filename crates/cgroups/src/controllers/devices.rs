//! The device controller: `linux.resources.devices`.
//!
//! v1: `devices.deny` "a" first (nothing allowed), then each rule in order as a
//! "TYPE MAJOR:MINOR ACCESS" line to `devices.allow` or `devices.deny`. A missing list
//! leaves the cgroup's device rules as they are, so the runtime should always pass its
//! default rules.
//!
//! v2 has no device files: access is decided by an eBPF program attached to the
//! cgroup, which bulwark does not load yet, so any device list is refused on v2.
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::{resources_field, Setting, Version};
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
    if version == Version::V2 {
        return Err(CgroupError::unsupported(
            resources_field("devices"),
            format!("({} rules)", rules.len()),
            "on cgroup v2 device access is enforced by an eBPF program, which bulwark \
             cannot load yet",
        ));
    }
    out.push(Setting::new("devices", DEVICES, "devices.deny", "a"));
    for (i, rule) in rules.iter().enumerate() {
        let field = format!("devices[{i}]");
        let line = rule_line(&field, rule)?;
        let file = if rule.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push(Setting::new(&field, DEVICES, file, line));
    }
    Ok(())
}

/// "TYPE MAJOR:MINOR ACCESS" as the v1 device controller reads it.
fn rule_line(field: &str, rule: &LinuxDeviceCgroup) -> Result<String> {
    let kind = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C => 'c',
        other => {
            return Err(CgroupError::invalid(
                resources_field(&format!("{field}.type")),
                format!("{:?}", other.as_str()),
                "a (all), b (block) or c (character)",
            ))
        }
    };
    let major = number(&format!("{field}.major"), rule.major())?;
    let minor = number(&format!("{field}.minor"), rule.minor())?;
    let access = rule.access().as_deref().unwrap_or("rwm");
    let mut seen = String::new();
    for c in access.chars() {
        if !"rwm".contains(c) || seen.contains(c) {
            seen.clear();
            break;
        }
        seen.push(c);
    }
    if seen.is_empty() {
        return Err(CgroupError::invalid(
            resources_field(&format!("{field}.access")),
            format!("{access:?}"),
            "one or more of r, w and m, each at most once",
        ));
    }
    // The kernel reads type "a" as every device with every access whatever follows, so a
    // narrower "a" rule would silently widen; refuse it instead.
    if kind == 'a' && (major != "*" || minor != "*" || seen.len() != 3) {
        return Err(CgroupError::invalid(
            resources_field(field),
            format!("\"a {major}:{minor} {access}\""),
            "type a only with any major, any minor and rwm access (cgroup v1 cannot \
             narrow an \"all devices\" rule)",
        ));
    }
    Ok(format!("{kind} {major}:{minor} {access}"))
}

/// A device number, or "*" for any (absent or -1).
fn number(field: &str, value: Option<i64>) -> Result<String> {
    match value {
        None | Some(-1) => Ok("*".to_string()),
        Some(n) if n >= 0 => Ok(n.to_string()),
        Some(n) => Err(CgroupError::invalid(
            resources_field(field),
            n,
            "a device number, or -1/absent for any",
        )),
    }
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
    fn v2_is_refused_with_the_field() {
        let e = error(V2, r#"{"devices":[{"allow":false,"access":"rwm"}]}"#);
        assert!(e.contains("linux.resources.devices"), "{e}");
        assert!(e.contains("eBPF"), "{e}");
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
