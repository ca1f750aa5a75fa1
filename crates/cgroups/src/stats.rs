//! Resource usage of a container's cgroup: memory, pids and cpu time, read from the v1
//! or v2 files. A value the host does not provide (controller absent or not enabled,
//! older kernel) is `None` rather than an error; the parsing is pure.
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::error::{CgroupError, Result};
use crate::files::read_optional;

/// A limit: a number, or none at all ("max"). Serialised as the number or `"max"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// No limit.
    Unlimited,
    /// At most this many bytes or processes.
    Value(u64),
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Limit::Unlimited => serializer.serialize_str("max"),
            Limit::Value(n) => serializer.serialize_u64(*n),
        }
    }
}

/// Usage of a container's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub cpu: CpuStats,
}

/// Memory usage in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    pub usage: Option<u64>,
    pub limit: Option<Limit>,
    /// The highest usage seen (v1 `memory.max_usage_in_bytes`, v2 `memory.peak`).
    pub max_usage: Option<u64>,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill: Option<u64>,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    pub current: Option<u64>,
    pub limit: Option<Limit>,
}

/// CPU time consumed, in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    pub usage_total_ns: Option<u64>,
    pub usage_user_ns: Option<u64>,
    pub usage_system_ns: Option<u64>,
}

/// v1 reports "no limit" as the largest page-aligned counter (e.g. 9223372036854771712);
/// anything this large is no limit in practice.
const V1_UNLIMITED_FROM: u64 = 1 << 62;

/// A file holding one number.
pub(crate) fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A v2 limit file: a number or "max".
pub(crate) fn max_or_number(text: &str) -> Option<Limit> {
    match text.trim() {
        "max" => Some(Limit::Unlimited),
        other => other.parse().ok().map(Limit::Value),
    }
}

/// A v1 byte limit, where "no limit" is a huge number.
pub(crate) fn v1_bytes_limit(text: &str) -> Option<Limit> {
    number(text).map(|n| {
        if n >= V1_UNLIMITED_FROM {
            Limit::Unlimited
        } else {
            Limit::Value(n)
        }
    })
}

/// The value of `key` in a flat keyed file ("key value" lines: cpu.stat, memory.events,
/// memory.oom_control, cgroup.events).
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(char::is_whitespace)?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

fn read(dir: &Path, file: &str) -> Result<Option<String>> {
    read_optional(&dir.join(file))
}

/// Parses a file that exists but does not hold what the kernel documents.
fn parsed<T>(dir: &Path, file: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>> {
    let Some(text) = read(dir, file)? else {
        return Ok(None);
    };
    parse(&text)
        .map(Some)
        .ok_or_else(|| CgroupError::Malformed {
            path: dir.join(file),
            content: text.trim().to_string(),
            expected: "a number or \"max\"".to_string(),
        })
}

/// Usage from v1 hierarchies; `None` for a controller that is not mounted.
pub(crate) fn read_v1(
    memory: Option<&Path>,
    pids: Option<&Path>,
    cpuacct: Option<&Path>,
) -> Result<Stats> {
    let mut stats = Stats::default();
    if let Some(dir) = memory {
        stats.memory = MemoryStats {
            usage: parsed(dir, "memory.usage_in_bytes", number)?,
            limit: parsed(dir, "memory.limit_in_bytes", v1_bytes_limit)?,
            max_usage: parsed(dir, "memory.max_usage_in_bytes", number)?,
            oom_kill: read(dir, "memory.oom_control")?.and_then(|t| keyed_value(&t, "oom_kill")),
        };
    }
    if let Some(dir) = pids {
        stats.pids = PidsStats {
            current: parsed(dir, "pids.current", number)?,
            limit: parsed(dir, "pids.max", max_or_number)?,
        };
    }
    if let Some(dir) = cpuacct {
        stats.cpu = CpuStats {
            usage_total_ns: parsed(dir, "cpuacct.usage", number)?,
            usage_user_ns: parsed(dir, "cpuacct.usage_user", number)?,
            usage_system_ns: parsed(dir, "cpuacct.usage_sys", number)?,
        };
    }
    Ok(stats)
}

/// Usage from a v2 cgroup; files of controllers not enabled for it are absent.
pub(crate) fn read_v2(dir: &Path) -> Result<Stats> {
    let events = read(dir, "memory.events")?;
    let cpu = read(dir, "cpu.stat")?;
    let micros = |key: &str| {
        cpu.as_deref()
            .and_then(|t| keyed_value(t, key))
            .map(|us| us.saturating_mul(1000))
    };
    Ok(Stats {
        memory: MemoryStats {
            usage: parsed(dir, "memory.current", number)?,
            limit: parsed(dir, "memory.max", max_or_number)?,
            max_usage: parsed(dir, "memory.peak", number)?,
            oom_kill: events.as_deref().and_then(|t| keyed_value(t, "oom_kill")),
        },
        pids: PidsStats {
            current: parsed(dir, "pids.current", number)?,
            limit: parsed(dir, "pids.max", max_or_number)?,
        },
        cpu: CpuStats {
            usage_total_ns: micros("usage_usec"),
            usage_user_ns: micros("user_usec"),
            usage_system_ns: micros("system_usec"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(number("42\n"), Some(42));
        assert_eq!(max_or_number("max\n"), Some(Limit::Unlimited));
        assert_eq!(max_or_number("100\n"), Some(Limit::Value(100)));
        assert_eq!(
            v1_bytes_limit("9223372036854771712\n"),
            Some(Limit::Unlimited)
        );
        assert_eq!(v1_bytes_limit("67108864\n"), Some(Limit::Value(67_108_864)));
        let stat = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(keyed_value(stat, "user_usec"), Some(1000));
        assert_eq!(keyed_value(stat, "user"), None);
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(oom, "oom_kill"), Some(3));
    }

    #[test]
    fn serialises_limits_as_number_or_max() {
        let stats = Stats {
            pids: PidsStats {
                current: Some(1),
                limit: Some(Limit::Unlimited),
            },
            memory: MemoryStats {
                limit: Some(Limit::Value(10)),
                ..MemoryStats::default()
            },
            ..Stats::default()
        };
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(json["pids"]["limit"], "max");
        assert_eq!(json["memory"]["limit"], 10);
        assert_eq!(json["cpu"]["usage_total_ns"], serde_json::Value::Null);
    }

    #[test]
    fn reads_v2_files_from_a_directory() {
        let dir = std::env::temp_dir().join(format!("bulwark-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (file, text) in [
            ("memory.current", "4096\n"),
            ("memory.max", "max\n"),
            ("memory.events", "low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n"),
            ("pids.current", "3\n"),
            ("pids.max", "10\n"),
            ("cpu.stat", "usage_usec 7\nuser_usec 5\nsystem_usec 2\n"),
        ] {
            std::fs::write(dir.join(file), text).unwrap();
        }
        let stats = read_v2(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        let stats = stats.unwrap();
        assert_eq!(stats.memory.usage, Some(4096));
        assert_eq!(stats.memory.limit, Some(Limit::Unlimited));
        assert_eq!(stats.memory.max_usage, None);
        assert_eq!(stats.memory.oom_kill, Some(1));
        assert_eq!(stats.pids.limit, Some(Limit::Value(10)));
        assert_eq!(stats.cpu.usage_total_ns, Some(7000));
        assert_eq!(stats.cpu.usage_system_ns, Some(2000));
    }
}
