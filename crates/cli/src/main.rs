//! `bulwark-runtime`: the composition root. Parses runc's command line, then hands each
//! command to the lifecycle in `bulwark-runtime` (the library crate).
#![forbid(unsafe_code)]

mod args;
mod cgroup_cmds;
mod default_spec;
mod error;
mod exec_cmd;
mod features;
mod foreground;
mod list;
mod log;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use args::{Cli, Command};
use bulwark_runtime::{self as runtime, CreateOptions, StateRoot};
use clap::Parser;
use error::CliError;

/// A command's exit status, or what to report.
type CmdResult = Result<i32, CliError>;

fn main() -> ExitCode {
    bulwark_sys::phase::mark("runtime: main");
    let cli = Cli::parse();
    let logger = log::Logger {
        file: cli.log.clone(),
        format: cli.log_format,
        debug: cli.debug,
    };
    match dispatch(cli, &logger) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(error) => {
            logger.error(&error.to_string());
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli, logger: &log::Logger) -> CmdResult {
    let rootless = rootless(&cli)?;
    if matches!(
        cli.command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    ) {
        check_host_options(&cli)?;
        bulwark_runtime::seal::ensure_sealed(rootless)?;
        bulwark_sys::phase::mark("sealed (re-executed)");
    }
    // Only the commands that keep state need (and check) the state root.
    let root = || state_root(cli.root.as_deref(), rootless).map(StateRoot::new);
    match &cli.command {
        Command::Spec(a) => {
            // Without --rootless, a config for whoever asks: rootless unless root.
            let rootless = match cli.rootless.as_deref() {
                None => !nix::unistd::geteuid().is_root(),
                Some(_) => rootless,
            };
            let notes = default_spec::write(&a.bundle, &a.profile, rootless)?;
            notes.iter().for_each(|n| eprintln!("{n}"));
            Ok(0)
        }
        Command::Features => {
            println!("{}", features::json());
            Ok(0)
        }
        Command::Create(a) => {
            let created = runtime::create(&root()?, create_options(a, rootless))?;
            created.warnings.iter().for_each(|w| logger.warn(w));
            created.notes.iter().for_each(|n| logger.debug(n));
            let spawned = created.spawned;
            logger.debug(&format!(
                "container {} created, init pid {}",
                a.id, spawned.pid
            ));
            Ok(0)
        }
        Command::Start(a) => {
            for warning in runtime::start(&root()?, &a.id)? {
                logger.warn(&warning);
            }
            Ok(0)
        }
        Command::State(a) => {
            let state = runtime::state_of(&root()?, &a.id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state).expect("the state always serializes")
            );
            Ok(0)
        }
        Command::Kill(a) => {
            let signal = runtime::parse_signal(&a.signal)?;
            runtime::kill(&root()?, &a.id, signal, a.all)
                .map(|()| 0)
                .map_err(CliError::from)
        }
        Command::Delete(a) => {
            for warning in runtime::delete(&root()?, &a.id, a.force)? {
                logger.warn(&warning);
            }
            Ok(0)
        }
        Command::Run(a) => {
            let options = create_options(&a.create, rootless);
            foreground::run(&root()?, a, options, logger)
        }
        Command::Exec(a) => exec_cmd::exec(&root()?, a, rootless, logger),
        Command::List(a) => list::list(&root()?, a),
        Command::Ps(a) => list::ps(&root()?, a),
        Command::Pause(a) => cgroup_cmds::pause(&root()?, &a.id),
        Command::Resume(a) => cgroup_cmds::resume(&root()?, &a.id),
        Command::Update(a) => cgroup_cmds::update(&root()?, a),
        Command::Events(a) => cgroup_cmds::events(&root()?, a),
    }
}

fn create_options(a: &args::CreateArgs, rootless: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        console: None,
        rootless,
    }
}

/// Global options this build cannot honour yet get a clear error instead of being ignored.
fn check_host_options(cli: &Cli) -> Result<(), CliError> {
    if cli.systemd_cgroup {
        return Err(CliError::Usage("--systemd-cgroup is not supported yet: bulwark-runtime manages cgroups itself (use the cgroupfs driver)"));
    }
    Ok(())
}

/// `--rootless`: true, false, or (the default) auto: rootless when the runtime lacks the
/// host's root privileges.
fn rootless(cli: &Cli) -> Result<bool, CliError> {
    match cli.rootless.as_deref().unwrap_or("auto") {
        "true" => Ok(true),
        "false" => Ok(false),
        "auto" => Ok(runtime::rootless::detected()),
        other => Err(CliError::Flag {
            flag: "--rootless",
            value: other.to_owned(),
            expected: "true, false or auto".into(),
        }),
    }
}

/// `--root`, else `/run/bulwark-runtime` for the host's root and
/// `$XDG_RUNTIME_DIR/bulwark-runtime` for a rootless runtime, as runc does (root of
/// another user namespace, as under rootless Podman, falls back to `/run` without it).
fn state_root(given: Option<&Path>, rootless: bool) -> Result<PathBuf, CliError> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty());
    if !rootless || (xdg.is_none() && nix::unistd::geteuid().is_root()) {
        return Ok(PathBuf::from("/run/bulwark-runtime"));
    }
    match xdg.map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => Ok(dir.join("bulwark-runtime")),
        Some(dir) => Err(CliError::RuntimeDirRelative { dir }),
        None => Err(CliError::NoRuntimeDir {
            uid: nix::unistd::geteuid().as_raw(),
        }),
    }
}
