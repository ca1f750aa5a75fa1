//! The freezer: its files, the values that freeze and thaw, and reading back the state
//! (v1 `freezer.state`; v2 `cgroup.freeze` and the `frozen` key of `cgroup.events`).
//! Freezing is not part of `linux.resources`; the managers use this for pause/resume.
use super::Version;

/// v1's state file.
pub(crate) const V1_STATE: &str = "freezer.state";
/// v2's freeze switch.
pub(crate) const V2_FREEZE: &str = "cgroup.freeze";
/// v2's events file, whose `frozen` key says whether freezing is complete.
pub(crate) const V2_EVENTS: &str = "cgroup.events";

/// The file written to freeze or thaw.
pub(crate) fn control_file(version: Version) -> &'static str {
    match version {
        Version::V1 => V1_STATE,
        Version::V2 => V2_FREEZE,
    }
}

/// The value written to freeze (`true`) or thaw.
pub(crate) fn control_value(version: Version, frozen: bool) -> &'static str {
    match (version, frozen) {
        (Version::V1, true) => "FROZEN",
        (Version::V1, false) => "THAWED",
        (Version::V2, true) => "1",
        (Version::V2, false) => "0",
    }
}

/// The file read back to learn the state.
pub(crate) fn state_file(version: Version) -> &'static str {
    match version {
        Version::V1 => V1_STATE,
        Version::V2 => V2_EVENTS,
    }
}

/// Whether the state file's text says the cgroup is completely frozen. v1's transient
/// "FREEZING" is not frozen yet.
pub(crate) fn is_frozen(version: Version, text: &str) -> bool {
    match version {
        Version::V1 => text.trim() == "FROZEN",
        Version::V2 => crate::stats::keyed_value(text, "frozen") == Some(1),
    }
}

/// Whether the state file's text shows the wanted state reached.
pub(crate) fn reached(version: Version, text: &str, frozen: bool) -> bool {
    match version {
        Version::V1 if !frozen => text.trim() == "THAWED",
        _ => is_frozen(version, text) == frozen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_states() {
        assert_eq!(control_file(Version::V1), "freezer.state");
        assert_eq!(control_value(Version::V1, true), "FROZEN");
        assert!(is_frozen(Version::V1, "FROZEN\n"));
        assert!(!is_frozen(Version::V1, "FREEZING\n"));
        assert!(!reached(Version::V1, "FREEZING\n", false));
        assert!(reached(Version::V1, "THAWED\n", false));
    }

    #[test]
    fn v2_states() {
        assert_eq!(control_file(Version::V2), "cgroup.freeze");
        assert_eq!(control_value(Version::V2, false), "0");
        assert!(is_frozen(Version::V2, "populated 1\nfrozen 1\n"));
        assert!(!is_frozen(Version::V2, "populated 1\nfrozen 0\n"));
        assert!(reached(Version::V2, "populated 0\nfrozen 0\n", false));
    }
}
