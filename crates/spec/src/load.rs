//! Reading `config.json` from a bundle directory.
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::{Config, Host, Planned, SpecError};

/// Parses `config.json` text, reporting the JSON path of the first bad field.
pub fn parse_config(text: &[u8]) -> Result<Spec, SpecError> {
    let de = &mut serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let field = err.path().to_string();
        let field = if field == "." {
            "(top level)".to_string()
        } else {
            field
        };
        SpecError::Json {
            field,
            message: err.into_inner().to_string(),
        }
    })
}

/// Parses `config.json` text and plans it for `host`, keeping the text (see
/// [`Config::json`]).
pub fn plan_json(
    text: &[u8],
    dir: std::path::PathBuf,
    rootfs: std::path::PathBuf,
    host: &Host,
) -> Result<Planned, SpecError> {
    plan_parsed(parse_config(text)?, text, dir, rootfs, host)
}

fn plan_parsed(
    spec: Spec,
    text: &[u8],
    dir: std::path::PathBuf,
    rootfs: std::path::PathBuf,
    host: &Host,
) -> Result<Planned, SpecError> {
    let mut planned = Config::plan(spec, dir, rootfs, host)?;
    planned
        .config
        .keep_json(String::from_utf8_lossy(text).into_owned());
    Ok(planned)
}

/// Loads `<dir>/config.json` and plans it for `host`.
pub fn load_bundle(dir: &Path, host: &Host) -> Result<Planned, SpecError> {
    let dir = std::path::absolute(dir).map_err(|source| SpecError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let config = dir.join("config.json");
    let text = std::fs::read(&config).map_err(|source| SpecError::Read {
        path: config.clone(),
        source,
    })?;
    let spec = parse_config(&text)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| SpecError::invalid("root", "null", "an object with a path"))?;
    let rootfs = dir.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(SpecError::invalid(
                "root.path",
                root.path(),
                "a directory holding the container's root filesystem",
            ))
        }
        Err(_) => {
            return Err(SpecError::invalid(
                "root.path",
                rootfs,
                "an existing directory (relative paths are taken from the bundle)",
            ))
        }
    }
    plan_parsed(spec, &text, dir, rootfs, host)
}
