//! fstab-style mount options (`"ro"`, `"rbind"`, `"rnosuid"`, `"size=64k"` ...) parsed into
//! mount flags, recursive attributes, propagation changes and filesystem data.
use crate::SpecError;

/// A propagation change applied to a mount after it is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Propagation {
    /// One of `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE`.
    pub flag: u64,
    pub recursive: bool,
}

/// How a bind mount is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// `bind`: only the source mount itself.
    Single,
    /// `rbind`: the source mount and every mount below it.
    Recursive,
}

/// Parsed mount options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// `MS_*` flags to set on the mount itself.
    pub set: u64,
    /// `MS_*` flags explicitly turned off (`rw`, `suid`, `dev`, `exec` ...).
    pub clear: u64,
    /// `MS_*` flags from `r*` options, set on the whole tree with mount_setattr.
    pub recursive_set: u64,
    /// `MS_*` flags from `r*` options, cleared on the whole tree.
    pub recursive_clear: u64,
    pub propagation: Vec<Propagation>,
    pub bind: Option<Bind>,
    /// `idmap` / `ridmap`: the bind shows ids through the mount's (or the container's)
    /// id mappings, on the top mount or on every mount of the tree.
    pub idmap: Option<Bind>,
    /// `tmpcopyup` (runc's and crun's extension, which Podman uses): a new tmpfs starts
    /// with a copy of what the image has under its destination.
    pub copy_up: bool,
    /// Options the kernel's filesystem gets as data (`size=64k,mode=755`).
    pub data: Vec<String>,
}

const ATIME_FLAGS: u64 = (libc::MS_NOATIME | libc::MS_RELATIME | libc::MS_STRICTATIME) as u64;

/// Flags an option sets (`true`) or clears (`false`).
fn flag_option(name: &str) -> Option<(bool, u64)> {
    let f = |flag: libc::c_ulong| flag as u64;
    Some(match name {
        "ro" => (true, f(libc::MS_RDONLY)),
        "rw" => (false, f(libc::MS_RDONLY)),
        "nosuid" => (true, f(libc::MS_NOSUID)),
        "suid" => (false, f(libc::MS_NOSUID)),
        "nodev" => (true, f(libc::MS_NODEV)),
        "dev" => (false, f(libc::MS_NODEV)),
        "noexec" => (true, f(libc::MS_NOEXEC)),
        "exec" => (false, f(libc::MS_NOEXEC)),
        "sync" => (true, f(libc::MS_SYNCHRONOUS)),
        "async" => (false, f(libc::MS_SYNCHRONOUS)),
        "dirsync" => (true, f(libc::MS_DIRSYNC)),
        "remount" => (true, f(libc::MS_REMOUNT)),
        "mand" => (true, f(libc::MS_MANDLOCK)),
        "nomand" => (false, f(libc::MS_MANDLOCK)),
        "noatime" => (true, f(libc::MS_NOATIME)),
        "atime" => (false, f(libc::MS_NOATIME)),
        "nodiratime" => (true, f(libc::MS_NODIRATIME)),
        "diratime" => (false, f(libc::MS_NODIRATIME)),
        "relatime" => (true, f(libc::MS_RELATIME)),
        "norelatime" => (false, f(libc::MS_RELATIME)),
        "strictatime" => (true, f(libc::MS_STRICTATIME)),
        "nostrictatime" => (false, f(libc::MS_STRICTATIME)),
        "lazytime" => (true, f(libc::MS_LAZYTIME)),
        "nolazytime" => (false, f(libc::MS_LAZYTIME)),
        "silent" => (true, f(libc::MS_SILENT)),
        "loud" => (false, f(libc::MS_SILENT)),
        "nosymfollow" => (true, f(libc::MS_NOSYMFOLLOW)),
        "symfollow" => (false, f(libc::MS_NOSYMFOLLOW)),
        _ => return None,
    })
}

fn propagation_option(name: &str) -> Option<Propagation> {
    let (recursive, base) = match name.strip_prefix('r') {
        Some(rest @ ("shared" | "slave" | "private" | "unbindable")) => (true, rest),
        _ => (false, name),
    };
    let flag = match base {
        "shared" => libc::MS_SHARED,
        "slave" => libc::MS_SLAVE,
        "private" => libc::MS_PRIVATE,
        "unbindable" => libc::MS_UNBINDABLE,
        _ => return None,
    } as u64;
    Some(Propagation { flag, recursive })
}

/// Recursive attribute options (`rro`, `rnosuid` ...), as mount_setattr applies them.
fn recursive_option(name: &str) -> Option<(bool, u64)> {
    let base = name.strip_prefix('r')?;
    // "rw" and "relatime" are plain options, not recursive ones.
    if matches!(base, "w" | "elatime" | "emount" | "o") {
        return None;
    }
    let (set, flag) = flag_option(base)?;
    let allowed = (libc::MS_RDONLY
        | libc::MS_NOSUID
        | libc::MS_NODEV
        | libc::MS_NOEXEC
        | libc::MS_NODIRATIME
        | libc::MS_NOSYMFOLLOW) as u64
        | ATIME_FLAGS;
    (flag & allowed != 0).then_some((set, flag))
}

impl MountOptions {
    /// Parses `options`; `field` names them in errors (e.g. `mounts[3].options`).
    pub fn parse(options: &[String], field: &str) -> Result<Self, SpecError> {
        let mut parsed = MountOptions::default();
        for (index, option) in options.iter().enumerate() {
            parsed.add(option).map_err(|expected| {
                SpecError::invalid(format!("{field}[{index}]"), option, expected)
            })?;
        }
        Ok(parsed)
    }

    fn add(&mut self, option: &str) -> Result<(), &'static str> {
        match option {
            "" => return Err("a mount option, not an empty string"),
            "defaults" => return Ok(()),
            "bind" => self.bind = Some(Bind::Single),
            "rbind" => self.bind = Some(Bind::Recursive),
            "idmap" => self.idmap = Some(Bind::Single),
            "ridmap" => self.idmap = Some(Bind::Recursive),
            "tmpcopyup" => self.copy_up = true,
            _ => {
                if let Some((set, flag)) = flag_option(option) {
                    if set && flag & ATIME_FLAGS != 0 {
                        self.set &= !ATIME_FLAGS;
                    }
                    toggle(&mut self.set, &mut self.clear, set, flag);
                } else if let Some(p) = propagation_option(option) {
                    self.propagation.push(p);
                } else if let Some((set, flag)) = recursive_option(option) {
                    if set && flag & ATIME_FLAGS != 0 {
                        self.recursive_set &= !ATIME_FLAGS;
                    }
                    toggle(
                        &mut self.recursive_set,
                        &mut self.recursive_clear,
                        set,
                        flag,
                    );
                } else if option.contains('=')
                    || option
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.data.push(option.to_string());
                } else {
                    return Err(
                        "a mount flag, a propagation flag or a filesystem option key[=value]",
                    );
                }
            }
        }
        Ok(())
    }

    /// The filesystem data string (`size=64k,mode=755`), if any.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    pub fn read_only(&self) -> bool {
        self.set & libc::MS_RDONLY as u64 != 0
    }
}

fn toggle(set: &mut u64, clear: &mut u64, on: bool, flag: u64) {
    if on {
        *set |= flag;
        *clear &= !flag;
    } else {
        *set &= !flag;
        *clear |= flag;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> Result<MountOptions, SpecError> {
        let owned: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&owned, "mounts[0].options")
    }

    #[test]
    fn flags_data_and_propagation() {
        let o = parse(&[
            "rbind", "ro", "nosuid", "rslave", "size=64k", "mode=755", "noatime",
        ])
        .unwrap();
        assert_eq!(o.bind, Some(Bind::Recursive));
        assert!(o.read_only());
        assert_ne!(o.set & libc::MS_NOSUID as u64, 0);
        assert_eq!(
            o.propagation,
            vec![Propagation {
                flag: libc::MS_SLAVE as u64,
                recursive: true
            }]
        );
        assert_eq!(o.data_string().as_deref(), Some("size=64k,mode=755"));
    }

    #[test]
    fn later_options_win() {
        let o = parse(&["ro", "rw"]).unwrap();
        assert!(!o.read_only());
        assert_ne!(o.clear & libc::MS_RDONLY as u64, 0);
        let atime = parse(&["noatime", "strictatime"]).unwrap();
        assert_eq!(atime.set & ATIME_FLAGS, libc::MS_STRICTATIME as u64);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoexec"]).unwrap();
        assert_eq!(o.set, 0);
        assert_eq!(
            o.recursive_set,
            (libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC) as u64
        );
        // Plain options that happen to start with "r" stay plain.
        let plain = parse(&["rw", "relatime", "rprivate"]).unwrap();
        assert_eq!(plain.recursive_set, 0);
        assert_ne!(plain.set & libc::MS_RELATIME as u64, 0);
    }

    #[test]
    fn bad_option_names_field_and_value() {
        let err = parse(&["ro", "no suid"]).unwrap_err().to_string();
        assert!(err.contains("mounts[0].options[1]"), "{err}");
        assert!(err.contains("no suid"), "{err}");
        assert!(parse(&[""]).is_err());
        assert_eq!(parse(&["idmap"]).unwrap().idmap, Some(Bind::Single));
        assert_eq!(parse(&["ridmap"]).unwrap().idmap, Some(Bind::Recursive));
    }
}
