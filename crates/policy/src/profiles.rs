//! The policies `spec` writes, kept as data in the repository and compiled in at build
//! time: `policy/profiles/<name>.json` (capabilities, masked and read-only paths,
//! namespaces, limits) and the seccomp profile it names in `policy/seccomp/`. A policy
//! change is an edit to one of those files and a rebuild.
use crate::PolicyError;
use serde::Deserialize;
use serde_json::Value;

/// `spec`'s default profile.
pub const DEFAULT: &str = "hardened";

const PROFILES: &[(&str, &str)] = &[
    (
        "hardened",
        include_str!("../../../policy/profiles/hardened.json"),
    ),
    (
        "docker",
        include_str!("../../../policy/profiles/docker.json"),
    ),
];

const SECCOMP: &[(&str, &str)] = &[
    (
        "hardened",
        include_str!("../../../policy/seccomp/hardened.json"),
    ),
    (
        "docker",
        include_str!("../../../policy/seccomp/docker.json"),
    ),
];

/// One `policy/profiles/*.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Its file name, without `.json`.
    #[serde(skip)]
    pub name: &'static str,
    pub description: String,
    /// A file name in `policy/seccomp/`, without `.json`.
    pub seccomp: String,
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
    /// A user namespace whose root is not the host's root, with an idmapped rootfs.
    pub user_namespace: bool,
    pub cgroup_namespace: bool,
    pub pids_limit: Option<i64>,
    pub memory_limit: Option<MemoryLimit>,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
}

/// A memory limit sized to the host: a share of its memory, at most a ceiling (with no
/// swap beyond it), so one container cannot take the host's memory.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryLimit {
    #[serde(rename = "percentOfHost")]
    pub percent_of_host: u64,
    #[serde(rename = "atMostMiB")]
    pub at_most_mib: u64,
}

impl MemoryLimit {
    /// The limit in bytes for a host with `host_bytes` of memory (`None`: unknown),
    /// whole MiB.
    pub fn bytes(&self, host_bytes: Option<u64>) -> u64 {
        let ceiling = self.at_most_mib << 20;
        let share = host_bytes.map_or(ceiling, |total| {
            let share = u128::from(total) * u128::from(self.percent_of_host) / 100;
            u64::try_from(share).unwrap_or(u64::MAX)
        });
        (share.min(ceiling) >> 20) << 20
    }
}

/// Every profile with its description, for the error about an unknown one.
fn names() -> String {
    PROFILES
        .iter()
        .map(|(name, text)| {
            let description = serde_json::from_str::<Profile>(text)
                .map(|p| p.description)
                .unwrap_or_default();
            format!("{name} ({description})")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The profile called `name`.
pub fn profile(name: &str) -> Result<Profile, PolicyError> {
    let (_, text) =
        PROFILES
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| PolicyError::UnknownProfile {
                value: name.to_owned(),
                expected: format!("one of {}", names()),
            })?;
    let mut profile: Profile = serde_json::from_str(text).map_err(|e| PolicyError::Damaged {
        what: format!("policy/profiles/{name}.json"),
        reason: e.to_string(),
    })?;
    profile.name = PROFILES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(n, _)| n);
    Ok(profile)
}

/// The profile's `linux.seccomp`, with the architectures of this host.
pub fn seccomp(profile: &Profile) -> Result<Value, PolicyError> {
    let (_, text) = SECCOMP
        .iter()
        .find(|(n, _)| *n == profile.seccomp)
        .ok_or_else(|| PolicyError::Damaged {
            what: format!("seccomp {:?}", profile.seccomp),
            reason: "no such policy in policy/seccomp".into(),
        })?;
    let mut seccomp: Value = serde_json::from_str(text).map_err(|e| PolicyError::Damaged {
        what: format!("policy/seccomp/{}.json", profile.seccomp),
        reason: e.to_string(),
    })?;
    seccomp["architectures"] = host_architectures().into();
    Ok(seccomp)
}

/// The architectures a process on this host can run: the native one and those the
/// kernel runs alongside it (32-bit x86 on x86_64, 32-bit ARM on arm64).
fn host_architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "x86" => vec!["SCMP_ARCH_X86"],
        "arm" => vec!["SCMP_ARCH_ARM"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "powerpc64" => vec!["SCMP_ARCH_PPC64", "SCMP_ARCH_PPC"],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_loads_and_its_seccomp_compiles_here() {
        for (name, _) in PROFILES {
            let p = profile(name).unwrap();
            let seccomp: bulwark_spec::runtime::LinuxSeccomp =
                serde_json::from_value(seccomp(&p).unwrap()).unwrap();
            let filter = bulwark_seccomp::compile(&seccomp).unwrap();
            assert!(filter.program.len() > 100, "{name}");
        }
        let err = profile("nope").unwrap_err();
        assert!(
            err.to_string().contains("\"nope\"")
                && err.to_string().contains("hardened (")
                && err.to_string().contains("docker ("),
            "{err}"
        );
    }

    #[test]
    fn hardened_is_stricter_than_docker() {
        let (hardened, docker) = (profile("hardened").unwrap(), profile("docker").unwrap());
        let subset = |a: &[String], b: &[String]| a.iter().all(|x| b.contains(x));
        assert!(subset(&hardened.capabilities, &docker.capabilities));
        for gone in ["CAP_NET_RAW", "CAP_MKNOD", "CAP_AUDIT_WRITE"] {
            assert!(!hardened.capabilities.iter().any(|c| c == gone), "{gone}");
        }
        assert!(subset(&docker.masked_paths, &hardened.masked_paths));
        assert!(subset(&docker.readonly_paths, &hardened.readonly_paths));
        assert!(hardened.no_new_privileges && hardened.user_namespace);
        assert!(hardened.pids_limit.is_some());
        let memory = hardened.memory_limit.as_ref().unwrap();
        assert_eq!(
            memory.bytes(Some(24 << 30)),
            2 << 30,
            "the ceiling on a big host"
        );
        assert_eq!(
            memory.bytes(Some(2 << 30)),
            512 << 20,
            "a share of a small one"
        );
        assert_eq!(memory.bytes(None), 2 << 30);
        let allowed = |p: &Profile| -> Vec<String> {
            let s = seccomp(p).unwrap();
            s["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
                .flat_map(|r| r["names"].as_array().unwrap().clone())
                .map(|n| n.as_str().unwrap().to_string())
                .collect()
        };
        let (h, d) = (allowed(&hardened), allowed(&docker));
        assert!(subset(&h, &d), "hardened allows nothing docker does not");
        for gone in [
            "modify_ldt",
            "ptrace",
            "keyctl",
            "bpf",
            "userfaultfd",
            "io_uring_setup",
        ] {
            assert!(!h.iter().any(|n| n == gone), "{gone}");
        }
    }
}
