//! `bulwark`: the engine's command line. Each command parses its flags, makes one call on
//! [`bulwark_engine::Engine`] and prints the result as Docker prints it.
#![forbid(unsafe_code)]

mod archive_cmd;
mod args;
mod container_args;
mod container_cmd;
mod error;
mod format;
mod images_cmd;
mod login_cmd;
mod mount_cmd;
mod network_args;
mod network_cmd;
mod progress;
mod transfer_cmd;

use std::process::ExitCode;

use args::{Cli, Command, ContainerCommand, ImageCommand, SystemCommand};
use bulwark_engine::userns::{self, Entered};
use bulwark_engine::{Engine, EngineConfig, UNPACK_ROLE};
use clap::Parser;
use container_cmd as c;
use error::CliError;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The engine's layer unpacker: this binary again, in a sandbox of its own making.
    if args.get(1).is_some_and(|a| a == UNPACK_ROLE) {
        let (Some(dir), Some(options)) = (args.get(2), args.get(3).and_then(|o| o.to_str())) else {
            eprintln!("usage: bulwark {UNPACK_ROLE} DIR OPTIONS_JSON < LAYER");
            return ExitCode::from(2);
        };
        return ExitCode::from(
            bulwark_engine::unpack_layer_child(std::path::Path::new(dir), options) as u8,
        );
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(CliError::Reported) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run(cli: Cli) -> Result<u8, CliError> {
    // Without root, everything happens in the user's namespace (see bulwark_engine::userns):
    // a new one, or for a command that enters a running container, its monitor's.
    let entered = match running_container(&cli) {
        Some(monitor) => userns::join(monitor)?,
        None => userns::enter()?,
    };
    match entered {
        Entered::Exited(code) => return Ok(code.clamp(0, 255) as u8),
        Entered::Root | Entered::Inside => {}
    }
    let mut config = EngineConfig::load(userns::rootless())?;
    if let Some(store) = cli.store {
        config.store = store;
    }
    let engine = || Engine::open(config.clone());
    // `exec` joins a container from this process: run from a sealed binary first.
    if matches!(
        cli.command,
        Command::Exec(_) | Command::Container(ContainerCommand::Exec(_))
    ) {
        bulwark_engine::seal_self(config.rootless)?;
    }
    match cli.command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => c::run(&engine()?, &a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            c::create_cmd(&engine()?, &a)
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            c::start(&engine()?, &a)
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => c::stop(&engine()?, &a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            c::restart(&engine()?, &a)
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => c::kill(&engine()?, &a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => c::rm(&engine()?, &a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => c::ps(&engine()?, &a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => c::logs(&engine()?, &a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => c::exec(&engine()?, &a),
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => c::wait(&engine()?, &a),
        Command::Inspect(a) => c::inspect_any(&engine()?, &a),
        Command::Container(ContainerCommand::Inspect(a)) => c::inspect(&engine()?, &a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => c::top(&engine()?, &a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            c::rename(&engine()?, &a)
        }
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            c::pause(&engine()?, &a, true)
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            c::pause(&engine()?, &a, false)
        }
        Command::Container(ContainerCommand::Prune(a)) => c::prune(&engine()?, &a),
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            c::stats(&engine()?, &a)
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            c::update(&engine()?, &a)
        }
        Command::System(SystemCommand::Boot) => c::boot(&engine()?),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => c::cp(&engine()?, &a),
        Command::Events(a) => c::events(&engine()?, &a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            c::attach(&engine()?, &a)
        }
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => {
            transfer_cmd::pull(&engine()?, &a)
        }
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => {
            transfer_cmd::push(&engine()?, &a)
        }
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => {
            images_cmd::images(&engine()?, &a)
        }
        Command::Image(ImageCommand::Inspect(a)) => images_cmd::inspect(&engine()?, &a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images_cmd::rmi(&engine()?, &a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => images_cmd::tag(&engine()?, &a),
        Command::Image(ImageCommand::Prune(a)) => images_cmd::prune(&engine()?, &a),
        Command::System(SystemCommand::Df) => images_cmd::df(&engine()?),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => {
            archive_cmd::save(&engine()?, &a)
        }
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => {
            archive_cmd::load(&engine()?, &a)
        }
        Command::Login(a) => login_cmd::login(&engine()?, &a),
        Command::Logout(a) => login_cmd::logout(&engine()?, &a),
        Command::Image(ImageCommand::Mount(a)) => mount_cmd::mount(&engine()?, &a),
        Command::Image(ImageCommand::Umount(a)) => mount_cmd::umount(&engine()?, &a),
        Command::Unshare(a) => mount_cmd::unshare(&a),
        Command::Network(n) => {
            use network_args::NetworkCommand as N;
            let engine = engine()?;
            match n {
                N::Create(a) => network_cmd::create(&engine, &a),
                N::Ls(a) => network_cmd::ls(&engine, &a),
                N::Inspect(a) => network_cmd::inspect(&engine, &a),
                N::Rm(a) => network_cmd::rm(&engine, &a),
                N::Prune(a) => network_cmd::prune(&engine, &a),
                N::Connect(a) => network_cmd::connect(&engine, &a),
                N::Disconnect(a) => network_cmd::disconnect(&engine, &a),
            }
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => {
            network_cmd::port(&engine()?, &a)
        }
    }
}

/// Without root, the monitor of the running container `exec` or `cp` names, whose
/// namespaces the command joins.
fn running_container(cli: &Cli) -> Option<i32> {
    if nix::unistd::geteuid().is_root() {
        return None;
    }
    let what = match &cli.command {
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => a.container.clone(),
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => {
            [&a.source, &a.destination].iter().find_map(|s| {
                s.split_once(':')
                    .filter(|_| !s.starts_with(['/', '.']))
                    .map(|(c, _)| c.to_owned())
            })?
        }
        _ => return None,
    };
    let mut config = EngineConfig::load(true).ok()?;
    if let Some(store) = &cli.store {
        config.store = store.clone();
    }
    let dir = bulwark_engine::Containers::new(config.store.join("containers"))
        .find(&what)
        .ok()?;
    let state = dir.state().ok()?;
    (state.is_live() && state.monitor_pid > 0).then_some(state.monitor_pid)
}

/// A runtime for the commands that talk to registries.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("starting the async runtime"))
}

/// Whether a stream is a terminal.
fn is_terminal(stream: &impl std::io::IsTerminal) -> bool {
    stream.is_terminal()
}
