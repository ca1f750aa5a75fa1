//! Runtime-side hooks whose failures are warnings: poststart after start, poststop after
//! delete (prestart and createRuntime run during create, see [`crate::create`]).
use bulwark_spec::hooks::{HookPoint, Hooks};

use crate::OciState;

/// Runs every hook at `point` even past failures, which the spec makes warnings;
/// returns them, worded for the log.
pub fn run_warning(hooks: &Hooks, point: HookPoint, state: &OciState) -> Vec<String> {
    let list = hooks.at(point);
    if list.is_empty() {
        return Vec::new();
    }
    let json = serde_json::to_vec(state).expect("the OCI state always serializes");
    bulwark_sandbox::hooks::run_all_reporting(point, list, &json)
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

/// The hooks of a saved config (checked when it was created).
pub fn of(config: &bulwark_spec::runtime::Spec) -> Hooks {
    Hooks::plan(config, &[]).unwrap_or_default()
}
