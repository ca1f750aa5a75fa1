//! Reading and writing cgroupfs: files, directory trees, process lists, and writing a
//! planned [`Setting`] with errors that say which configuration field failed and why.
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::controllers::Setting;
use crate::error::{CgroupError, Result};

/// How long `destroy` waits for exiting processes to leave a cgroup.
const REMOVE_PATIENCE: Duration = Duration::from_secs(2);

/// The content of a file.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// The content of a file, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

/// One write(2) of `value` to an existing cgroup file, as the kernel expects.
pub(crate) fn write_raw(path: &Path, value: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).open(path)?;
    file.write_all(value.as_bytes())
}

/// Writes `value` to `path`; `action` says what for in the error.
pub(crate) fn write(path: &Path, value: &str, action: &str) -> Result<()> {
    write_raw(path, value)
        .map_err(|e| CgroupError::io(format!("{action}: write {value:?} to"), path, e))
}

/// Writes one planned setting into the cgroup directory `dir`.
pub(crate) fn apply_setting(dir: &Path, setting: &Setting) -> Result<()> {
    let primary = dir.join(setting.file());
    let (path, value) = if primary.exists() {
        (primary, setting.value())
    } else if let Some((file, value)) = setting.fallback().filter(|(f, _)| dir.join(f).exists()) {
        (dir.join(file), value)
    } else if setting.is_optional() {
        return Ok(());
    } else {
        let also = setting
            .fallback()
            .map(|(f, _)| format!(" (nor {f})"))
            .unwrap_or_default();
        return Err(apply_error(
            setting,
            primary,
            format!(
                "the file does not exist{also}: this kernel or its {} controller does not \
                 provide it",
                setting.controller()
            ),
        ));
    };
    if let Some(usage_file) = setting.not_below_file() {
        check_not_below(dir, usage_file, setting)?;
    }
    write_raw(&path, value).map_err(|e| apply_error(setting, path.clone(), explain(&e)))
}

/// `memory.checkBeforeUpdate`: refuse a limit below what the cgroup already uses.
fn check_not_below(dir: &Path, usage_file: &str, setting: &Setting) -> Result<()> {
    let usage_path = dir.join(usage_file);
    let usage = read(&usage_path)?;
    let (Ok(limit), Ok(usage)) = (setting.value().parse::<u64>(), usage.trim().parse::<u64>())
    else {
        return Ok(()); // "max" or -1: never below usage
    };
    if limit < usage {
        return Err(apply_error(
            setting,
            usage_path,
            format!("the cgroup already uses {usage} bytes and checkBeforeUpdate is set"),
        ));
    }
    Ok(())
}

fn apply_error(setting: &Setting, path: PathBuf, reason: String) -> CgroupError {
    CgroupError::Apply {
        field: setting.field().to_string(),
        value: format!("{:?}", setting.value()),
        path,
        reason,
    }
}

/// Why the kernel refused a write, in words.
pub(crate) fn explain(e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(libc::EINVAL) => "the kernel rejected the value as out of range or malformed",
        Some(libc::ENOENT) => "the file does not exist",
        Some(libc::EBUSY) => "the kernel refused while the cgroup is in use",
        Some(libc::EPERM) | Some(libc::EACCES) => "permission denied",
        Some(libc::EOPNOTSUPP) => "this kernel no longer supports the setting",
        Some(libc::ENOSPC) => "the value exceeds what the parent cgroup allows",
        _ => return e.to_string(),
    };
    format!("{why} ({e})")
}

/// Creates `dir` and any missing parents below `mount_point`, calling `created` with each
/// (parent, directory) pair from the top down, new or not.
pub(crate) fn create_below(
    mount_point: &Path,
    dir: &Path,
    mut visit: impl FnMut(&Path, &Path) -> Result<()>,
) -> Result<()> {
    let rest = dir
        .strip_prefix(mount_point)
        .map_err(|_| CgroupError::Layout {
            path: dir.to_path_buf(),
            reason: format!(
                "not below the hierarchy mounted at {}",
                mount_point.display()
            ),
        })?;
    let mut current = mount_point.to_path_buf();
    for component in rest.components() {
        let parent = current.clone();
        current.push(component);
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(CgroupError::io("create cgroup", &current, e)),
        }
        visit(&parent, &current)?;
    }
    Ok(())
}

/// Removes the cgroup `dir` and any cgroups below it, deepest first. Waits briefly while
/// the kernel still counts exiting processes (EBUSY); a missing directory is fine.
pub(crate) fn remove_tree(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CgroupError::io("list cgroup", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list cgroup", dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < REMOVE_PATIENCE =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => {
                let action = if e.raw_os_error() == Some(libc::EBUSY) {
                    "remove cgroup (it still has processes)"
                } else {
                    "remove cgroup"
                };
                return Err(CgroupError::io(action, dir, e));
            }
        }
    }
}

/// The processes in `dir` and every cgroup below it.
pub(crate) fn procs_recursive(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let text = read(&procs)?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let pid = line.trim().parse().map_err(|_| CgroupError::Malformed {
            path: procs.clone(),
            content: line.to_string(),
            expected: "one process id per line".to_string(),
        })?;
        out.push(pid);
    }
    let entries = std::fs::read_dir(dir).map_err(|e| CgroupError::io("list cgroup", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| CgroupError::io("list cgroup", dir, e))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            procs_recursive(&entry.path(), out)?;
        }
    }
    Ok(())
}

/// Writes `pid` to `dir/cgroup.procs`.
pub(crate) fn add_pid(dir: &Path, pid: i32) -> Result<()> {
    if pid <= 0 {
        return Err(CgroupError::io(
            format!("add process {pid} to"),
            dir.join("cgroup.procs"),
            std::io::Error::from_raw_os_error(libc::ESRCH),
        ));
    }
    write(
        &dir.join("cgroup.procs"),
        &pid.to_string(),
        &format!("add process {pid}"),
    )
}

/// Fails with [`CgroupError::Io`] when the cgroup directory is missing.
pub(crate) fn require_dir(dir: &Path, action: &str) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CgroupError::io(
            action,
            dir,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        )),
        Err(e) => Err(CgroupError::io(
            format!("{action} (was create called?)"),
            dir,
            e,
        )),
    }
}

/// Polls `done` until it returns true or `patience` passes, re-running `nudge` now and
/// then (the v1 freezer needs its state written again to make progress).
pub(crate) fn wait_until(
    path: &Path,
    what: &str,
    patience: Duration,
    mut done: impl FnMut() -> Result<bool>,
    mut nudge: impl FnMut() -> Result<()>,
) -> Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    let mut tries = 0u32;
    loop {
        if done()? {
            return Ok(());
        }
        if start.elapsed() >= patience {
            return Err(CgroupError::Timeout {
                path: path.to_path_buf(),
                what: what.to_string(),
                waited: patience,
            });
        }
        tries += 1;
        if tries == 16 {
            tries = 0;
            nudge()?;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::{plan, Version};

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("bulwark-files-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setting(json: &str, version: Version) -> Vec<Setting> {
        plan(version, &serde_json::from_str(json).unwrap()).unwrap()
    }

    #[test]
    fn missing_file_names_field_value_and_reason() {
        let dir = TempDir::new("missing");
        let s = setting(r#"{"pids":{"limit":7}}"#, Version::V2);
        let e = apply_setting(&dir.0, &s[0]).unwrap_err().to_string();
        assert!(e.contains("linux.resources.pids.limit \"7\""), "{e}");
        assert!(e.contains("pids.max"), "{e}");
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn fallback_and_optional_files() {
        let dir = TempDir::new("fallback");
        std::fs::write(dir.0.join("io.weight"), "").unwrap();
        let s = setting(r#"{"blockIO":{"weight":1000}}"#, Version::V2);
        apply_setting(&dir.0, &s[0]).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.0.join("io.weight")).unwrap(),
            "10000"
        );

        std::fs::write(dir.0.join("hugetlb.2MB.max"), "").unwrap();
        let s = setting(
            r#"{"hugepageLimits":[{"pageSize":"2MB","limit":2097152}]}"#,
            Version::V2,
        );
        for one in &s {
            apply_setting(&dir.0, one).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(dir.0.join("hugetlb.2MB.max")).unwrap(),
            "2097152"
        );
    }

    #[test]
    fn check_before_update_refuses_a_limit_below_usage() {
        let dir = TempDir::new("usage");
        std::fs::write(dir.0.join("memory.max"), "").unwrap();
        std::fs::write(dir.0.join("memory.current"), "5000\n").unwrap();
        let s = setting(
            r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#,
            Version::V2,
        );
        let e = apply_setting(&dir.0, &s[0]).unwrap_err().to_string();
        assert!(e.contains("already uses 5000"), "{e}");
        let s = setting(
            r#"{"memory":{"limit":8192,"checkBeforeUpdate":true}}"#,
            Version::V2,
        );
        apply_setting(&dir.0, &s[0]).unwrap();
    }

    #[test]
    fn create_below_visits_each_level_and_remove_tree_is_idempotent() {
        let dir = TempDir::new("tree");
        let leaf = dir.0.join("a/b/c");
        let mut seen = Vec::new();
        create_below(&dir.0, &leaf, |parent, child| {
            seen.push((parent.to_path_buf(), child.to_path_buf()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], (dir.0.clone(), dir.0.join("a")));
        assert!(leaf.is_dir());
        remove_tree(&dir.0.join("a")).unwrap();
        assert!(!dir.0.join("a").exists());
        remove_tree(&dir.0.join("a")).unwrap();
        assert!(create_below(&dir.0.join("x"), &leaf, |_, _| Ok(())).is_err());
    }
}
