//! A layer's tar without its file contents (a "tar split"), so the store can keep the
//! unpacked layer alone and still give back the exact tar: for `save`, for `push`, for
//! any check against the image's `diff_id`.
//!
//! While unpacking, [`Recorder`] sits between the hashed stream and the tar reader and
//! keeps every byte the reader takes (headers, padding, the end blocks) except the
//! content of regular files, which it notes as "so many bytes of this path". [`LayerTar`]
//! plays that back against the layer's directory, reading each file beneath it without
//! following symlinks, and fails unless the result has the layer's `diff_id`.
//!
//! Format (zstd-compressed): records of `R` + u32 length + bytes (kept as they were), or
//! `F` + u64 length + u32 path length + path (that much content of that file).
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use bulwark_image::{Digest, Digester};
use rustix::fs::{Mode, OFlags, ResolveFlags};

/// File contents the recorder leaves out: (offset in the tar, length, path).
pub(crate) type Holes = Rc<RefCell<VecDeque<(u64, u64, Vec<u8>)>>>;

/// Keeps what the tar reader reads, but the content of the files noted in its holes.
pub(crate) struct Recorder<R, W: Write> {
    inner: R,
    out: W,
    position: u64,
    holes: Holes,
    /// Raw bytes not written out yet (written as one `R` record when large or at a hole).
    pending: Vec<u8>,
    error: Option<std::io::Error>,
}

impl<R: Read, W: Write> Recorder<R, W> {
    pub(crate) fn new(inner: R, out: W) -> (Recorder<R, W>, Holes) {
        let holes = Holes::default();
        let recorder = Recorder {
            inner,
            out,
            position: 0,
            holes: holes.clone(),
            pending: Vec::new(),
            error: None,
        };
        (recorder, holes)
    }

    fn flush_pending(&mut self) -> std::io::Result<()> {
        for chunk in self.pending.chunks(u32::MAX as usize) {
            self.out.write_all(b"R")?;
            self.out.write_all(&(chunk.len() as u32).to_le_bytes())?;
            self.out.write_all(chunk)?;
        }
        self.pending.clear();
        Ok(())
    }

    /// Accounts for `bytes` just read at `self.position`.
    fn keep(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let next_hole = self.holes.borrow().front().cloned();
            match next_hole {
                Some((start, len, path)) if self.position >= start => {
                    if self.position == start {
                        self.flush_pending()?;
                        self.out.write_all(b"F")?;
                        self.out.write_all(&len.to_le_bytes())?;
                        self.out.write_all(&(path.len() as u32).to_le_bytes())?;
                        self.out.write_all(&path)?;
                    }
                    let end = start + len;
                    let skip = (end - self.position).min(bytes.len() as u64) as usize;
                    self.position += skip as u64;
                    bytes = &bytes[skip..];
                    if self.position == end {
                        self.holes.borrow_mut().pop_front();
                    }
                }
                Some((start, _, _)) => {
                    let take = (start - self.position).min(bytes.len() as u64) as usize;
                    self.pending.extend_from_slice(&bytes[..take]);
                    self.position += take as u64;
                    bytes = &bytes[take..];
                }
                None => {
                    self.pending.extend_from_slice(bytes);
                    self.position += bytes.len() as u64;
                    bytes = &[];
                }
            }
        }
        if self.pending.len() >= 1 << 20 {
            self.flush_pending()?;
        }
        Ok(())
    }

    /// Writes what is left; the output.
    pub(crate) fn finish(mut self) -> std::io::Result<W> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        // A hole of a file whose content was never read (its entry failed) cannot occur
        // here: unpacking stops at the first failing entry.
        self.flush_pending()?;
        Ok(self.out)
    }
}

impl<R: Read, W: Write> Read for Recorder<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.keep(&buf[..n]) {
            // The tar split failed (its pipe closed): unpacking stops with this error.
            let text = e.to_string();
            self.error = Some(e);
            return Err(std::io::Error::other(format!(
                "writing the tar split: {text}"
            )));
        }
        Ok(n)
    }
}

/// One record of a tar split.
enum Record {
    Raw(Vec<u8>),
    File { len: u64, path: Vec<u8> },
}

fn read_record(input: &mut impl Read) -> std::io::Result<Option<Record>> {
    let mut kind = [0u8; 1];
    match input.read_exact(&mut kind) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut u32b = [0u8; 4];
    let mut u64b = [0u8; 8];
    match kind[0] {
        b'R' => {
            input.read_exact(&mut u32b)?;
            let mut raw = vec![0; u32::from_le_bytes(u32b) as usize];
            input.read_exact(&mut raw)?;
            Ok(Some(Record::Raw(raw)))
        }
        b'F' => {
            input.read_exact(&mut u64b)?;
            input.read_exact(&mut u32b)?;
            let mut path = vec![0; u32::from_le_bytes(u32b) as usize];
            input.read_exact(&mut path)?;
            Ok(Some(Record::File {
                len: u64::from_le_bytes(u64b),
                path,
            }))
        }
        other => Err(std::io::Error::other(format!(
            "a tar split record of kind {other:#x}"
        ))),
    }
}

fn invalid(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

/// The tar of an unpacked layer, played back from its tar split: its size is known up
/// front, and reading past the end fails unless the whole has the expected digest.
pub struct LayerTar {
    layer: OwnedFd,
    split: zstd::stream::read::Decoder<'static, std::io::BufReader<File>>,
    size: u64,
    expected: Digest,
    digester: Digester,
    current: Current,
}

impl std::fmt::Debug for LayerTar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LayerTar {{ size: {}, diff_id: {} }}",
            self.size, self.expected
        )
    }
}

enum Current {
    None,
    Raw(Vec<u8>, usize),
    File(File, u64),
    Done,
}

impl LayerTar {
    /// Opens the layer directory `diff` and its tar split, which must give `diff_id`.
    pub fn open(diff: &Path, tar_split: &Path, diff_id: &Digest) -> std::io::Result<LayerTar> {
        let size = {
            let mut split = zstd::stream::read::Decoder::new(File::open(tar_split)?)?;
            let mut size = 0u64;
            while let Some(record) = read_record(&mut split)? {
                size += match record {
                    Record::Raw(raw) => raw.len() as u64,
                    Record::File { len, .. } => len,
                };
            }
            size
        };
        let layer = rustix::fs::open(
            diff,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(LayerTar {
            layer,
            split: zstd::stream::read::Decoder::new(File::open(tar_split)?)?,
            size,
            expected: diff_id.clone(),
            digester: Digester::new(),
            current: Current::None,
        })
    }

    /// Bytes of the whole tar.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn next(&mut self) -> std::io::Result<()> {
        self.current = match read_record(&mut self.split)? {
            None => {
                let actual = std::mem::take(&mut self.digester).finish();
                if actual != self.expected {
                    return Err(invalid(format!(
                        "the layer rebuilt from its directory is {actual}, not {} (was a file in it changed?)",
                        self.expected
                    )));
                }
                Current::Done
            }
            Some(Record::Raw(raw)) => Current::Raw(raw, 0),
            Some(Record::File { len, path }) => {
                let path = std::ffi::OsStr::from_bytes(&path);
                let fd = rustix::fs::openat2(
                    self.layer.as_fd(),
                    path,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::IN_ROOT
                        | ResolveFlags::NO_SYMLINKS
                        | ResolveFlags::NO_MAGICLINKS
                        | ResolveFlags::NO_XDEV,
                )
                .map_err(|e| invalid(format!("{} of the layer: {e}", Path::new(path).display())))?;
                Current::File(File::from(fd), len)
            }
        };
        Ok(())
    }
}

impl Read for LayerTar {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = match &mut self.current {
                Current::Done => return Ok(0),
                Current::None => 0,
                Current::Raw(raw, at) => {
                    let n = (raw.len() - *at).min(buf.len());
                    buf[..n].copy_from_slice(&raw[*at..*at + n]);
                    *at += n;
                    n
                }
                Current::File(file, left) => {
                    let want = (*left).min(buf.len() as u64) as usize;
                    let n = if want == 0 {
                        0
                    } else {
                        file.read(&mut buf[..want])?
                    };
                    if n == 0 && want > 0 {
                        return Err(invalid(
                            "a file of the layer is shorter than its tar entry".into(),
                        ));
                    }
                    *left -= n as u64;
                    n
                }
            };
            if n > 0 {
                self.digester.update(&buf[..n]);
                return Ok(n);
            }
            self.next()?;
        }
    }
}
