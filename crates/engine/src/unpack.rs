//! Unpacking a layer in a sandboxed child: the engine starts its unpacker program (the
//! `bulwark` binary, in its hidden `__unpack-layer` role) for each layer, with the blob
//! on stdin; the child confines itself to the layer's new directory
//! (`bulwark_layer::confine`) before it reads a byte, and reports what it made as JSON.
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use bulwark_image::manifest::Layer;
use bulwark_layer::{Options, Stats};
use bulwark_store::StoreError;

use crate::Engine;

/// The role's name on the unpacker's command line.
pub const UNPACK_ROLE: &str = "__unpack-layer";

impl Engine {
    /// Unpacks `layer`'s blob (from the store) into `dir` (a new, empty directory) in a
    /// confined child, and writes the layer's tar split to `tar_split`. Returns the bytes
    /// of its files.
    pub(crate) fn unpack_in_child(
        &self,
        layer: &Layer,
        dir: &Path,
        tar_split: &Path,
    ) -> Result<u64, StoreError> {
        let blob = self.store.open_blob(&layer.blob)?;
        let child = self.start_unpacker(layer, dir, Stdio::from(blob))?;
        let out = child
            .wait_with_output()
            .map_err(|e| unpack_error(layer, format!("waiting for the unpacker: {e}")))?;
        self.finish_unpacker(layer, &out, tar_split)
    }

    /// Starts the confined unpacker of `layer` into `dir`, its blob coming on `blob`.
    pub(crate) fn start_unpacker(
        &self,
        layer: &Layer,
        dir: &Path,
        blob: Stdio,
    ) -> Result<Child, StoreError> {
        let options = Options {
            compression: layer.compression,
            diff_id: layer.diff_id.clone(),
            limits: self.config.layer_limits,
            devices: !self.config.rootless,
            user_xattrs: self.config.rootless,
        };
        Command::new(&self.config.unpacker)
            .arg(UNPACK_ROLE)
            .arg(dir)
            .arg(serde_json::to_string(&options).expect("options always serialize"))
            .stdin(blob)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_clear()
            .spawn()
            .map_err(|e| {
                unpack_error(
                    layer,
                    format!(
                        "starting the unpacker {}: {e}",
                        self.config.unpacker.display()
                    ),
                )
            })
    }

    /// What the unpacker of `layer` said: its error, or its tar split (written to
    /// `tar_split`) and the bytes of the layer's files.
    pub(crate) fn finish_unpacker(
        &self,
        layer: &Layer,
        out: &Output,
        tar_split: &Path,
    ) -> Result<u64, StoreError> {
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(unpack_error(
                layer,
                if said.is_empty() {
                    format!("the unpacker failed ({})", out.status)
                } else {
                    said
                },
            ));
        }
        // stdout: the tar split, then the stats as JSON, then that JSON's length (4 bytes).
        let report = || -> Option<(&[u8], Stats)> {
            let (rest, len) = out
                .stdout
                .split_at_checked(out.stdout.len().checked_sub(4)?)?;
            let len = u32::from_le_bytes(len.try_into().ok()?) as usize;
            let (split, stats) = rest.split_at_checked(rest.len().checked_sub(len)?)?;
            Some((split, serde_json::from_slice(stats).ok()?))
        };
        let (split, stats) = report()
            .ok_or_else(|| unpack_error(layer, "the unpacker's report is not valid".into()))?;
        std::fs::write(tar_split, split).map_err(StoreError::io("cannot write", tar_split))?;
        Ok(stats.file_bytes)
    }
}

fn unpack_error(layer: &Layer, reason: String) -> StoreError {
    StoreError::Layer {
        digest: layer.blob.to_string(),
        reason,
    }
}

/// The child's side: confine, unpack stdin into `dir`, write the tar split and the stats
/// to stdout. Returns the exit code; errors go to stderr, worded for the pull that
/// reports them.
pub fn unpack_layer_child(dir: &Path, options_json: &str) -> i32 {
    let run = || -> Result<(), String> {
        let options: Options =
            serde_json::from_str(options_json).map_err(|e| format!("bad options: {e}"))?;
        let layer =
            bulwark_layer::confine::confine(dir, options.devices).map_err(|e| e.to_string())?;
        let stdin = std::io::stdin().lock();
        let out = std::io::BufWriter::new(std::io::stdout().lock());
        let split = zstd::stream::write::Encoder::new(out, 3).map_err(|e| e.to_string())?;
        let (stats, split) =
            bulwark_layer::unpack(stdin, std::os::fd::AsFd::as_fd(&layer), &options, split)
                .map_err(|e| e.to_string())?;
        let mut out = split
            .finish()
            .map_err(|e| format!("writing the tar split: {e}"))?;
        let json = serde_json::to_vec(&stats).expect("stats always serialize");
        out.write_all(&json)
            .and_then(|()| out.write_all(&(json.len() as u32).to_le_bytes()))
            .and_then(|()| out.flush())
            .map_err(|e| format!("writing the report: {e}"))
    };
    match run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
