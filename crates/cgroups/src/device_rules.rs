//! `linux.resources.devices` checked once into [`DeviceRule`]s, which both the v1 device
//! files and the v2 device program are made from.
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::controllers::resources_field;
use crate::error::{CgroupError, Result};

/// The device types a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeviceKind {
    Block,
    Char,
}

/// Access bits, as the kernel's `BPF_DEVCG_ACC_*` numbers them.
pub(crate) const MKNOD: u8 = 1;
pub(crate) const READ: u8 = 2;
pub(crate) const WRITE: u8 = 4;
pub(crate) const ALL_ACCESS: u8 = MKNOD | READ | WRITE;

/// One valid rule. `None` means "any" (type `a`, major or minor `-1` or absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub(crate) allow: bool,
    pub(crate) kind: Option<DeviceKind>,
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    /// [`MKNOD`] | [`READ`] | [`WRITE`]; never 0.
    pub(crate) access: u8,
}

impl DeviceRule {
    /// The access as the v1 files write it: "rwm" order.
    pub(crate) fn access_text(&self) -> String {
        [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')]
            .iter()
            .filter(|(bit, _)| self.access & bit != 0)
            .map(|(_, c)| c)
            .collect()
    }
}

/// Checks every rule; errors name `linux.resources.devices[i]...`.
pub(crate) fn parse(rules: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>> {
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| parse_one(&format!("devices[{i}]"), rule))
        .collect()
}

fn parse_one(field: &str, rule: &LinuxDeviceCgroup) -> Result<DeviceRule> {
    let kind = match rule.typ().unwrap_or_default() {
        LinuxDeviceType::A => None,
        LinuxDeviceType::B => Some(DeviceKind::Block),
        LinuxDeviceType::C => Some(DeviceKind::Char),
        other => {
            return Err(CgroupError::invalid(
                resources_field(&format!("{field}.type")),
                format!("{:?}", other.as_str()),
                "a (all), b (block) or c (character)",
            ))
        }
    };
    Ok(DeviceRule {
        allow: rule.allow(),
        kind,
        major: number(&format!("{field}.major"), rule.major())?,
        minor: number(&format!("{field}.minor"), rule.minor())?,
        access: access(&format!("{field}.access"), rule.access().as_deref())?,
    })
}

/// A device number, or `None` for any (absent or -1).
fn number(field: &str, value: Option<i64>) -> Result<Option<u32>> {
    match value {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| {
            CgroupError::invalid(
                resources_field(field),
                n,
                "a device number from 0 to 4294967295, or -1/absent for any",
            )
        }),
    }
}

/// "rwm" letters, each at most once; absent means all three.
fn access(field: &str, text: Option<&str>) -> Result<u8> {
    let text = text.unwrap_or("rwm");
    let mut bits = 0;
    for c in text.chars() {
        let bit = match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => 0,
        };
        if bit == 0 || bits & bit != 0 {
            bits = 0;
            break;
        }
        bits |= bit;
    }
    if bits == 0 {
        return Err(CgroupError::invalid(
            resources_field(field),
            format!("{text:?}"),
            "one or more of r, w and m, each at most once",
        ));
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Result<DeviceRule> {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(&format!("[{json}]")).unwrap();
        parse(&rules).map(|r| r[0])
    }

    #[test]
    fn absent_fields_mean_any() {
        let rule = one(r#"{"allow":true}"#).unwrap();
        assert_eq!(
            rule,
            DeviceRule {
                allow: true,
                kind: None,
                major: None,
                minor: None,
                access: ALL_ACCESS
            }
        );
        let rule = one(r#"{"type":"b","major":8,"minor":-1,"access":"wr"}"#).unwrap();
        assert_eq!(
            (rule.allow, rule.kind, rule.major, rule.minor),
            (false, Some(DeviceKind::Block), Some(8), None)
        );
        assert_eq!(rule.access_text(), "rw");
    }

    #[test]
    fn numbers_beyond_u32_are_refused() {
        let e = one(r#"{"type":"c","minor":4294967296}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.devices[0].minor 4294967296"),
            "{e}"
        );
        assert!(
            one(r#"{"type":"c","minor":4294967295}"#).is_ok(),
            "u32::MAX fits"
        );
    }
}
