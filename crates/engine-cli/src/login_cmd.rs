//! `login` and `logout`. A secret comes from `--password-stdin`, `-p` (with Docker's
//! warning) or a prompt that does not echo; it is never printed.
use std::io::{BufRead, Read, Write};

use bulwark_engine::{registry_of, Credentials, Engine};
use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::args::{LoginArgs, LogoutArgs};
use crate::{is_terminal, runtime, CliError};

pub fn login(engine: &Engine, args: &LoginArgs) -> Result<u8, CliError> {
    let registry = registry_of(args.server.as_deref());
    if args.password.is_some() && args.password_stdin {
        return Err(CliError::Usage(
            "--password and --password-stdin are mutually exclusive".into(),
        ));
    }
    if args.password_stdin && args.username.is_none() {
        return Err(CliError::Usage(
            "Must provide --username with --password-stdin".into(),
        ));
    }
    let interactive = is_terminal(&std::io::stdin());
    let username = match &args.username {
        Some(u) => u.clone(),
        None if interactive => prompt("Username: ", true)?,
        None => {
            return Err(CliError::Usage(
                "Cannot perform an interactive login from a non TTY device".into(),
            ))
        }
    };
    let secret = if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(CliError::io("reading the password from stdin"))?;
        text.trim_end_matches(['\n', '\r']).to_owned()
    } else if interactive {
        prompt("Password: ", false)?
    } else {
        return Err(CliError::Usage(
            "Cannot perform an interactive login from a non TTY device".into(),
        ));
    };
    if username.is_empty() {
        return Err(CliError::Usage("Error: Non-null Username Required".into()));
    }
    if secret.is_empty() {
        return Err(CliError::Usage("Error: Password Required".into()));
    }
    let credentials = Credentials { username, secret };
    runtime()?.block_on(engine.login(&registry, &credentials))?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(engine: &Engine, args: &LogoutArgs) -> Result<u8, CliError> {
    let registry = registry_of(args.server.as_deref());
    if engine.logout(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

/// Asks on the terminal; `echo` false hides what is typed.
fn prompt(question: &str, echo: bool) -> Result<String, CliError> {
    eprint!("{question}");
    std::io::stderr().flush().map_err(CliError::io("stderr"))?;
    let stdin = std::io::stdin();
    let saved = if echo {
        None
    } else {
        let saved =
            termios::tcgetattr(&stdin).map_err(|e| CliError::io("the terminal")(e.into()))?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
            .map_err(|e| CliError::io("the terminal")(e.into()))?;
        Some(saved)
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &saved);
        eprintln!();
    }
    read.map_err(CliError::io("reading the terminal"))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
