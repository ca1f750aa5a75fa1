//! `hooks`, checked: absolute paths, timeouts in seconds above zero. A `startContainer`
//! hook without `env` runs with the container process's environment, as runc and crun
//! run it.
use std::path::PathBuf;
use std::time::Duration;

use oci_spec::runtime::{Hook, Hooks as OciHooks, Spec};

use crate::SpecError;

/// One hook, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookConfig {
    pub path: PathBuf,
    /// `args`, with `args[0]` the program's name (the path when absent).
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub timeout: Option<Duration>,
}

/// The lifecycle points hooks run at, as `hooks` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookPoint {
    pub fn name(self) -> &'static str {
        match self {
            HookPoint::Prestart => "prestart",
            HookPoint::CreateRuntime => "createRuntime",
            HookPoint::CreateContainer => "createContainer",
            HookPoint::StartContainer => "startContainer",
            HookPoint::Poststart => "poststart",
            HookPoint::Poststop => "poststop",
        }
    }

    const ALL: [HookPoint; 6] = [
        HookPoint::Prestart,
        HookPoint::CreateRuntime,
        HookPoint::CreateContainer,
        HookPoint::StartContainer,
        HookPoint::Poststart,
        HookPoint::Poststop,
    ];

    fn of(self, hooks: &OciHooks) -> &Option<Vec<Hook>> {
        match self {
            HookPoint::Prestart => hooks.prestart(),
            HookPoint::CreateRuntime => hooks.create_runtime(),
            HookPoint::CreateContainer => hooks.create_container(),
            HookPoint::StartContainer => hooks.start_container(),
            HookPoint::Poststart => hooks.poststart(),
            HookPoint::Poststop => hooks.poststop(),
        }
    }
}

/// Every hook of a config, by point.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks(Vec<(HookPoint, Vec<HookConfig>)>);

impl Hooks {
    /// Checks `spec.hooks`; `process_env` is what a startContainer hook without `env`
    /// gets.
    pub fn plan(spec: &Spec, process_env: &[String]) -> Result<Hooks, SpecError> {
        let Some(hooks) = spec.hooks() else {
            return Ok(Hooks::default());
        };
        let mut out = Vec::new();
        for point in HookPoint::ALL {
            let mut list = Vec::new();
            for (index, hook) in point.of(hooks).iter().flatten().enumerate() {
                let field = format!("hooks.{}[{index}]", point.name());
                if !hook.path().is_absolute() {
                    return Err(SpecError::invalid(
                        format!("{field}.path"),
                        hook.path(),
                        "an absolute path to an executable",
                    ));
                }
                let timeout = match hook.timeout() {
                    Some(t) if t <= 0 => {
                        return Err(SpecError::invalid(
                            format!("{field}.timeout"),
                            t,
                            "a number of seconds greater than zero",
                        ))
                    }
                    t => t.map(|t| Duration::from_secs(t as u64)),
                };
                let env = match (hook.env(), point) {
                    (None, HookPoint::StartContainer) => process_env.to_vec(),
                    (env, _) => env.clone().unwrap_or_default(),
                };
                let args = match hook.args().as_deref() {
                    Some(args) if !args.is_empty() => args.to_vec(),
                    _ => vec![hook.path().to_string_lossy().into_owned()],
                };
                list.push(HookConfig {
                    path: hook.path().clone(),
                    args,
                    env,
                    timeout,
                });
            }
            if !list.is_empty() {
                out.push((point, list));
            }
        }
        Ok(Hooks(out))
    }

    /// The hooks to run at `point`, in order.
    pub fn at(&self, point: HookPoint) -> &[HookConfig] {
        self.0
            .iter()
            .find(|(p, _)| *p == point)
            .map_or(&[], |(_, list)| list.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(hooks: serde_json::Value) -> Result<Hooks, SpecError> {
        let spec: Spec =
            serde_json::from_value(serde_json::json!({"ociVersion": "1.2.0", "hooks": hooks}))
                .unwrap();
        Hooks::plan(&spec, &["GREETING=hello".to_owned()])
    }

    #[test]
    fn start_container_hooks_without_env_get_the_process_env() {
        let hooks = planned(serde_json::json!({
            "startContainer": [{"path": "/bin/a"}, {"path": "/bin/b", "env": ["X=1"]}],
            "prestart": [{"path": "/bin/c"}]}))
        .unwrap();
        let start = hooks.at(HookPoint::StartContainer);
        assert_eq!(start[0].env, ["GREETING=hello"]);
        assert_eq!(start[0].args, ["/bin/a"]);
        assert_eq!(start[1].env, ["X=1"]);
        assert!(hooks.at(HookPoint::Prestart)[0].env.is_empty());
        assert!(hooks.at(HookPoint::Poststop).is_empty());
    }

    #[test]
    fn paths_and_timeouts_are_checked() {
        let e = planned(serde_json::json!({"prestart": [{"path": "hook"}]})).unwrap_err();
        assert!(e.to_string().contains("hooks.prestart[0].path"), "{e}");
        let e =
            planned(serde_json::json!({"poststop": [{"path": "/h", "timeout": 0}]})).unwrap_err();
        assert!(e.to_string().contains("hooks.poststop[0].timeout"), "{e}");
    }
}
