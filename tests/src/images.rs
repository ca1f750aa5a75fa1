//! Images the engine tests build themselves: layer tars written entry by entry (any name,
//! any link target, so that malicious layers can be made too), compressed as asked, with
//! their config, an OCI or Docker schema 2 manifest, and an index or manifest list over
//! several platforms.
use std::io::Write;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A layer's tar, entry by entry. Names and link targets are written as given (no
/// checks), as a hostile image would write them.
#[derive(Debug, Default)]
pub struct Tar {
    out: Vec<u8>,
}

/// One entry's header fields.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub kind: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub link: &'a str,
    pub device: (u32, u32),
    pub xattrs: &'a [(&'a str, &'a [u8])],
}

impl<'a> Entry<'a> {
    pub fn new(name: &'a str, kind: tar::EntryType) -> Entry<'a> {
        let mode = if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        };
        Entry {
            name,
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime: 1_700_000_000,
            link: "",
            device: (0, 0),
            xattrs: &[],
        }
    }
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends an entry with `data` as its content.
    pub fn entry(&mut self, entry: &Entry<'_>, data: &[u8]) -> &mut Tar {
        let mut pax: Vec<(String, Vec<u8>)> = entry
            .xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.to_vec()))
            .collect();
        if entry.name.len() >= 100 {
            pax.push(("path".into(), entry.name.as_bytes().to_vec()));
        }
        if !pax.is_empty() {
            let mut records = Vec::new();
            for (key, value) in &pax {
                records.extend(pax_record(key, value));
            }
            let mut header = tar::Header::new_ustar();
            raw_name(&mut header, "PaxHeaders/entry");
            header.set_entry_type(tar::EntryType::XHeader);
            header.set_size(records.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            self.append(&header, &records);
        }
        let mut header = tar::Header::new_ustar();
        raw_name(&mut header, &entry.name[..entry.name.len().min(99)]);
        header.set_entry_type(entry.kind);
        header.set_mode(entry.mode);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mtime(entry.mtime);
        header.set_size(data.len() as u64);
        if !entry.link.is_empty() {
            let old = header.as_old_mut();
            old.linkname[..entry.link.len()].copy_from_slice(entry.link.as_bytes());
        }
        if matches!(entry.kind, tar::EntryType::Char | tar::EntryType::Block) {
            header
                .set_device_major(entry.device.0)
                .expect("a ustar header");
            header
                .set_device_minor(entry.device.1)
                .expect("a ustar header");
        }
        header.set_cksum();
        self.append(&header, data);
        self
    }

    fn append(&mut self, header: &tar::Header, data: &[u8]) {
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub fn dir(&mut self, name: &str) -> &mut Tar {
        self.entry(&Entry::new(name, tar::EntryType::Directory), b"")
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.entry(&Entry::new(name, tar::EntryType::Regular), data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        let mut e = Entry::new(name, tar::EntryType::Symlink);
        e.link = target;
        e.mode = 0o777;
        self.entry(&e, b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        let mut e = Entry::new(name, tar::EntryType::Link);
        e.link = target;
        self.entry(&e, b"")
    }

    /// `.wh.<name>` in `dir`: the file `name` of lower layers is deleted.
    pub fn whiteout(&mut self, path: &str) -> &mut Tar {
        let (dir, name) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
        let entry = if dir.is_empty() {
            format!(".wh.{name}")
        } else {
            format!("{dir}/.wh.{name}")
        };
        self.file(&entry, b"")
    }

    /// `<dir>/.wh..wh..opq`: nothing of lower layers shows in `dir`.
    pub fn opaque(&mut self, dir: &str) -> &mut Tar {
        self.file(&format!("{dir}/.wh..wh..opq"), b"")
    }

    /// The tar with its end-of-archive blocks.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

fn raw_name(header: &mut tar::Header, name: &str) {
    let old = header.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> <key>=<value>\n", where len counts itself.
    let body = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn compress(self, tar: &[u8]) -> Vec<u8> {
        match self {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(tar).expect("writing to memory");
                gz.finish().expect("writing to memory")
            }
            Compression::Zstd => zstd::encode_all(tar, 3).expect("writing to memory"),
        }
    }

    fn media_type(self, format: Format) -> &'static str {
        match (format, self) {
            (Format::Docker, Compression::Gzip) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
            (Format::Docker, _) => "application/vnd.docker.image.rootfs.diff.tar",
            (Format::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (Format::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (Format::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// OCI or Docker schema 2 manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

/// A built image: every blob and its manifest.
#[derive(Debug, Clone)]
pub struct Image {
    pub config: Vec<u8>,
    /// Layer blobs as stored in the registry (compressed), with their tars.
    pub layers: Vec<(Vec<u8>, Vec<u8>)>,
    pub manifest: Vec<u8>,
    pub media_type: &'static str,
    pub architecture: String,
}

impl Image {
    /// An image of `layers` (tars) for `linux/<architecture>`.
    pub fn build(layers: &[(Vec<u8>, Compression)], architecture: &str, format: Format) -> Image {
        let diff_ids: Vec<String> = layers.iter().map(|(tar, _)| digest(tar)).collect();
        let config = json!({
            "architecture": architecture,
            "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "author": "bulwark tests",
            "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/"},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "bulwark tests"}],
        })
        .to_string()
        .into_bytes();
        let config = if architecture == "arm64" {
            let mut value: Value = serde_json::from_slice(&config).expect("JSON");
            value["variant"] = json!("v8");
            value.to_string().into_bytes()
        } else {
            config
        };
        let blobs: Vec<(Vec<u8>, Vec<u8>)> = layers
            .iter()
            .map(|(tar, c)| (c.compress(tar), tar.clone()))
            .collect();
        let (media_type, config_type) = match format {
            Format::Oci => (OCI_MANIFEST, OCI_CONFIG),
            Format::Docker => (DOCKER_MANIFEST, DOCKER_CONFIG),
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": digest(&config), "size": config.len()},
            "layers": blobs.iter().zip(layers).map(|((blob, _), (_, c))| json!({
                "mediaType": c.media_type(format), "digest": digest(blob), "size": blob.len()
            })).collect::<Vec<Value>>(),
        })
        .to_string()
        .into_bytes();
        Image {
            config,
            layers: blobs,
            manifest,
            media_type,
            architecture: architecture.to_owned(),
        }
    }

    pub fn digest(&self) -> String {
        digest(&self.manifest)
    }

    /// The image's id (its config's digest).
    pub fn id(&self) -> String {
        digest(&self.config)
    }
}

/// An OCI index or Docker manifest list over `images`.
pub fn index(images: &[&Image], format: Format) -> (Vec<u8>, &'static str) {
    let media_type = match format {
        Format::Oci => OCI_INDEX,
        Format::Docker => DOCKER_LIST,
    };
    let manifests: Vec<Value> = images
        .iter()
        .map(|i| {
            let mut platform = json!({"os": "linux", "architecture": i.architecture});
            if i.architecture == "arm64" {
                platform["variant"] = json!("v8");
            }
            json!({"mediaType": i.media_type, "digest": i.digest(), "size": i.manifest.len(), "platform": platform})
        })
        .collect();
    let doc = json!({"schemaVersion": 2, "mediaType": media_type, "manifests": manifests});
    (doc.to_string().into_bytes(), media_type)
}

/// The layers of the test image: deletions and an opaque directory over a base, with
/// symlinks, hardlinks, a setuid file, a file capability, owners and a device node.
/// `device` adds a character device (which only the host's root may unpack).
pub fn rich_layers(compression: Compression, device: bool) -> Vec<(Vec<u8>, Compression)> {
    let mut tool = Entry::new("bin/tool", tar::EntryType::Regular);
    tool.mode = 0o755;
    let base = Tar::new()
        .dir("etc")
        .file("etc/hostname", b"base\n")
        .file("etc/deleted-later", b"gone\n")
        .dir("opaque")
        .file("opaque/from-base", b"hidden later\n")
        .dir("bin")
        .entry(&tool, b"#!/bin/sh\necho tool\n")
        .finish();
    let mut top = Tar::new();
    top.dir("etc")
        .whiteout("etc/deleted-later")
        .file("etc/added", b"added\n");
    top.dir("opaque")
        .opaque("opaque")
        .file("opaque/from-top", b"only this\n");
    top.symlink("bin/link", "tool")
        .symlink("abs-link", "/etc/hostname");
    top.file("bin/tool2", b"#!/bin/sh\necho tool2\n")
        .hardlink("bin/hard", "bin/tool2");
    let mut setuid = Entry::new("bin/setuid", tar::EntryType::Regular);
    setuid.mode = 0o4755;
    top.entry(&setuid, b"setuid\n");
    // VFS_CAP_REVISION_2 with cap_net_bind_service (bit 10) permitted and effective.
    let cap: [u8; 20] = [
        0x01, 0, 0, 0x02, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let xattrs = [("security.capability", &cap[..])];
    let mut capped = Entry::new("bin/capped", tar::EntryType::Regular);
    capped.mode = 0o755;
    capped.xattrs = &xattrs;
    top.entry(&capped, b"capped\n");
    let mut owned = Entry::new("home-1234", tar::EntryType::Directory);
    owned.uid = 1234;
    owned.gid = 2345;
    owned.mode = 0o750;
    top.entry(&owned, b"");
    if device {
        let mut null = Entry::new("dev-null", tar::EntryType::Char);
        null.device = (1, 3);
        null.mode = 0o666;
        top.entry(&null, b"");
    }
    let mut old = Entry::new("old-file", tar::EntryType::Regular);
    old.mtime = 1_000_000_000;
    top.entry(&old, b"old\n");
    vec![(base, compression), (top.finish(), compression)]
}

/// A layer of the busybox fixture (with `bulwark-check`), so a pulled image can run.
pub fn fixture_layer() -> Vec<u8> {
    let rootfs = crate::Fixture::get().rootfs();
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder
        .append_dir_all(".", rootfs)
        .expect("archiving the fixture rootfs");
    builder.into_inner().expect("writing to memory")
}

/// `len` bytes that do not compress (xorshift from `seed`), for layers that take a while
/// to move and must differ between tests.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A seed unique to this process and call.
pub fn seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_nanos() as u64
        ^ (u64::from(std::process::id()) << 32)
        ^ N.fetch_add(1, Ordering::Relaxed)
}
