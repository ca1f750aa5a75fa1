//! Runtime-side hooks: prestart and createRuntime during create, poststart after start,
//! poststop after delete.
use bulwark_spec::runtime::{Hook, Spec};

use crate::OciState;

/// The hooks of one kind from a config.
pub fn of(spec: &Spec, kind: &str) -> Vec<Hook> {
    let Some(hooks) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match kind {
        "prestart" => hooks.prestart(),
        "createRuntime" => hooks.create_runtime(),
        "poststart" => hooks.poststart(),
        "poststop" => hooks.poststop(),
        _ => &None,
    };
    list.clone().unwrap_or_default()
}

/// Runs the hooks of `kind` with `state` on their stdin, stopping at the first failure.
pub fn run(spec: &Spec, kind: &str, state: &OciState) -> Result<(), String> {
    let hooks = of(spec, kind);
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state).map_err(|e| e.to_string())?;
    bulwark_sandbox::hooks::run_all(kind, &hooks, &json)
}

/// Runs every hook of `kind` (poststart, poststop) even past failures, which the spec
/// makes warnings; returns them.
pub fn run_warning(spec: &Spec, kind: &str, state: &OciState) -> Vec<String> {
    let hooks = of(spec, kind);
    if hooks.is_empty() {
        return Vec::new();
    }
    match serde_json::to_vec(state) {
        Ok(json) => bulwark_sandbox::hooks::run_all_reporting(kind, &hooks, &json),
        Err(e) => vec![e.to_string()],
    }
}
