//! `process.capabilities`, decided once: five sets of capabilities this kernel has,
//! checked against what the runtime can grant and what the kernel will accept, with the
//! ambient set reduced to what the kernel will raise (as runc does, with a warning).
use caps::Capability;
use oci_spec::runtime::{Capabilities as OciSet, LinuxCapabilities};

use crate::{Host, SpecError};

/// A set of capabilities, as the kernel's 64-bit masks hold them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSet(u64);

impl CapSet {
    /// Every capability this build knows.
    pub fn all() -> CapSet {
        caps::all().into_iter().collect()
    }

    pub fn bits(self) -> u64 {
        self.0
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.0 & cap.bitmask() != 0
    }

    pub fn insert(&mut self, cap: Capability) {
        self.0 |= cap.bitmask();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The members of `self` not in `other`.
    pub fn without(self, other: CapSet) -> CapSet {
        CapSet(self.0 & !other.0)
    }

    pub fn intersect(self, other: CapSet) -> CapSet {
        CapSet(self.0 & other.0)
    }

    /// The members, by kernel number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        let mut all: Vec<Capability> = caps::all().into_iter().collect();
        all.sort_by_key(|c| c.index());
        all.into_iter().filter(move |c| self.contains(*c))
    }

    /// The members as the `caps` crate takes them.
    pub fn to_hash_set(self) -> caps::CapsHashSet {
        self.iter().collect()
    }

    fn names(self) -> String {
        self.iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromIterator<Capability> for CapSet {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        let mut set = CapSet::default();
        iter.into_iter().for_each(|c| set.insert(c));
        set
    }
}

impl std::fmt::Debug for CapSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}]", self.names())
    }
}

/// The five sets a process gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    /// Only what the kernel will raise: each is also permitted and inheritable.
    pub ambient: CapSet,
}

/// The capability the kernel numbers as `cap` in the config's spelling.
fn parse_one(cap: &oci_spec::runtime::Capability, field: &str) -> Result<Capability, SpecError> {
    let name = serde_json::to_value(cap)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    name.parse()
        .map_err(|_| SpecError::invalid(field, &name, "a capability this runtime knows"))
}

/// One set of the config, less what this kernel does not have (skipped, as runc does),
/// refusing what the runtime cannot grant.
fn parse_set(set: &Option<OciSet>, field: &str, host: &Host) -> Result<CapSet, SpecError> {
    let mut out = CapSet::default();
    for cap in set.iter().flatten() {
        let cap = parse_one(cap, field)?;
        if !host.supported.contains(cap) {
            continue;
        }
        if !host.bounding.contains(cap) {
            return Err(SpecError::invalid(
                field,
                cap.to_string(),
                "a capability in the runtime's own bounding set (it cannot grant one it lacks)",
            ));
        }
        out.insert(cap);
    }
    Ok(out)
}

/// Plans `process.capabilities` (absent: no capabilities at all). The ambient
/// capabilities the kernel would refuse to raise (not both permitted and inheritable)
/// are left out, each with a warning, as runc and crun leave them.
pub(crate) fn plan(
    wanted: Option<&LinuxCapabilities>,
    host: &Host,
    warnings: &mut Vec<String>,
) -> Result<Capabilities, SpecError> {
    let Some(wanted) = wanted else {
        return Ok(Capabilities::default());
    };
    let field = |set: &str| format!("process.capabilities.{set}");
    let sets = Capabilities {
        bounding: parse_set(wanted.bounding(), &field("bounding"), host)?,
        effective: parse_set(wanted.effective(), &field("effective"), host)?,
        permitted: parse_set(wanted.permitted(), &field("permitted"), host)?,
        inheritable: parse_set(wanted.inheritable(), &field("inheritable"), host)?,
        ambient: parse_set(wanted.ambient(), &field("ambient"), host)?,
    };
    let beyond = sets.effective.without(sets.permitted);
    if !beyond.is_empty() {
        return Err(SpecError::invalid(
            field("effective"),
            beyond.names(),
            "only capabilities also in process.capabilities.permitted (the kernel keeps the effective set within the permitted one)",
        ));
    }
    let raisable = sets.permitted.intersect(sets.inheritable);
    let dropped = sets.ambient.without(raisable);
    if !dropped.is_empty() {
        warnings.push(format!(
            "{}: {} not raised: an ambient capability must also be permitted and inheritable (the process runs without it, as under runc)",
            field("ambient"),
            dropped.names()
        ));
    }
    Ok(Capabilities {
        ambient: sets.ambient.intersect(raisable),
        ..sets
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(json: &str, host: &Host) -> (Result<Capabilities, SpecError>, Vec<String>) {
        let caps: LinuxCapabilities = serde_json::from_str(json).unwrap();
        let mut warnings = Vec::new();
        (plan(Some(&caps), host, &mut warnings), warnings)
    }

    #[test]
    fn ambient_without_inheritable_is_dropped_with_a_warning() {
        // What Debian's `runc spec` writes.
        let json = r#"{"bounding":["CAP_KILL","CAP_AUDIT_WRITE"],"effective":["CAP_KILL"],
            "permitted":["CAP_KILL","CAP_AUDIT_WRITE"],"ambient":["CAP_KILL","CAP_AUDIT_WRITE"]}"#;
        let (caps, warnings) = planned(json, &Host::privileged());
        let caps = caps.unwrap();
        assert!(caps.ambient.is_empty());
        assert!(caps.permitted.contains(Capability::CAP_AUDIT_WRITE));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("process.capabilities.ambient"));
        assert!(
            warnings[0].contains("CAP_KILL, CAP_AUDIT_WRITE"),
            "{}",
            warnings[0]
        );
        let json =
            r#"{"permitted":["CAP_KILL"],"inheritable":["CAP_KILL"],"ambient":["CAP_KILL"]}"#;
        let (caps, warnings) = planned(json, &Host::privileged());
        assert!(caps.unwrap().ambient.contains(Capability::CAP_KILL));
        assert!(warnings.is_empty());
    }

    #[test]
    fn effective_beyond_permitted_is_refused() {
        let json = r#"{"effective":["CAP_KILL","CAP_CHOWN"],"permitted":["CAP_KILL"]}"#;
        let e = planned(json, &Host::privileged())
            .0
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("process.capabilities.effective") && e.contains("CAP_CHOWN"),
            "{e}"
        );
    }

    #[test]
    fn what_the_runtime_lacks_is_refused_and_what_the_kernel_lacks_is_skipped() {
        let mut host = Host::privileged();
        host.bounding = [Capability::CAP_KILL].into_iter().collect();
        let e = planned(r#"{"bounding":["CAP_SYS_ADMIN"]}"#, &host)
            .0
            .unwrap_err();
        assert!(
            e.to_string().contains("process.capabilities.bounding"),
            "{e}"
        );
        host.supported = host.bounding;
        let caps = planned(r#"{"bounding":["CAP_SYS_ADMIN","CAP_KILL"]}"#, &host)
            .0
            .unwrap();
        assert_eq!(caps.bounding, host.bounding);
    }

    #[test]
    fn sets_iterate_in_kernel_order() {
        let set: CapSet = [Capability::CAP_SYS_ADMIN, Capability::CAP_CHOWN]
            .into_iter()
            .collect();
        assert_eq!(set.bits(), (1 << 21) | 1);
        let order: Vec<_> = set.iter().collect();
        assert_eq!(order, [Capability::CAP_CHOWN, Capability::CAP_SYS_ADMIN]);
    }
}
