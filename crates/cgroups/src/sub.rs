//! `exec --cgroup`: sub-cgroups of the container's own that an exec'd process runs in,
//! as runc takes them: one path for every hierarchy (`sub`), or paths per v1 controller
//! (`cpu,cpuacct:sub`, repeatable). They must already exist and lie below the
//! container's cgroup.
use std::path::{Component, Path, PathBuf};

use crate::error::{CgroupError, Result};

/// Where below the container's cgroups an exec'd process goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SubCgroups {
    /// The container's own cgroups.
    #[default]
    None,
    /// The same sub-cgroup in every hierarchy.
    All(PathBuf),
    /// A sub-cgroup per v1 controller; hierarchies not named stay at the container's.
    Each(Vec<(String, PathBuf)>),
}

fn refuse(arg: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::SubCgroup {
        arg: arg.to_owned(),
        reason: reason.into(),
    }
}

/// A relative path of plain names only: nothing that climbs out.
fn relative(arg: &str, path: &str) -> Result<PathBuf> {
    let path = Path::new(path);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    if path.as_os_str().is_empty() || !plain {
        return Err(refuse(
            arg,
            "expected a path below the container's cgroup, without .. or a leading /",
        ));
    }
    Ok(path.to_path_buf())
}

impl SubCgroups {
    /// Parses the `--cgroup` arguments.
    pub fn parse(args: &[String]) -> Result<SubCgroups> {
        let mut each: Vec<(String, PathBuf)> = Vec::new();
        for arg in args {
            let Some((controllers, path)) = arg.split_once(':') else {
                if args.len() != 1 {
                    return Err(refuse(
                        arg,
                        "a path without a controller prefix must be the only --cgroup",
                    ));
                }
                return Ok(SubCgroups::All(relative(arg, arg)?));
            };
            for controller in controllers.split(',') {
                if controller.is_empty() {
                    return Err(refuse(arg, "an empty controller name"));
                }
                if each.iter().any(|(c, _)| c == controller) {
                    return Err(refuse(arg, format!("controller {controller} given twice")));
                }
                each.push((controller.to_owned(), relative(arg, path)?));
            }
        }
        Ok(match each.is_empty() {
            true => SubCgroups::None,
            false => SubCgroups::Each(each),
        })
    }

    /// The argument as given, for messages.
    fn shown(&self) -> String {
        match self {
            SubCgroups::None => String::new(),
            SubCgroups::All(path) => path.display().to_string(),
            SubCgroups::Each(each) => each
                .iter()
                .map(|(c, p)| format!("{c}:{}", p.display()))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// The controllers named per controller (to check the host has each).
    pub(crate) fn controllers(&self) -> Vec<&str> {
        match self {
            SubCgroups::Each(each) => each.iter().map(|(c, _)| c.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// The directory for a hierarchy with `controllers` (none: the cgroup2 one) whose
    /// container cgroup is `dir`; it must exist.
    pub(crate) fn dir_for(&self, dir: &Path, controllers: &[String]) -> Result<PathBuf> {
        let sub = match self {
            SubCgroups::None => None,
            SubCgroups::All(path) => Some(path),
            SubCgroups::Each(each) => each
                .iter()
                .find(|(c, _)| controllers.iter().any(|h| h == c))
                .map(|(_, p)| p),
        };
        let Some(sub) = sub else {
            return Ok(dir.to_path_buf());
        };
        let target = dir.join(sub);
        if !target.is_dir() {
            return Err(refuse(
                &self.shown(),
                format!(
                    "{} does not exist (expected an existing sub-cgroup of the container's)",
                    target.display()
                ),
            ));
        }
        Ok(target)
    }

    /// Refuses per-controller paths where there is one hierarchy (cgroup v2).
    pub(crate) fn check_unified(&self) -> Result<()> {
        match self {
            SubCgroups::Each(_) => Err(refuse(
                &self.shown(),
                "cgroup v2 has one hierarchy: give the path without a controller prefix",
            )),
            _ => Ok(()),
        }
    }

    /// Refuses controllers none of `hierarchies` (each a controller list) has.
    pub(crate) fn check_controllers<'a>(
        &self,
        hierarchies: impl Iterator<Item = &'a [String]> + Clone,
    ) -> Result<()> {
        for controller in self.controllers() {
            if !hierarchies
                .clone()
                .any(|h| h.iter().any(|c| c == controller))
            {
                return Err(refuse(
                    &self.shown(),
                    format!("this host has no cgroup v1 hierarchy for controller {controller}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<SubCgroups> {
        SubCgroups::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn forms() {
        assert_eq!(parse(&[]).unwrap(), SubCgroups::None);
        assert_eq!(parse(&["a/b"]).unwrap(), SubCgroups::All("a/b".into()));
        assert_eq!(
            parse(&["cpu,cpuacct:x", "memory:y"]).unwrap(),
            SubCgroups::Each(vec![
                ("cpu".into(), "x".into()),
                ("cpuacct".into(), "x".into()),
                ("memory".into(), "y".into())
            ])
        );
    }

    #[test]
    fn refusals_name_the_argument() {
        for bad in [
            &["../x"][..],
            &["/x"],
            &["a", "b"],
            &[":x"],
            &["cpu:x", "cpu:y"],
            &[""],
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("--cgroup"), "{bad:?}: {e}");
        }
    }
}
