//! Container root filesystems: an overlayfs of an image's layers with an upper and a work
//! directory of its own, made and removed by the engine (and `bulwark image mount`).
//! Where the kernel's overlayfs cannot be mounted, fuse-overlayfs is used instead.
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use bulwark_image::Digest;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};

use crate::fsutil::{make_private_dir, read_json, write_json};
use crate::layers::remove_dir;
use crate::{ImageRecord, Store, StoreError};

/// `mounts/<name>/mount.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountRecord {
    pub format: u32,
    pub name: String,
    pub image: Digest,
    pub chain_ids: Vec<Digest>,
    pub created: String,
    /// Mounted with fuse-overlayfs rather than the kernel's overlayfs.
    pub fuse: bool,
}

/// A mounted root filesystem.
#[derive(Debug, Clone)]
pub struct Mounted {
    pub record: MountRecord,
    /// Where the root filesystem is.
    pub merged: PathBuf,
}

/// How the overlay is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    /// The kernel's, falling back to fuse-overlayfs when it cannot be mounted.
    Auto,
    /// fuse-overlayfs only (tests, hosts without a usable overlayfs).
    Fuse,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Store {
    fn mount_home(&self, name: &str) -> PathBuf {
        self.root.join("mounts").join(name)
    }

    pub fn mount_record(&self, name: &str) -> Result<Option<MountRecord>, StoreError> {
        if !valid_name(name) {
            return Ok(None);
        }
        read_json(&self.mount_home(name).join("mount.json"))
    }

    /// Every root filesystem made.
    pub fn mounts(&self) -> Result<Vec<MountRecord>, StoreError> {
        let dir = self.root.join("mounts");
        let entries = std::fs::read_dir(&dir).map_err(StoreError::io("cannot read", &dir))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            if let Some(record) = self.mount_record(&entry.file_name().to_string_lossy())? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Makes and mounts the root filesystem `name` of `image` (the caller holds the
    /// store lock). What a failure made is removed again.
    pub fn mount(
        &self,
        name: &str,
        image: &ImageRecord,
        overlay: Overlay,
    ) -> Result<Mounted, StoreError> {
        let fail = |reason: String| StoreError::Mount {
            name: name.to_owned(),
            reason,
        };
        if !valid_name(name) {
            return Err(fail("a name is 1-128 letters, digits, _ . or -".into()));
        }
        let home = self.mount_home(name);
        if home.exists() {
            return Err(fail("it exists already".into()));
        }
        let result = self.make_mount(name, image, overlay, &home);
        if result.is_err() {
            let _ = nix::mount::umount2(&home.join("merged"), MntFlags::MNT_DETACH);
            let _ = remove_dir(&home);
        }
        result
    }

    fn make_mount(
        &self,
        name: &str,
        image: &ImageRecord,
        overlay: Overlay,
        home: &Path,
    ) -> Result<Mounted, StoreError> {
        let fail = |reason: String| StoreError::Mount {
            name: name.to_owned(),
            reason,
        };
        make_private_dir(home)?;
        for dir in ["upper", "work", "merged", "empty"] {
            std::fs::create_dir(home.join(dir))
                .map_err(StoreError::io("cannot make", home.join(dir)))?;
        }
        // The root of a container is world-readable, as on any system.
        std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o711))
            .map_err(StoreError::io("cannot set the mode of", home))?;
        let mut shorts = Vec::new();
        for chain_id in image.chain_ids.iter().rev() {
            let record = self.layer(chain_id)?.ok_or_else(|| {
                fail(format!("layer {chain_id} of image {} is missing", image.id))
            })?;
            shorts.push(self.layer_short(&record));
        }
        let merged = home.join("merged");
        let fuse = match overlay {
            Overlay::Fuse => {
                self.mount_fuse(&shorts, home).map_err(fail)?;
                true
            }
            Overlay::Auto => match self.mount_kernel(&shorts, home) {
                Ok(()) => false,
                Err(kernel) => {
                    self.mount_fuse(&shorts, home).map_err(|fuse| {
                        fail(format!("overlayfs: {kernel}; fuse-overlayfs: {fuse}"))
                    })?;
                    true
                }
            },
        };
        let record = MountRecord {
            format: 1,
            name: name.to_owned(),
            image: image.id.clone(),
            chain_ids: image.chain_ids.clone(),
            created: crate::images::now(),
            fuse,
        };
        write_json(&home.join("mount.json"), &record)?;
        Ok(Mounted { record, merged })
    }

    /// The kernel's overlayfs; lower layers named through an fd of `layers/` so that
    /// their paths stay short (the options must fit in a page).
    fn mount_kernel(&self, shorts: &[PathBuf], home: &Path) -> Result<(), String> {
        let layers: OwnedFd = nix::fcntl::open(
            &self.root.join("layers"),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| format!("opening layers/: {e}"))?;
        let base = format!("/proc/self/fd/{}", layers.as_raw_fd());
        let lower: Vec<String> = if shorts.is_empty() {
            vec![home.join("empty").display().to_string()]
        } else {
            shorts
                .iter()
                .map(|s| format!("{base}/{}", s.display()))
                .collect()
        };
        let mut data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            home.join("upper").display(),
            home.join("work").display()
        );
        if self.rootless {
            data.push_str(",userxattr");
        }
        if data.len() >= 4096 {
            return Err(format!(
                "{} layers are too many for one overlay mount's options",
                shorts.len()
            ));
        }
        nix::mount::mount(
            Some("overlay"),
            &home.join("merged"),
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| format!("mount: {e}"))
    }

    fn mount_fuse(&self, shorts: &[PathBuf], home: &Path) -> Result<(), String> {
        let layers = self.root.join("layers");
        let lower: Vec<String> = if shorts.is_empty() {
            vec![home.join("empty").display().to_string()]
        } else {
            shorts
                .iter()
                .map(|s| layers.join(s).display().to_string())
                .collect()
        };
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            home.join("upper").display(),
            home.join("work").display()
        );
        let out = Command::new("fuse-overlayfs")
            .args(["-o", &options])
            .arg(home.join("merged"))
            .output()
            .map_err(|e| format!("running fuse-overlayfs (Debian's fuse-overlayfs): {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "fuse-overlayfs {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Mounts the root filesystem `name` again where it is no longer mounted (after a
    /// reboot, or in a new mount namespace), with its upper layer as it was. The caller
    /// holds the store lock.
    pub fn remount(&self, name: &str) -> Result<Mounted, StoreError> {
        use std::os::unix::fs::MetadataExt;
        let fail = |reason: String| StoreError::Mount {
            name: name.to_owned(),
            reason,
        };
        let record = self
            .mount_record(name)?
            .ok_or_else(|| fail("no such root filesystem".into()))?;
        let home = self.mount_home(name);
        let merged = home.join("merged");
        let device = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        if device(&merged) != device(&home) {
            return Ok(Mounted { record, merged });
        }
        let mut shorts = Vec::new();
        for chain_id in record.chain_ids.iter().rev() {
            let layer = self
                .layer(chain_id)?
                .ok_or_else(|| fail(format!("layer {chain_id} is missing")))?;
            shorts.push(self.layer_short(&layer));
        }
        // The kernel wants an empty work directory.
        let work = home.join("work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir(&work).map_err(StoreError::io("cannot make", &work))?;
        if record.fuse {
            self.mount_fuse(&shorts, &home).map_err(fail)?;
        } else {
            self.mount_kernel(&shorts, &home).map_err(fail)?;
        }
        Ok(Mounted { record, merged })
    }

    /// Removes what a `mount` killed part-way left of the root filesystem `name` (it has
    /// no record yet): the mount if it was made, and its directories. The caller holds
    /// the store lock.
    pub fn remove_unfinished_mount(&self, name: &str) -> Result<(), StoreError> {
        if !valid_name(name) || self.mount_record(name)?.is_some() {
            return Ok(());
        }
        let home = self.mount_home(name);
        if !home.exists() {
            return Ok(());
        }
        let _ = nix::mount::umount2(&home.join("merged"), MntFlags::MNT_DETACH);
        remove_dir(&home)
    }

    /// Unmounts and removes the root filesystem `name`, its upper layer with it.
    pub fn umount(&self, name: &str) -> Result<MountRecord, StoreError> {
        let record = self.mount_record(name)?.ok_or_else(|| StoreError::Mount {
            name: name.to_owned(),
            reason: "no such root filesystem".into(),
        })?;
        let home = self.mount_home(name);
        let merged = home.join("merged");
        match nix::mount::umount2(&merged, MntFlags::empty()) {
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => {
                return Err(StoreError::Mount {
                    name: name.to_owned(),
                    reason: format!("unmounting {}: {e}", merged.display()),
                })
            }
        }
        remove_dir(&home)?;
        Ok(record)
    }
}

/// Bytes a root filesystem's own changes take (its upper directory).
pub fn upper_usage(store: &Store, name: &str) -> u64 {
    crate::fsutil::disk_usage(&store.mount_home(name).join("upper"))
}
