//! Translation of `linux.resources` into cgroup file writes, one module per controller.
//!
//! Pure: [`plan`] turns the configuration into [`Setting`]s (file, value, and the field
//! they come from) without touching the host; the managers then write them. Values a
//! cgroup version cannot express are errors here, before anything is written.
//!
//! As in runc and crun, 0 means "not set" for the numeric fields Go leaves at zero
//! (memory limits, cpu shares/quota/period, blkio weight), and -1 means "no limit".
use oci_spec::runtime::LinuxResources;

use crate::error::Result;

mod blkio;
mod cpu;
mod cpuset;
mod devices;
pub(crate) mod freezer;
mod hugetlb;
mod memory;
mod net_cls;
mod net_prio;
mod pids;
mod rdma;
mod unified;

pub use cpu::shares_to_weight;

/// Which file names and value formats to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// cgroup v1 (also the controllers of a hybrid host).
    V1,
    /// cgroup v2.
    V2,
}

/// One value to write into one file of the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    field: String,
    controller: String,
    file: String,
    value: String,
    fallback: Option<(String, String)>,
    optional: bool,
    not_below: Option<String>,
}

impl Setting {
    /// `field` is relative to `linux.resources` (`memory.limit`).
    pub(crate) fn new(field: &str, controller: &str, file: &str, value: impl ToString) -> Self {
        Setting {
            field: resources_field(field),
            controller: controller.to_string(),
            file: file.to_string(),
            value: value.to_string(),
            fallback: None,
            optional: false,
            not_below: None,
        }
    }

    /// Write `value` to `file` instead when the primary file does not exist.
    pub(crate) fn or_file(mut self, file: &str, value: impl ToString) -> Self {
        self.fallback = Some((file.to_string(), value.to_string()));
        self
    }

    /// Skip this write when neither file exists: only for extras next to a setting that
    /// carries the configured value itself (hugetlb reservations).
    pub(crate) fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Refuse the write when the value is below the number currently in `file`
    /// (`memory.checkBeforeUpdate`).
    pub(crate) fn not_below(mut self, file: &str) -> Self {
        self.not_below = Some(file.to_string());
        self
    }

    /// The configuration field, e.g. `linux.resources.memory.limit`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The controller owning the file (`memory`, `blkio` on v1, `io` on v2, `cgroup` for
    /// core files).
    pub fn controller(&self) -> &str {
        &self.controller
    }

    /// The file, relative to the cgroup directory.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The text written.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The file and value written instead when [`Setting::file`] does not exist.
    pub fn fallback(&self) -> Option<(&str, &str)> {
        self.fallback
            .as_ref()
            .map(|(f, v)| (f.as_str(), v.as_str()))
    }

    /// Whether a missing file is fine (the setting is an extra, not the configured value).
    pub fn is_optional(&self) -> bool {
        self.optional
    }

    /// The file whose current number the value must not be below.
    pub fn not_below_file(&self) -> Option<&str> {
        self.not_below.as_deref()
    }
}

/// `linux.resources.<rel>`.
pub(crate) fn resources_field(rel: &str) -> String {
    format!("linux.resources.{rel}")
}

/// Every file write `resources` asks for, in the order to make them.
pub fn plan(version: Version, resources: &LinuxResources) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    cpuset::plan(version, resources, &mut out)?;
    memory::plan(version, resources, &mut out)?;
    cpu::plan(version, resources, &mut out)?;
    pids::plan(version, resources, &mut out)?;
    blkio::plan(version, resources, &mut out)?;
    hugetlb::plan(version, resources, &mut out)?;
    net_cls::plan(version, resources, &mut out)?;
    net_prio::plan(version, resources, &mut out)?;
    rdma::plan(version, resources, &mut out)?;
    devices::plan(version, resources, &mut out)?;
    // Last, so its raw values win over the translated ones, as in runc.
    unified::plan(version, resources, &mut out)?;
    Ok(out)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// The (file, value) pairs `json` (a `linux.resources` object) plans to write.
    pub(crate) fn writes(version: Version, json: &str) -> Vec<(String, String)> {
        plan(version, &resources(json))
            .unwrap()
            .into_iter()
            .map(|s| (s.file, s.value))
            .collect()
    }

    /// The error message planning `json` gives.
    pub(crate) fn error(version: Version, json: &str) -> String {
        plan(version, &resources(json)).unwrap_err().to_string()
    }

    pub(crate) fn resources(json: &str) -> LinuxResources {
        serde_json::from_str(json).unwrap()
    }

    pub(crate) fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;

    #[test]
    fn empty_resources_write_nothing() {
        assert!(writes(Version::V1, "{}").is_empty());
        assert!(writes(Version::V2, "{}").is_empty());
    }

    #[test]
    fn settings_name_their_field() {
        let settings = plan(Version::V2, &resources(r#"{"pids":{"limit":5}}"#)).unwrap();
        assert_eq!(settings[0].field(), "linux.resources.pids.limit");
        assert_eq!(settings[0].controller(), "pids");
    }
}
