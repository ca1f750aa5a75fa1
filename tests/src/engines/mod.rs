//! Engine integration: Docker, Podman and containerd started by the tests on their own
//! sockets and directories, driving runc and bulwark-runtime side by side over the same
//! scenarios, with a pass table per engine (`<target>/engines/<engine>.md`).
//!
//! - [`image`]: the busybox test image, as an archive every engine loads.
//! - [`daemon`]: daemons stopped by their pid on drop, and the local registry.
//! - [`cli`]: an engine's command line with one runtime selected; checks on output.
//! - [`matrix`]: runs the scenarios, writes the table, fails on a regression from runc.
//! - [`docker_like`]: the scenarios Docker and Podman share.

pub mod cli;
pub mod daemon;
pub mod docker_like;
pub mod image;
pub mod matrix;

use std::path::Path;

use crate::paths::TempDir;
use daemon::Registry;
use image::{TestImage, IMAGE_NAME};

/// What every engine test starts from: a temp dir, the test image built in it, and the
/// local registry holding it. Fields drop in order: the registry stops before the
/// directory goes.
#[derive(Debug)]
pub struct Stage {
    pub registry: Registry,
    pub image: TestImage,
    work: TempDir,
}

impl Stage {
    /// The stage, or `None` (saying which) when one of `programs` is not installed.
    pub fn prepare(programs: &[&str]) -> Option<Stage> {
        if let Some(missing) = programs.iter().find(|p| !installed(p)) {
            let why = format!("{missing} is not installed (scripts/deps.sh installs it)");
            if crate::strict() {
                panic!("this test cannot check what it claims here: {why} (BULWARK_TESTS_STRICT=1 makes that a failure)");
            }
            eprintln!("skipped: {why}");
            return None;
        }
        let work = TempDir::new();
        let image = TestImage::build(&work.path().join("image"));
        let registry = Registry::start_with(work.path(), &image.archive, IMAGE_NAME);
        Some(Stage {
            registry,
            image,
            work,
        })
    }

    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// The test image's reference in the local registry.
    pub fn registry_image(&self) -> String {
        format!("{}/{IMAGE_NAME}", self.registry.address)
    }

    /// The image archive's path, as an engine's `load`/`import` argument.
    pub fn archive(&self) -> String {
        self.image.archive.display().to_string()
    }
}

/// Whether `program` is installed.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
