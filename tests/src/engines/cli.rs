//! An engine's command line with one OCI runtime selected, and the checks scenarios make
//! on what it printed.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::paths::unique_name;
use crate::process::{run_captured, Output};

/// How the engine's `run` is spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `docker`/`podman`: `run [FLAGS] IMAGE [COMMAND]`.
    DockerLike,
    /// `ctr`: `run [FLAGS] IMAGE ID [COMMAND]`.
    Ctr,
}

/// One engine, driving one runtime.
#[derive(Debug, Clone)]
pub struct Cli {
    /// The runtime's name in the pass table.
    pub runtime: String,
    pub program: PathBuf,
    /// Arguments before every subcommand (`--host`, `--root` ...).
    pub global: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Arguments of `run` that select the runtime.
    pub runtime_flags: Vec<String>,
    pub image: String,
    pub flavor: Flavor,
}

/// One engine command may take this long (an OOM kill or a stop's grace period included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

impl Cli {
    /// `program global... args...`, ready to run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.global)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs an engine subcommand to completion.
    pub fn cmd(&self, args: &[&str]) -> Output {
        run_captured(&mut self.command(args), COMMAND_TIMEOUT)
    }

    /// Runs an engine subcommand with `input` on its stdin.
    pub fn cmd_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let file = stdin_file(input);
        run_captured(self.command(args).stdin(file), COMMAND_TIMEOUT)
    }

    /// The arguments of `run FLAGS... IMAGE [ID] COMMAND...` with this runtime.
    pub fn run_args(&self, flags: &[&str], command: &[&str]) -> Vec<String> {
        let mut args = vec!["run".to_owned()];
        args.extend(self.runtime_flags.iter().cloned());
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(self.image.clone());
        if self.flavor == Flavor::Ctr {
            args.push(unique_name("bulwark-engine"));
        }
        args.extend(command.iter().map(|s| s.to_string()));
        args
    }

    /// `run` with this runtime, to completion.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        let args = self.run_args(flags, command);
        self.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `run` with `input` on stdin.
    pub fn run_with_stdin(&self, flags: &[&str], command: &[&str], input: &str) -> Output {
        let args = self.run_args(flags, command);
        self.cmd_with_stdin(&args.iter().map(String::as_str).collect::<Vec<_>>(), input)
    }
}

/// An unlinked temp file holding `input`, to use as a command's stdin.
fn stdin_file(input: &str) -> std::fs::File {
    use std::io::{Seek, Write};
    let path = std::env::temp_dir().join(unique_name("bulwark-stdin"));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    file.write_all(input.as_bytes()).unwrap();
    file.rewind().unwrap();
    file
}

/// What a scenario reports: `Err` with a one-line reason, or a skip (see [`skip`]).
pub type Verdict = Result<(), String>;

/// A skip: the scenario cannot run on this machine, for the reason given.
pub fn skip(reason: &str) -> Verdict {
    Err(format!("skip: {reason}"))
}

/// Passes if the command exited with `code` and its stdout contains `wanted`.
pub fn expect(out: &Output, code: i32, wanted: &str) -> Verdict {
    if out.code() == Some(code) && out.stdout.contains(wanted) {
        return Ok(());
    }
    Err(format!(
        "wanted exit {code} and {wanted:?}; got {}: {}",
        out.code()
            .map_or("a signal".to_owned(), |c| format!("exit {c}")),
        summary(out)
    ))
}

/// Passes if the command exited 0; its stdout is returned.
pub fn succeed(out: &Output) -> Result<String, String> {
    if out.success() {
        Ok(out.stdout.trim().to_owned())
    } else {
        Err(format!("exit {:?}: {}", out.code(), summary(out)))
    }
}

/// The gist of what a command printed, on one line.
fn summary(out: &Output) -> String {
    let text = format!("{} {}", out.stdout.trim(), out.stderr.trim());
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.chars().take(300).collect()
}

/// `sh -c SCRIPT`, as a container command.
pub fn sh(script: &str) -> [&str; 3] {
    ["sh", "-c", script]
}

/// A shell command printing a cgroup file inside the container, at its cgroup2 name
/// `v2` or, on a v1 host, at `v1` (`memory/memory.limit_in_bytes`).
pub fn cgroup_file(v2: &str, v1: &str) -> String {
    format!("cat /sys/fs/cgroup/{v2} 2>/dev/null || cat /sys/fs/cgroup/{v1}")
}

/// A host directory with one file `f` holding `bound\n`, for bind mounts.
pub fn bind_source(dir: &Path) -> PathBuf {
    let source = dir.join("bind-source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("f"), "bound\n").unwrap();
    source
}
