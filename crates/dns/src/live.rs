//! The records file as it is now: re-read when its inode, size or mtime change, so the
//! engine can rename a new version into place while the resolver keeps serving.
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::RecordsError;
use crate::records::Records;

/// What identifies one version of the file, compared on every query (one `stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    stamp: Stamp,
    records: Arc<Records>,
}

/// The records file at `path` and the last version that parsed.
#[derive(Debug)]
pub struct LiveRecords {
    path: PathBuf,
    state: Mutex<Loaded>,
}

impl LiveRecords {
    /// Reads the file for the first time; any error is fatal to the caller.
    pub fn open(path: &Path) -> Result<Self, RecordsError> {
        let (stamp, records) = read(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(Loaded {
                stamp,
                records: Arc::new(records),
            }),
        })
    }

    /// The records to answer from, re-read first if the file changed. A new version
    /// that fails to parse is reported once and the previous records stay in use.
    pub fn current(&self) -> Arc<Records> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Ok(meta) = fs::metadata(&self.path) {
            if Stamp::of(&meta) != state.stamp {
                match read(&self.path) {
                    Ok((stamp, records)) => {
                        *state = Loaded {
                            stamp,
                            records: Arc::new(records),
                        }
                    }
                    Err(err) => {
                        eprintln!("bulwark-dns: keeping the previous records: {err}");
                        state.stamp = Stamp::of(&meta);
                    }
                }
            }
        }
        Arc::clone(&state.records)
    }
}

/// False once the records file is gone: the engine removed the network. Other errors
/// (e.g. EACCES) do not count as removal.
pub fn still_exists(path: &Path) -> bool {
    match fs::symlink_metadata(path) {
        Ok(_) => true,
        Err(err) => err.kind() != io::ErrorKind::NotFound,
    }
}

/// Reads one version: the stamp comes from the open file, so it matches the text.
fn read(path: &Path) -> Result<(Stamp, Records), RecordsError> {
    let failed = |source| RecordsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(failed)?;
    let stamp = Stamp::of(&file.metadata().map_err(failed)?);
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(failed)?;
    Ok((stamp, Records::parse(path, &text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("bulwark-dns-live-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write_atomically(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    const V1: &str =
        r#"{"listen": "10.89.0.1", "records": [{"names": ["web"], "ip": "10.89.0.2"}]}"#;
    const V2: &str =
        r#"{"listen": "10.89.0.1", "records": [{"names": ["db"], "ip": "10.89.0.3"}]}"#;

    #[test]
    fn follows_renames_keeps_the_last_good_version_and_sees_removal() {
        let dir = scratch("follow");
        let path = dir.join("dns.json");
        write_atomically(&path, V1);
        let live = LiveRecords::open(&path).unwrap();
        assert!(live.current().addresses("web").is_some());

        write_atomically(&path, V2);
        let now = live.current();
        assert!(now.addresses("web").is_none());
        assert!(now.addresses("db").is_some());

        write_atomically(&path, "{ broken");
        assert!(live.current().addresses("db").is_some());

        assert!(still_exists(&path));
        fs::remove_file(&path).unwrap();
        assert!(!still_exists(&path));
        assert!(live.current().addresses("db").is_some());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let dir = scratch("missing");
        let path = dir.join("absent.json");
        let err = LiveRecords::open(&path).unwrap_err().to_string();
        assert!(err.contains("absent.json"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
