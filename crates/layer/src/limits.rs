//! Limits against decompression and archive bombs (CVE-2017-14992 and its kind), each
//! with an error that says which was reached.
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::UnpackError;

/// What one layer may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case", default, deny_unknown_fields)]
pub struct Limits {
    /// Uncompressed bytes in all.
    pub max_bytes: u64,
    /// Tar entries.
    pub max_entries: u64,
    /// Bytes of one entry's path.
    pub max_path: usize,
    /// Uncompressed bytes per compressed byte (beyond the first MiB).
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 64 << 30,
            max_entries: 2_000_000,
            max_path: 4096,
            max_ratio: 250,
        }
    }
}

/// Counts the compressed bytes read, for the ratio check.
#[derive(Debug)]
pub struct Counted<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> (Counted<R>, Arc<AtomicU64>) {
        let count = Arc::new(AtomicU64::new(0));
        (
            Counted {
                inner,
                count: count.clone(),
            },
            count,
        )
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Stops the uncompressed stream once it breaks the size or ratio limit: reading fails
/// with an error the unpacker reports as that limit.
#[derive(Debug)]
pub struct Bounded<R> {
    inner: R,
    read: u64,
    compressed: Arc<AtomicU64>,
    limits: Limits,
}

impl<R> Bounded<R> {
    pub fn new(inner: R, compressed: Arc<AtomicU64>, limits: Limits) -> Self {
        Bounded {
            inner,
            read: 0,
            compressed,
            limits,
        }
    }

    /// Uncompressed bytes read so far.
    pub fn total(&self) -> u64 {
        self.read
    }
}

/// The marker the bounded reader's error carries.
pub(crate) const LIMIT_MARKER: &str = "bulwark layer limit: ";

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        let compressed = self.compressed.load(Ordering::Relaxed);
        let over = |what: String| Err(std::io::Error::other(format!("{LIMIT_MARKER}{what}")));
        if self.read > self.limits.max_bytes {
            return over(format!(
                "the layer unpacks to more than {} bytes (the limit)",
                self.limits.max_bytes
            ));
        }
        if self.read > (1 << 20) + compressed.saturating_mul(self.limits.max_ratio) {
            return over(format!(
                "the layer unpacks to more than {} times its compressed size ({} bytes from {compressed}): a decompression bomb",
                self.limits.max_ratio, self.read
            ));
        }
        Ok(n)
    }
}

/// The limit error an I/O error carries, if it is one.
pub(crate) fn limit_of(e: &std::io::Error) -> Option<UnpackError> {
    let text = e.to_string();
    let at = text.find(LIMIT_MARKER)?;
    Some(UnpackError::Limit(
        text[at + LIMIT_MARKER.len()..].to_owned(),
    ))
}
