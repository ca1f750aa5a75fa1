//! Unpacking a layer in a sandboxed child: the engine starts its unpacker program (the
//! `bulwark` binary, in its hidden `__unpack-layer` role) for each layer, with the blob
//! on stdin; the child confines itself to the layer's new directory
//! (`bulwark_layer::confine`) before it reads a byte, and reports what it made as JSON.
use std::path::Path;
use std::process::{Command, Stdio};

use bulwark_image::manifest::Layer;
use bulwark_layer::{Options, Stats};
use bulwark_store::StoreError;

use crate::Engine;

/// The role's name on the unpacker's command line.
pub const UNPACK_ROLE: &str = "__unpack-layer";

impl Engine {
    /// Unpacks `layer`'s blob into `dir` (a new, empty directory) in a confined child.
    pub(crate) fn unpack_in_child(&self, layer: &Layer, dir: &Path) -> Result<u64, StoreError> {
        let fail = |reason: String| StoreError::Layer {
            digest: layer.blob.to_string(),
            reason,
        };
        let options = Options {
            compression: layer.compression,
            diff_id: layer.diff_id.clone(),
            limits: self.config.layer_limits,
            devices: !self.config.rootless,
            user_xattrs: self.config.rootless,
        };
        let blob = self.store.open_blob(&layer.blob)?;
        let out = Command::new(&self.config.unpacker)
            .arg(UNPACK_ROLE)
            .arg(dir)
            .arg(serde_json::to_string(&options).expect("options always serialize"))
            .stdin(Stdio::from(blob))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_clear()
            .output()
            .map_err(|e| {
                fail(format!(
                    "starting the unpacker {}: {e}",
                    self.config.unpacker.display()
                ))
            })?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(fail(if said.is_empty() {
                format!("the unpacker failed ({})", out.status)
            } else {
                said
            }));
        }
        let stats: Stats = serde_json::from_slice(&out.stdout)
            .map_err(|e| fail(format!("the unpacker's report is not valid: {e}")))?;
        Ok(stats.file_bytes)
    }
}

/// The child's side: confine, unpack stdin into `dir`, print the stats. Returns the exit
/// code; errors go to stderr, worded for the pull that reports them.
pub fn unpack_layer_child(dir: &Path, options_json: &str) -> i32 {
    let run = || -> Result<Stats, String> {
        let options: Options =
            serde_json::from_str(options_json).map_err(|e| format!("bad options: {e}"))?;
        let layer =
            bulwark_layer::confine::confine(dir, options.devices).map_err(|e| e.to_string())?;
        let stdin = std::io::stdin().lock();
        bulwark_layer::unpack(stdin, std::os::fd::AsFd::as_fd(&layer), &options)
            .map_err(|e| e.to_string())
    };
    match run() {
        Ok(stats) => {
            println!(
                "{}",
                serde_json::to_string(&stats).expect("stats always serialize")
            );
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}
