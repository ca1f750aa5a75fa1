//! `spec`: writes a starting config.json, like `runc spec`, from a policy profile (see
//! [`bulwark_policy`]), fitted to where the bundle is.
use std::path::Path;

use bulwark_policy::{default_config, profile};
use serde_json::json;
use serde_json::Value;

use crate::error::CliError;

/// Writes `<bundle>/config.json` for the profile called `profile`, refusing to overwrite
/// one. Returns notes for the user: what `spec` changed so the config runs where the
/// bundle is.
pub fn write(bundle: &Path, name: &str, rootless: bool) -> Result<Vec<String>, CliError> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(CliError::ConfigExists(path));
    }
    let mut config = default_config(&profile(name)?, rootless)?;
    let notes = fit_rootfs_idmap(&mut config, bundle);
    let text = serde_json::to_string_pretty(&config).expect("a JSON value always serializes");
    std::fs::write(&path, text + "\n").map_err(|source| CliError::Write { path, source })?;
    Ok(notes)
}

/// An idmapped rootfs lets a root-owned image work unchanged in a user namespace, but
/// what container root writes is then the host root's on disk, so the runtime refuses it
/// where other users can reach the rootfs. Where that is so (most directories under /tmp
/// or /srv), or where the rootfs's filesystem cannot be idmapped, `spec` writes a config
/// without it (container root then owns nothing of the host's) and says how to get it.
fn fit_rootfs_idmap(config: &mut Value, bundle: &Path) -> Vec<String> {
    if config["annotations"][bulwark_spec::ROOTFS_IDMAP] != "true" {
        return Vec::new();
    }
    let bundle = std::path::absolute(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    let rootfs = bundle.join("rootfs");
    let why = if !bulwark_sandbox::closed_to_others(&rootfs) {
        format!(
            "{} can be reached by other users, and with an idmapped rootfs the files container root writes there would be the host root's; to idmap it (so a root-owned image works unchanged), `chmod 700 {}` and run spec again",
            bundle.display(),
            bundle.display()
        )
    } else if let Some(Err(e)) = rootfs
        .is_dir()
        .then(|| bulwark_sandbox::idmapped::idmap_supported(&rootfs))
    {
        format!("its filesystem cannot be idmapped here ({e})")
    } else {
        return Vec::new();
    };
    config["annotations"][bulwark_spec::ROOTFS_IDMAP] = json!("false");
    vec![format!(
        "spec: the rootfs is not idmapped: {why}. Container root is still an unprivileged host id; it can read the image but not write root's files in it"
    )]
}
