//! The local images: listing, inspecting, tagging, removing, pruning, disk usage.
use std::collections::BTreeSet;
use std::time::SystemTime;

use bulwark_image::name::familiar;
use bulwark_image::{Digest, ImageName};
use bulwark_store::{ImageRecord, Names, StoreError};

use crate::{Engine, EngineError};

/// One row of `images`: an image under one of its names (or none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar repository (`busybox`), or `<none>`.
    pub repository: String,
    pub tag: String,
    /// The repository's digest for the image, or `<none>`.
    pub digest: String,
    pub created: Option<SystemTime>,
    pub size: u64,
    /// Root filesystems (containers) made from it.
    pub containers: usize,
}

/// A filter of `images` (`--filter KEY=VALUE`, and the REFERENCE argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFilter {
    /// `dangling=true|false`: images without a tag, or with one.
    Dangling(bool),
    /// `reference=PATTERN` (or the argument): `repo` or `repo:tag`, `*` matching any run
    /// of characters but `/`.
    Reference(String),
}

impl ImageFilter {
    /// Parses `KEY=VALUE` as `docker images --filter` takes it.
    pub fn parse(text: &str) -> Result<ImageFilter, EngineError> {
        let bad = |reason: &str| EngineError::Other(format!("--filter {text:?}: {reason}"));
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| bad("expected KEY=VALUE, such as dangling=true"))?;
        match key {
            "dangling" => match value {
                "true" | "1" => Ok(ImageFilter::Dangling(true)),
                "false" | "0" => Ok(ImageFilter::Dangling(false)),
                _ => Err(bad("dangling takes true or false")),
            },
            "reference" => Ok(ImageFilter::Reference(value.to_owned())),
            "before" | "since" | "label" | "until" => Err(bad(&format!(
                "the {key} filter is not supported yet (dangling and reference are)"
            ))),
            _ => Err(bad(&format!(
                "{key} is not a filter of images (dangling, reference)"
            ))),
        }
    }

    fn matches(&self, row: &ImageSummary) -> bool {
        match self {
            ImageFilter::Dangling(dangling) => (row.tag == "<none>") == *dangling,
            ImageFilter::Reference(pattern) => {
                let (repo_pattern, tag_pattern) =
                    match pattern.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                        Some((repo, tag)) => (repo, Some(tag)),
                        None => (pattern.as_str(), None),
                    };
                let repo = familiar(
                    &bulwark_image::ImageName::parse(repo_pattern)
                        .map_or_else(|_| repo_pattern.to_owned(), |n| n.full_repository()),
                );
                let repo_ok = glob(repo_pattern, &row.repository) || glob(&repo, &row.repository);
                repo_ok && tag_pattern.is_none_or(|t| glob(t, &row.tag))
            }
        }
    }
}

/// `*` matches any run of characters but `/`; everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(after) = text.strip_prefix(head) else {
                return false;
            };
            (0..=after.len())
                .take_while(|&i| !after[..i].contains('/'))
                .filter(|&i| after.is_char_boundary(i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

/// What `rmi` and `prune` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Removed::Untagged(name) => write!(f, "Untagged: {name}"),
            Removed::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

/// `system df` for images and containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub images: usize,
    pub active_images: usize,
    pub images_size: u64,
    pub images_reclaimable: u64,
    pub containers: usize,
    pub containers_size: u64,
}

/// `docker.io/library/busybox:latest` -> (`busybox`, `latest`).
fn split_tag(full: &str) -> (String, String) {
    match full.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
        Some((repo, tag)) => (familiar(repo), tag.to_owned()),
        None => (familiar(full), "<none>".into()),
    }
}

/// `docker.io/library/busybox@sha256:..` -> (`busybox`, `sha256:..`).
fn split_digest(full: &str) -> (String, String) {
    match full.split_once('@') {
        Some((repo, digest)) => (familiar(repo), digest.to_owned()),
        None => (familiar(full), "<none>".into()),
    }
}

impl Engine {
    /// The config of an image, as JSON.
    pub fn config_json(&self, record: &ImageRecord) -> Result<serde_json::Value, EngineError> {
        let bytes = self.store.read_blob(&record.id)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::Other(format!("image config {}: {e}", record.id)))
    }

    fn created(&self, record: &ImageRecord) -> Option<SystemTime> {
        let config = self.config_json(record).ok()?;
        humantime::parse_rfc3339_weak(config.get("created")?.as_str()?)
            .ok()
            .or_else(|| humantime::parse_rfc3339(config.get("created")?.as_str()?).ok())
    }

    fn users(&self) -> Result<Vec<bulwark_store::MountRecord>, EngineError> {
        Ok(self.store.mounts()?)
    }

    /// The rows of `images` every filter lets through.
    pub fn images_matching(
        &self,
        filters: &[ImageFilter],
    ) -> Result<Vec<ImageSummary>, EngineError> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|row| filters.iter().all(|f| f.matches(row)))
            .collect())
    }

    /// Every image, a row per name, newest first (`images`).
    pub fn images(&self) -> Result<Vec<ImageSummary>, EngineError> {
        let names = self.store.names()?;
        let mounts = self.users()?;
        let mut rows = Vec::new();
        for record in self.store.images()? {
            let created = self.created(&record);
            let containers = mounts.iter().filter(|m| m.image == record.id).count();
            let (tags, digests) = names.of(&record.id);
            let digests: Vec<(String, String)> = digests.iter().map(|d| split_digest(d)).collect();
            let digest_of = |repo: &str| {
                digests
                    .iter()
                    .find(|(r, _)| r == repo)
                    .map_or("<none>".to_owned(), |(_, d)| d.clone())
            };
            let row = |repository: String, tag: String, digest: String| ImageSummary {
                id: record.id.clone(),
                repository,
                tag,
                digest,
                created,
                size: record.size,
                containers,
            };
            let mut tagged_repos = BTreeSet::new();
            for tag in &tags {
                let (repo, tag) = split_tag(tag);
                let digest = digest_of(&repo);
                tagged_repos.insert(repo.clone());
                rows.push(row(repo, tag, digest));
            }
            for (repo, digest) in &digests {
                if !tagged_repos.contains(repo) {
                    rows.push(row(repo.clone(), "<none>".into(), digest.clone()));
                }
            }
            if tags.is_empty() && digests.is_empty() {
                rows.push(row("<none>".into(), "<none>".into(), "<none>".into()));
            }
        }
        rows.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then(a.repository.cmp(&b.repository))
                .then(a.tag.cmp(&b.tag))
        });
        Ok(rows)
    }

    /// `image inspect`, in Docker's shape.
    pub fn inspect(&self, what: &str) -> Result<serde_json::Value, EngineError> {
        let record = self.resolve(what)?;
        let config = self.config_json(&record)?;
        let names = self.store.names()?;
        let (tags, digests) = names.of(&record.id);
        let familiar_tags: Vec<String> = tags
            .iter()
            .map(|t| {
                let (repo, tag) = split_tag(t);
                format!("{repo}:{tag}")
            })
            .collect();
        let familiar_digests: Vec<String> = digests
            .iter()
            .map(|d| {
                let (repo, digest) = split_digest(d);
                format!("{repo}@{digest}")
            })
            .collect();
        let field = |key: &str| {
            config
                .get(key)
                .cloned()
                .unwrap_or(serde_json::Value::String(String::new()))
        };
        let lower: Vec<String> = record
            .chain_ids
            .iter()
            .rev()
            .map(|c| self.store.layer_dir(c).display().to_string())
            .collect();
        let mut out = serde_json::json!({
            "Id": record.id,
            "RepoTags": familiar_tags,
            "RepoDigests": familiar_digests,
            "Parent": "",
            "Comment": field("comment"),
            "Created": config.get("created").cloned().unwrap_or(serde_json::Value::Null),
            "DockerVersion": field("docker_version"),
            "Author": field("author"),
            "Config": config.get("config").cloned().unwrap_or(serde_json::json!({})),
            "Architecture": record.platform.architecture,
            "Os": record.platform.os,
            "Size": record.size,
            "GraphDriver": {"Data": {"LowerDir": lower.join(":")}, "Name": "overlay"},
            "RootFS": {"Type": "layers", "Layers": record.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
            "Metadata": {"LastTagTime": record.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())},
        });
        if out["Created"].is_null() {
            out.as_object_mut().expect("an object").remove("Created");
        }
        if let Some(variant) = &record.platform.variant {
            out.as_object_mut()
                .expect("an object")
                .insert("Variant".into(), serde_json::json!(variant));
        }
        Ok(out)
    }

    /// `tag SOURCE TARGET`.
    pub fn tag(&self, source: &str, target: &str) -> Result<(), EngineError> {
        let record = self.resolve(source)?;
        let target = ImageName::parse(target)?;
        if target.digest().is_some() {
            return Err(EngineError::TagWithDigest);
        }
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        names.tags.insert(target.canonical(), record.id.clone());
        self.store.put_names(&names)?;
        let mut record = record;
        record.last_tag_time = Some(bulwark_store::now());
        self.store.put_image(&record)?;
        Ok(())
    }

    /// `rmi [-f] WHAT`: untags a name, and deletes the image once nothing names it
    /// (unless a container uses it).
    pub fn remove_image(&self, what: &str, force: bool) -> Result<Vec<Removed>, EngineError> {
        let record = self.resolve(what)?;
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        let mut removed = Vec::new();
        let by_name = ImageName::parse(what)
            .ok()
            .filter(|_| !what.starts_with("sha256:") && !is_id_prefix(what, &record));
        let users = self.users()?;
        let user = users.iter().find(|m| m.image == record.id);
        match by_name {
            Some(name) => {
                let key = name.canonical();
                let others = names.tags.values().filter(|v| **v == record.id).count();
                if let (Some(user), false, 0 | 1) = (user, force, others) {
                    return Err(StoreError::InUse {
                        name: what.to_owned(),
                        container: user.name.clone(),
                        image: record.id.short().to_owned(),
                    }
                    .into());
                }
                let removed_name = match name.digest() {
                    Some(_) => names.digests.remove(&key).map(|_| name.familiar()),
                    None => names.tags.remove(&key).map(|_| name.familiar()),
                };
                removed.extend(removed_name.map(Removed::Untagged));
                // With its last tag gone, its digest references go too, as in Docker.
                if !names.tags.values().any(|v| *v == record.id) {
                    let digests: Vec<String> = names
                        .digests
                        .iter()
                        .filter(|(_, v)| **v == record.id)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for d in digests {
                        names.digests.remove(&d);
                        let (repo, digest) = split_digest(&d);
                        removed.push(Removed::Untagged(format!("{repo}@{digest}")));
                    }
                }
            }
            None => {
                let repositories: BTreeSet<String> = names
                    .tags
                    .iter()
                    .filter(|(_, v)| **v == record.id)
                    .map(|(k, _)| split_tag(k).0)
                    .collect();
                if repositories.len() > 1 && !force {
                    return Err(StoreError::MultipleNames {
                        image: record.id.short().to_owned(),
                    }
                    .into());
                }
                if let Some(user) = user {
                    return Err(StoreError::InUse {
                        name: what.to_owned(),
                        container: user.name.clone(),
                        image: record.id.short().to_owned(),
                    }
                    .into());
                }
                untag_all(&mut names, &record.id, &mut removed);
            }
        }
        self.store.put_names(&names)?;
        if !names.names(&record.id) && user.is_none() {
            self.store.remove_image_record(&record.id)?;
            removed.push(Removed::Deleted(record.id.clone()));
            let reclaimed = self.store.collect()?;
            removed.extend(reclaimed.layers.into_iter().map(Removed::Deleted));
        }
        Ok(removed)
    }

    /// `image prune [-a]`: removes dangling images (or, with `all`, every image no
    /// container uses), then what nothing references. Returns what went and the bytes
    /// freed.
    pub fn prune(&self, all: bool) -> Result<(Vec<Removed>, u64), EngineError> {
        let _lock = self.store.lock()?;
        let mut names = self.store.names()?;
        let users = self.users()?;
        let mut removed = Vec::new();
        for record in self.store.images()? {
            let used = users.iter().any(|m| m.image == record.id);
            let dangling = !names.tags.values().any(|v| *v == record.id);
            if used || !(all || dangling) {
                continue;
            }
            untag_all(&mut names, &record.id, &mut removed);
            self.store.remove_image_record(&record.id)?;
            removed.push(Removed::Deleted(record.id.clone()));
        }
        self.store.put_names(&names)?;
        let reclaimed = self.store.collect()?;
        removed.extend(reclaimed.layers.iter().cloned().map(Removed::Deleted));
        Ok((removed, reclaimed.bytes))
    }

    /// `system df`.
    pub fn disk_usage(&self) -> Result<DiskUsage, EngineError> {
        let records = self.store.images()?;
        let mounts = self.users()?;
        let mut usage = DiskUsage {
            images: records.len(),
            containers: mounts.len(),
            ..DiskUsage::default()
        };
        let mut all_layers = BTreeSet::new();
        let mut used_layers = BTreeSet::new();
        for record in &records {
            all_layers.extend(record.chain_ids.iter().cloned());
            if mounts.iter().any(|m| m.image == record.id) {
                usage.active_images += 1;
                used_layers.extend(record.chain_ids.iter().cloned());
            }
        }
        let size = |layers: &BTreeSet<Digest>| -> u64 {
            layers
                .iter()
                .filter_map(|c| self.store.layer(c).ok().flatten())
                .map(|l| l.size)
                .sum()
        };
        usage.images_size = size(&all_layers);
        usage.images_reclaimable = usage.images_size - size(&used_layers);
        usage.containers_size = mounts
            .iter()
            .map(|m| bulwark_store::upper_usage(&self.store, &m.name))
            .sum();
        Ok(usage)
    }
}

fn is_id_prefix(what: &str, record: &ImageRecord) -> bool {
    what.len() >= 4 && record.id.hex().starts_with(what)
}

fn untag_all(names: &mut Names, id: &Digest, removed: &mut Vec<Removed>) {
    untag_where(&mut names.tags, id, removed, |t| {
        let (repo, tag) = split_tag(t);
        format!("{repo}:{tag}")
    });
    untag_where(&mut names.digests, id, removed, |d| {
        let (repo, digest) = split_digest(d);
        format!("{repo}@{digest}")
    });
}

/// Removes every name of `id` from `map`, saying each as `shown` words it.
fn untag_where(
    map: &mut std::collections::BTreeMap<String, Digest>,
    id: &Digest,
    removed: &mut Vec<Removed>,
    shown: impl Fn(&str) -> String,
) {
    let keys: Vec<String> = map
        .iter()
        .filter(|(_, v)| *v == id)
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        map.remove(&key);
        removed.push(Removed::Untagged(shown(&key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_match_as_dockers() {
        let row = |repo: &str, tag: &str| ImageSummary {
            id: Digest::of(b"x"),
            repository: repo.into(),
            tag: tag.into(),
            digest: "<none>".into(),
            created: None,
            size: 0,
            containers: 0,
        };
        let f = |t: &str| ImageFilter::parse(t).unwrap();
        assert!(f("dangling=true").matches(&row("<none>", "<none>")));
        assert!(!f("dangling=true").matches(&row("busybox", "latest")));
        assert!(f("dangling=false").matches(&row("busybox", "latest")));
        assert!(f("reference=busybox").matches(&row("busybox", "latest")));
        assert!(f("reference=busy*").matches(&row("busybox", "1")));
        assert!(f("reference=busybox:1*").matches(&row("busybox", "1.36")));
        assert!(!f("reference=busybox:2").matches(&row("busybox", "1")));
        assert!(f("reference=localhost:5000/*").matches(&row("localhost:5000/x", "v1")));
        assert!(!f("reference=localhost:5000/*").matches(&row("localhost:5000/x/y", "v1")));
        for bad in ["dangling=maybe", "before=x", "colour=red", "nokey"] {
            assert!(ImageFilter::parse(bad).is_err(), "{bad}");
        }
    }
}
