//! `pause`, `resume`, `update` and `events`: commands on a container's cgroups.
use std::io::Read;
use std::time::Duration;

use bulwark_runtime::{self as runtime, StateRoot, Stats};
use bulwark_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::args::{EventsArgs, UpdateArgs};
use crate::error::CliError;
use crate::CmdResult;

pub fn pause(root: &StateRoot, id: &str) -> CmdResult {
    runtime::pause(root, id)?;
    Ok(0)
}

pub fn resume(root: &StateRoot, id: &str) -> CmdResult {
    runtime::resume(root, id)?;
    Ok(0)
}

/// A size such as `512`, `64k`, `100m`, `1g` in bytes; `-1` means no limit.
fn parse_size(flag: &'static str, text: &str) -> Result<i64, CliError> {
    let bad = || CliError::Flag {
        flag,
        value: text.to_owned(),
        expected: "bytes, optionally with k, m or g, or -1".into(),
    };
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (digits, unit) = match trimmed.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&trimmed[..i], c),
        _ => (trimmed, ' '),
    };
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let factor = match unit {
        ' ' => 1,
        'k' => 1 << 10,
        'm' => 1 << 20,
        'g' => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// The resources to apply: `--resources FILE|-` as the base, flags on top.
fn resources(a: &UpdateArgs) -> Result<LinuxResources, CliError> {
    let mut value = match &a.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|source| CliError::Read {
                        flag: "--resources",
                        path: path.clone(),
                        source,
                    })?;
            } else {
                text = std::fs::read_to_string(path).map_err(|source| CliError::Read {
                    flag: "--resources",
                    path: path.clone(),
                    source,
                })?;
            }
            serde_json::from_str::<Value>(&text).map_err(|source| CliError::Json {
                flag: "--resources",
                path: path.clone(),
                source,
            })?
        }
        None => json!({}),
    };
    let section = |value: &mut Value, name: &str| -> Map<String, Value> {
        value
            .get(name)
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    };
    let mut memory = section(&mut value, "memory");
    for (flag, key, text) in [
        ("--memory", "limit", &a.memory),
        ("--memory-reservation", "reservation", &a.memory_reservation),
        ("--memory-swap", "swap", &a.memory_swap),
    ] {
        if let Some(text) = text {
            memory.insert(key.into(), json!(parse_size(flag, text)?));
        }
    }
    let mut cpu = section(&mut value, "cpu");
    if let Some(v) = a.cpu_share {
        cpu.insert("shares".into(), json!(v));
    }
    if let Some(v) = a.cpu_quota {
        cpu.insert("quota".into(), json!(v));
    }
    if let Some(v) = a.cpu_period {
        cpu.insert("period".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_cpus {
        cpu.insert("cpus".into(), json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        cpu.insert("mems".into(), json!(v));
    }
    for (name, section) in [("memory", memory), ("cpu", cpu)] {
        if !section.is_empty() {
            value[name] = Value::Object(section);
        }
    }
    if let Some(limit) = a.pids_limit {
        value["pids"] = json!({"limit": limit});
    }
    if let Some(weight) = a.blkio_weight {
        value["blockIO"] = json!({"weight": weight});
    }
    serde_json::from_value(value).map_err(|source| CliError::Json {
        flag: "--resources",
        path: a.resources.clone().unwrap_or_default(),
        source,
    })
}

pub fn update(root: &StateRoot, a: &UpdateArgs) -> CmdResult {
    let resources = resources(a)?;
    runtime::update(root, &a.id, &resources)?;
    Ok(0)
}

/// Statistics in the shape of runc's `events --stats`, which engines read.
fn stats_event(id: &str, stats: &Stats) -> Value {
    let limit = |l: &Option<bulwark_runtime::Limit>| match l {
        Some(bulwark_runtime::Limit::Value(n)) => json!(n),
        _ => json!(u64::MAX),
    };
    json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {
                "total": stats.cpu.usage_total_ns.unwrap_or(0),
                "kernel": stats.cpu.usage_system_ns.unwrap_or(0),
                "user": stats.cpu.usage_user_ns.unwrap_or(0),
            }},
            "memory": {"usage": {
                "usage": stats.memory.usage.unwrap_or(0),
                "max": stats.memory.max_usage.unwrap_or(0),
                "limit": limit(&stats.memory.limit),
            }},
            "pids": {"current": stats.pids.current.unwrap_or(0), "limit": limit(&stats.pids.limit)},
        }
    })
}

pub fn events(root: &StateRoot, a: &EventsArgs) -> CmdResult {
    let stats = runtime::stats(root, &a.id)?;
    if a.stats {
        println!("{}", stats_event(&a.id, &stats));
        return Ok(0);
    }
    let interval = humantime::parse_duration(&a.interval).map_err(|e| CliError::Flag {
        flag: "--interval",
        value: a.interval.clone(),
        expected: format!("a duration such as 5s ({e})"),
    })?;
    let mut ooms = stats.memory.oom_kill.unwrap_or(0);
    loop {
        // Read the status first: the statistics that follow are then at least as new, so
        // an OOM kill that stopped the container is still reported before the end.
        let stopped =
            runtime::state_of(root, &a.id).map_or(true, |s| s.status == runtime::Status::Stopped);
        let Ok(stats) = runtime::stats(root, &a.id) else {
            return Ok(0);
        };
        let now = stats.memory.oom_kill.unwrap_or(0);
        if now > ooms {
            println!("{}", json!({"type": "oom", "id": a.id}));
            ooms = now;
        }
        println!("{}", stats_event(&a.id, &stats));
        if stopped {
            return Ok(0);
        }
        std::thread::sleep(interval.max(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--memory", "512").unwrap(), 512);
        assert_eq!(parse_size("--memory", "64k").unwrap(), 65536);
        assert_eq!(parse_size("--memory", "100M").unwrap(), 100 << 20);
        assert_eq!(parse_size("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("--memory", "-1").unwrap(), -1);
        assert!(parse_size("--memory", "lots")
            .unwrap_err()
            .to_string()
            .contains("--memory"));
    }
}
