//! The hugetlb controller: `linux.resources.hugepageLimits[]`.
//!
//! Each limit goes to `hugetlb.<size>.limit_in_bytes` (v1) or `hugetlb.<size>.max` (v2),
//! and also to the reservation limit (`.rsvd.`) where the kernel has one (5.7+), so the
//! limit holds at mmap time rather than at page fault.
use oci_spec::runtime::LinuxResources;

use super::{resources_field, Setting, Version};
use crate::error::{CgroupError, Result};

const HUGETLB: &str = "hugetlb";

pub(super) fn plan(
    version: Version,
    resources: &LinuxResources,
    out: &mut Vec<Setting>,
) -> Result<()> {
    for (i, limit) in resources.hugepage_limits().iter().flatten().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let size = limit.page_size();
        if !valid_page_size(size) {
            return Err(CgroupError::invalid(
                resources_field(&format!("{field}.pageSize")),
                format!("{size:?}"),
                "a size with the kernel's unit, such as \"2MB\", \"1GB\" or \"64KB\"",
            ));
        }
        let bytes = limit.limit();
        let (files, value) = match version {
            Version::V1 => (
                ["limit_in_bytes", "rsvd.limit_in_bytes"],
                bytes.max(-1).to_string(),
            ),
            Version::V2 if bytes < 0 => (["max", "rsvd.max"], "max".to_string()),
            Version::V2 => (["max", "rsvd.max"], bytes.to_string()),
        };
        let field = format!("{field}.limit");
        out.push(Setting::new(
            &field,
            HUGETLB,
            &format!("hugetlb.{size}.{}", files[0]),
            &value,
        ));
        out.push(
            Setting::new(
                &field,
                HUGETLB,
                &format!("hugetlb.{size}.{}", files[1]),
                &value,
            )
            .optional(),
        );
    }
    Ok(())
}

/// The kernel names page sizes like "2MB": digits and KB, MB or GB.
fn valid_page_size(size: &str) -> bool {
    let digits = size.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &size[digits.len()..];
    !digits.is_empty()
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::test_support::*;
    use crate::controllers::Version::{V1, V2};

    #[test]
    fn limits_and_reservations() {
        let json = r#"{"hugepageLimits":[{"pageSize":"2MB","limit":4194304},{"pageSize":"1GB","limit":-1}]}"#;
        assert_eq!(
            writes(V1, json),
            pairs(&[
                ("hugetlb.2MB.limit_in_bytes", "4194304"),
                ("hugetlb.2MB.rsvd.limit_in_bytes", "4194304"),
                ("hugetlb.1GB.limit_in_bytes", "-1"),
                ("hugetlb.1GB.rsvd.limit_in_bytes", "-1"),
            ])
        );
        assert_eq!(
            writes(V2, json),
            pairs(&[
                ("hugetlb.2MB.max", "4194304"),
                ("hugetlb.2MB.rsvd.max", "4194304"),
                ("hugetlb.1GB.max", "max"),
                ("hugetlb.1GB.rsvd.max", "max"),
            ])
        );
        let s = crate::controllers::plan(V2, &resources(json)).unwrap();
        assert!(!s[0].is_optional() && s[1].is_optional());
        assert_eq!(s[0].field(), "linux.resources.hugepageLimits[0].limit");
    }

    #[test]
    fn page_sizes_are_checked() {
        for good in ["2MB", "1GB", "64KB", "16384KB"] {
            assert!(valid_page_size(good), "{good}");
        }
        for bad in ["2M", "MB", "02MB", "2mb", "2MB/../x", "../2MB", ""] {
            assert!(!valid_page_size(bad), "{bad}");
        }
        let e = error(V1, r#"{"hugepageLimits":[{"pageSize":"2Mi","limit":1}]}"#);
        assert!(e.contains("hugepageLimits[0].pageSize \"2Mi\""), "{e}");
    }
}
