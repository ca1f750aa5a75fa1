//! `image mount`, `image umount` and `unshare`: root filesystems for containers, and (for
//! a store without root) a shell in the namespace where they are mounted.
use std::os::unix::process::CommandExt;

use bulwark_engine::{userns, Engine, Overlay};

use crate::args::{MountArgs, UmountArgs, UnshareArgs};
use crate::CliError;

pub fn mount(engine: &Engine, args: &MountArgs) -> Result<u8, CliError> {
    outside_check("image mount")?;
    let overlay = if args.fuse {
        Overlay::Fuse
    } else {
        Overlay::Auto
    };
    let mounted = engine.mount(&args.image, args.name.as_deref(), overlay)?;
    println!("{}", mounted.merged.display());
    Ok(0)
}

pub fn umount(engine: &Engine, args: &UmountArgs) -> Result<u8, CliError> {
    outside_check("image umount")?;
    let mut failed = false;
    for name in &args.names {
        match engine.umount(name) {
            Ok(record) => println!("{}", record.name),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Err(CliError::Reported);
    }
    Ok(0)
}

/// A rootless mount lives in the user's namespace, which ends with the command: as with
/// `podman`, it must be made inside `bulwark unshare`.
fn outside_check(command: &str) -> Result<(), CliError> {
    if userns::rootless() && std::env::var_os(userns::UNSHARED_VAR).is_none() {
        return Err(CliError::Usage(format!(
            "cannot run \"bulwark {command}\" without root outside its user namespace: run it in `bulwark unshare` first"
        )));
    }
    Ok(())
}

pub fn unshare(args: &UnshareArgs) -> Result<u8, CliError> {
    if !userns::rootless() {
        return Err(CliError::Usage(
            "please use unshare without root (as root there is nothing to enter)".into(),
        ));
    }
    let mut command = args.command.clone();
    if command.is_empty() {
        command.push(std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()));
    }
    let error = std::process::Command::new(&command[0])
        .args(&command[1..])
        .env(userns::UNSHARED_VAR, "1")
        .exec();
    Err(CliError::io(format!("running {}", command[0]))(error))
}
