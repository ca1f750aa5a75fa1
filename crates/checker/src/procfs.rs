//! Pure parsers for the procfs files the report reads: `/proc/self/status` and
//! `/proc/self/mountinfo`. No I/O here, so every parser is unit tested.

use std::collections::BTreeMap;

use serde::Serialize;

/// Splits `/proc/<pid>/status` into its `Key: value` pairs (values trimmed).
pub fn parse_status(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
        .collect()
}

/// Looks up `key` in a parsed status file, naming the key when it is missing.
pub fn status_field<'a>(
    status: &'a BTreeMap<String, String>,
    key: &str,
) -> Result<&'a str, String> {
    status
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| format!("/proc/self/status has no {key} line"))
}

/// Parses a hexadecimal mask such as the value of `CapEff:` or `SigBlk:`.
pub fn parse_hex_mask(value: &str) -> Result<u64, String> {
    u64::from_str_radix(value.trim(), 16).map_err(|e| format!("{value:?} is not a hex mask: {e}"))
}

/// Parses a whitespace-separated list of numbers, such as the value of `Uid:`.
pub fn parse_numbers(value: &str) -> Result<Vec<u64>, String> {
    value
        .split_whitespace()
        .map(|n| {
            n.parse()
                .map_err(|e| format!("{n:?} in {value:?} is not a number: {e}"))
        })
        .collect()
}

/// One line of `/proc/self/mountinfo`, see proc(5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountInfo {
    pub id: u32,
    pub parent: u32,
    /// `major:minor` of the device holding the filesystem.
    pub device: String,
    /// Path inside the filesystem that forms the root of this mount (e.g. for bind mounts).
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw`, `nosuid`, `relatime`...).
    pub options: Vec<String>,
    /// Propagation tags: `shared:N`, `master:N`, `propagate_from:N`, `unbindable`.
    pub optional: Vec<String>,
    pub fs_type: String,
    pub source: String,
    /// Per-superblock options (`size=...`, `mode=...`...).
    pub super_options: Vec<String>,
}

/// Parses one line of `/proc/self/mountinfo`.
pub fn parse_mountinfo_line(line: &str) -> Result<MountInfo, String> {
    let bad = |what: &str| format!("mountinfo line {line:?}: {what}");
    let (before, after) = line
        .split_once(" - ")
        .ok_or_else(|| bad("no \" - \" separator before the filesystem type"))?;

    let mut fields = before.split(' ');
    let mut next = |name: &str| fields.next().ok_or_else(|| bad(&format!("missing {name}")));
    let id = next("mount id")?;
    let parent = next("parent id")?;
    let device = next("major:minor")?.to_owned();
    let root = unescape(next("root")?);
    let mount_point = unescape(next("mount point")?);
    let options = split_options(next("mount options")?);
    let optional = fields
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();

    let mut tail = after.splitn(3, ' ');
    let fs_type = unescape(tail.next().unwrap_or_default());
    let source = unescape(tail.next().ok_or_else(|| bad("missing mount source"))?);
    let super_options = split_options(tail.next().ok_or_else(|| bad("missing super options"))?);

    Ok(MountInfo {
        id: id.parse().map_err(|_| bad("mount id is not a number"))?,
        parent: parent
            .parse()
            .map_err(|_| bad("parent id is not a number"))?,
        device,
        root,
        mount_point,
        options,
        optional,
        fs_type,
        source,
        super_options,
    })
}

fn split_options(field: &str) -> Vec<String> {
    field
        .split(',')
        .filter(|o| !o.is_empty())
        .map(unescape)
        .collect()
}

/// Undoes the kernel's octal escaping of space, tab, newline and backslash (`\040` etc.).
pub fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(digits)) => {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tbulwark-check\nUmask:\t0022\nUid:\t1000\t1001\t1002\t1003\n\
        Groups:\t10 20 \nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n\
        CapBnd:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n";

    #[test]
    fn status_lines_become_trimmed_pairs() {
        let status = parse_status(STATUS);
        assert_eq!(status_field(&status, "Name"), Ok("bulwark-check"));
        assert_eq!(status_field(&status, "Groups"), Ok("10 20"));
        assert_eq!(status_field(&status, "Seccomp"), Ok("2"));
        assert!(status_field(&status, "CapAmb")
            .unwrap_err()
            .contains("CapAmb"));
    }

    #[test]
    fn status_caps_parse_as_hex_masks() {
        let status = parse_status(STATUS);
        assert_eq!(
            parse_hex_mask(status_field(&status, "CapInh").unwrap()),
            Ok(0)
        );
        assert_eq!(
            parse_hex_mask(status_field(&status, "CapEff").unwrap()),
            Ok((1 << 41) - 1)
        );
        assert_eq!(
            parse_hex_mask(status_field(&status, "CapBnd").unwrap()),
            Ok(0xa804_25fb)
        );
        assert!(parse_hex_mask("xyz").is_err());
    }

    #[test]
    fn status_ids_parse_as_numbers() {
        let status = parse_status(STATUS);
        assert_eq!(
            parse_numbers(status_field(&status, "Uid").unwrap()),
            Ok(vec![1000, 1001, 1002, 1003])
        );
        assert_eq!(parse_numbers(""), Ok(vec![]));
        assert!(parse_numbers("1 x").is_err());
    }

    #[test]
    fn mountinfo_line_with_propagation_tags() {
        let line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue";
        let mount = parse_mountinfo_line(line).unwrap();
        assert_eq!(
            mount,
            MountInfo {
                id: 36,
                parent: 35,
                device: "98:0".into(),
                root: "/mnt1".into(),
                mount_point: "/mnt2".into(),
                options: vec!["rw".into(), "noatime".into()],
                optional: vec!["master:1".into(), "shared:7".into()],
                fs_type: "ext3".into(),
                source: "/dev/root".into(),
                super_options: vec!["rw".into(), "errors=continue".into()],
            }
        );
    }

    #[test]
    fn mountinfo_line_without_optional_fields() {
        let line = "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw";
        let mount = parse_mountinfo_line(line).unwrap();
        assert!(mount.optional.is_empty());
        assert_eq!(mount.fs_type, "proc");
        assert_eq!(
            mount.options,
            ["rw", "nosuid", "nodev", "noexec", "relatime"]
        );
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        let line = r"40 22 0:50 / /tmp/a\040b\134c rw - tmpfs my\011src rw,size=65536k,mode=755";
        let mount = parse_mountinfo_line(line).unwrap();
        assert_eq!(mount.mount_point, r"/tmp/a b\c");
        assert_eq!(mount.source, "my\tsrc");
        assert_eq!(mount.super_options, ["rw", "size=65536k", "mode=755"]);
    }

    #[test]
    fn mountinfo_malformed_lines_are_errors() {
        assert!(parse_mountinfo_line("").is_err());
        assert!(parse_mountinfo_line("36 35 98:0 / /mnt rw").is_err());
        assert!(parse_mountinfo_line("x 35 98:0 / /mnt rw - ext4 /dev/sda rw").is_err());
        assert!(parse_mountinfo_line("36 35 98:0 / /mnt rw - ext4").is_err());
    }

    #[test]
    fn unescape_leaves_other_backslashes_alone() {
        assert_eq!(unescape(r"a\x\09"), r"a\x\09");
        assert_eq!(unescape(r"\012"), "\n");
    }
}
