//! Entry names, checked before anything is made: relative, no `..`, within the length
//! limits. A name is never joined to a host path; it is resolved beneath the layer's
//! directory by the kernel.
use std::path::{Component, Path, PathBuf};

/// A checked entry name: plain components only. Empty for the layer's root (`./`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPath(PathBuf);

impl EntryPath {
    /// Checks `raw` (the name in the tar header). `max` is the longest name allowed.
    pub fn parse(raw: &Path, max: usize) -> Result<EntryPath, String> {
        if raw.as_os_str().len() > max {
            return Err(format!("its name is longer than {max} bytes (the limit)"));
        }
        if raw.is_absolute() {
            return Err("an absolute name: layer entries must be relative to the layer".into());
        }
        let mut clean = PathBuf::new();
        for component in raw.components() {
            match component {
                Component::CurDir => {}
                Component::Normal(part) => {
                    if part.len() > 255 {
                        return Err("a name component longer than 255 bytes".into());
                    }
                    clean.push(part);
                }
                Component::ParentDir => {
                    return Err("a `..` component: entries may not climb out of the layer".into())
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(
                        "an absolute name: layer entries must be relative to the layer".into(),
                    )
                }
            }
        }
        Ok(EntryPath(clean))
    }

    pub fn is_root(&self) -> bool {
        self.0.as_os_str().is_empty()
    }

    /// The directory the entry is made in (`.` for a top-level entry).
    pub fn parent(&self) -> &Path {
        match self.0.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    /// The entry's own name.
    pub fn name(&self) -> &std::ffi::OsStr {
        self.0.file_name().unwrap_or_default()
    }

    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl std::fmt::Display for EntryPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let p = EntryPath::parse(Path::new("./usr/bin/ls"), 4096).unwrap();
        assert_eq!(p.as_path(), Path::new("usr/bin/ls"));
        assert_eq!(p.parent(), Path::new("usr/bin"));
        assert_eq!(p.name(), "ls");
        assert_eq!(
            EntryPath::parse(Path::new("top"), 4096).unwrap().parent(),
            Path::new(".")
        );
        assert!(EntryPath::parse(Path::new("./"), 4096).unwrap().is_root());
        for bad in ["../etc/passwd", "a/../../b", "/etc/passwd"] {
            assert!(EntryPath::parse(Path::new(bad), 4096).is_err(), "{bad}");
        }
        assert!(EntryPath::parse(Path::new(&"a/".repeat(3000)), 4096).is_err());
        assert!(EntryPath::parse(Path::new(&"x".repeat(300)), 4096).is_err());
    }
}
