//! The container commands: parse Docker's flag values into a request, make the engine
//! call, print what Docker prints.
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::SystemTime;

use bulwark_engine::{
    Attach, Bind, CreateRequest, Engine, EngineError, ExecRequest, HealthConfig, LogDriver,
    LogFilter, LogMode, LogOptions, LogRequest, Resources, RestartPolicy, Security, StartMode,
    Stream, Tmpfs,
};
use serde_json::{json, Map, Value};

use crate::container_args::*;
use crate::error::CliError;
use crate::format::{go_json_pretty, tabulate, Template};

fn usage(flag: &str, value: &str, expected: &str) -> CliError {
    CliError::Usage(format!(
        "invalid argument {value:?} for \"{flag}\" flag: expected {expected}"
    ))
}

/// Docker's sizes: `512`, `64k`, `512m`, `1g` (binary units, an optional `b`).
fn bytes(flag: &str, text: &str) -> Result<i64, CliError> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix('b').unwrap_or(&lower);
    let (digits, shift) = match lower.chars().last() {
        Some('k') => (&lower[..lower.len() - 1], 10),
        Some('m') => (&lower[..lower.len() - 1], 20),
        Some('g') => (&lower[..lower.len() - 1], 30),
        Some('t') => (&lower[..lower.len() - 1], 40),
        _ => (lower, 0),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| usage(flag, text, "a size such as 512m or 1g"))?;
    if value < 0.0 {
        return Err(usage(flag, text, "a size such as 512m or 1g"));
    }
    Ok((value * (1u64 << shift) as f64) as i64)
}

fn duration_ns(flag: &str, text: &str) -> Result<u64, CliError> {
    humantime::parse_duration(text)
        .map(|d| d.as_nanos() as u64)
        .map_err(|_| usage(flag, text, "a duration such as 30s or 1m30s"))
}

fn bind(spec: &str) -> Result<Bind, CliError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(usage("--volume", spec, "SOURCE:DESTINATION[:ro|rw]")),
    };
    if !source.starts_with('/') {
        return Err(CliError::Usage(format!(
            "--volume {spec:?}: named volumes are not supported yet; give an absolute host path to bind"
        )));
    }
    if !destination.starts_with('/') {
        return Err(usage("--volume", spec, "an absolute destination path"));
    }
    let read_only = match mode {
        "" | "rw" => false,
        "ro" => true,
        _ => return Err(usage("--volume", spec, "mode ro or rw")),
    };
    Ok(Bind {
        source: source.into(),
        destination: destination.into(),
        read_only,
    })
}

fn mount(spec: &str) -> Result<Bind, CliError> {
    let mut kind = "volume";
    let (mut source, mut target, mut read_only) = (None, None, false);
    for field in spec.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, "true"));
        match key {
            "type" => kind = value,
            "source" | "src" => source = Some(value),
            "target" | "destination" | "dst" => target = Some(value),
            "readonly" | "ro" => read_only = value != "false" && value != "0",
            _ => {
                return Err(usage(
                    "--mount",
                    spec,
                    "type=bind,source=PATH,target=PATH[,readonly]",
                ))
            }
        }
    }
    match (kind, source, target) {
        ("bind", Some(s), Some(t)) => Ok(Bind {
            source: s.into(),
            destination: t.into(),
            read_only,
        }),
        ("bind", _, _) => Err(usage("--mount", spec, "both source= and target=")),
        _ => Err(CliError::Usage(format!(
            "--mount {spec:?}: only type=bind is supported yet"
        ))),
    }
}

fn env_file(path: &std::path::Path) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("--env-file: cannot read {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.contains('=') {
            true => l.to_owned(),
            false => format!("{l}={}", std::env::var(l).unwrap_or_default()),
        })
        .collect())
}

fn security(a: &CreateArgs) -> Result<Security, CliError> {
    let mut s = Security {
        profile: bulwark_engine::DEFAULT_PROFILE.into(),
        privileged: a.privileged,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        landlock: true,
        read_only: a.read_only,
        userns: a.userns.clone().unwrap_or_default(),
        ..Security::default()
    };
    for opt in &a.security_opt {
        let (key, value) = opt.split_once(['=', ':']).unwrap_or((opt, ""));
        match (key, value) {
            ("no-new-privileges", "" | "true") => s.no_new_privileges = Some(true),
            ("no-new-privileges", "false") => s.no_new_privileges = Some(false),
            ("seccomp", "unconfined") => s.seccomp = Some("unconfined".into()),
            ("seccomp", file) if !file.is_empty() => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| CliError::Usage(format!("--security-opt seccomp: cannot read {file}: {e}")))?;
                s.seccomp = Some(text);
            }
            ("landlock", "off" | "false") => s.landlock = false,
            ("profile", "hardened" | "docker") => s.profile = value.into(),
            _ => return Err(usage("--security-opt", opt, "no-new-privileges, seccomp=unconfined|FILE, landlock=off or profile=hardened|docker")),
        }
    }
    for cap in a.cap_add.iter().chain(&a.cap_drop) {
        bulwark_engine::cap_name(cap).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    if !matches!(s.userns.as_str(), "" | "host") {
        return Err(usage(
            "--userns",
            &s.userns,
            "host (user namespaces for image containers come with idmapped layers)",
        ));
    }
    Ok(s)
}

fn log_options(a: &CreateArgs) -> Result<LogOptions, CliError> {
    let driver = match a.log_driver.as_deref() {
        None | Some("json-file") => LogDriver::JsonFile,
        Some("local") => LogDriver::Local,
        Some("none") => LogDriver::None,
        Some(other) => return Err(usage("--log-driver", other, "json-file, local or none")),
    };
    let mut log = LogOptions {
        driver,
        ..LogOptions::default()
    };
    for opt in &a.log_opt {
        let (key, value) = opt
            .split_once('=')
            .ok_or_else(|| usage("--log-opt", opt, "KEY=VALUE"))?;
        match key {
            "max-size" => log.max_size = Some(bytes("--log-opt max-size", value)? as u64),
            "max-file" => {
                log.max_file =
                    value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        usage("--log-opt max-file", value, "a number of at least 1")
                    })?
            }
            "mode" => {
                log.mode = match value {
                    "blocking" => LogMode::Block,
                    "non-blocking" => LogMode::Drop,
                    _ => return Err(usage("--log-opt mode", value, "blocking or non-blocking")),
                }
            }
            "max-buffer-size" => {
                log.max_buffer_size = bytes("--log-opt max-buffer-size", value)? as u64
            }
            _ => {
                return Err(usage(
                    "--log-opt",
                    opt,
                    "max-size, max-file, mode or max-buffer-size",
                ))
            }
        }
    }
    Ok(log)
}

/// The limits flags, parsed.
fn limits(a: &LimitArgs) -> Result<Resources, CliError> {
    let memory = a
        .memory
        .as_deref()
        .map(|m| bytes("--memory", m))
        .transpose()?;
    if memory.is_some_and(|m| m < 6 << 20) {
        return Err(CliError::Usage(
            "Minimum memory limit allowed is 6MB".into(),
        ));
    }
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        Some(s) => Some(bytes("--memory-swap", s)?),
        None => None,
    };
    let nano_cpus = a
        .cpus
        .as_deref()
        .map(|c| {
            c.parse::<f64>()
                .ok()
                .filter(|n| *n > 0.0)
                .map(|n| (n * 1e9) as i64)
                .ok_or_else(|| usage("--cpus", c, "a positive number of CPUs such as 1.5"))
        })
        .transpose()?;
    Ok(Resources {
        memory,
        memory_swap,
        nano_cpus,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        ulimits: Vec::new(),
    })
}

fn resources(a: &CreateArgs) -> Result<Resources, CliError> {
    let mut r = limits(&a.limits)?;
    for u in &a.ulimit {
        let (name, limits) = u
            .split_once('=')
            .ok_or_else(|| usage("--ulimit", u, "NAME=SOFT[:HARD]"))?;
        let (soft, hard) = limits.split_once(':').unwrap_or((limits, limits));
        let parse = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| usage("--ulimit", u, "NAME=SOFT[:HARD] with numbers"))
        };
        const KNOWN: &[&str] = &[
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
            "as",
        ];
        if !KNOWN.contains(&name) {
            return Err(usage("--ulimit", u, "a limit name such as nofile or nproc"));
        }
        r.ulimits.push((name.into(), parse(soft)?, parse(hard)?));
    }
    Ok(r)
}

/// The request `run` and `create` make.
fn request(a: &CreateArgs, auto_remove: bool) -> Result<CreateRequest, CliError> {
    let restart = RestartPolicy::parse(&a.restart).ok_or_else(|| {
        usage(
            "--restart",
            &a.restart,
            "no, on-failure[:N], always or unless-stopped",
        )
    })?;
    if auto_remove && restart != RestartPolicy::No {
        return Err(CliError::Usage(
            "Conflicting options: --restart and --rm".into(),
        ));
    }
    let mut env = Vec::new();
    for file in &a.env_file {
        env.extend(env_file(file)?);
    }
    for e in &a.env {
        env.push(if e.contains('=') {
            e.clone()
        } else {
            format!("{e}={}", std::env::var(e).unwrap_or_default())
        });
    }
    let mut labels = std::collections::BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_owned(), v.to_owned());
    }
    let mut binds = a
        .volume
        .iter()
        .map(|v| bind(v))
        .collect::<Result<Vec<_>, _>>()?;
    binds.extend(
        a.mount
            .iter()
            .map(|m| mount(m))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let tmpfs = a
        .tmpfs
        .iter()
        .map(|t| {
            let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
            if !dst.starts_with('/') {
                return Err(usage("--tmpfs", t, "an absolute path[:options]"));
            }
            Ok(Tmpfs {
                destination: dst.into(),
                options: opts
                    .split(',')
                    .filter(|o| !o.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let health = match &a.health_cmd {
        Some(cmd) => Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), cmd.clone()],
            interval: a
                .health_interval
                .as_deref()
                .map(|d| duration_ns("--health-interval", d))
                .transpose()?
                .unwrap_or(30_000_000_000),
            timeout: a
                .health_timeout
                .as_deref()
                .map(|d| duration_ns("--health-timeout", d))
                .transpose()?
                .unwrap_or(30_000_000_000),
            retries: a.health_retries.unwrap_or(3),
            start_period: a
                .health_start_period
                .as_deref()
                .map(|d| duration_ns("--health-start-period", d))
                .transpose()?
                .unwrap_or(0),
        }),
        None => None,
    };
    if let Some(signal) = &a.stop_signal {
        bulwark_runtime_signal(signal)?;
    }
    Ok(CreateRequest {
        image: a.image.clone(),
        name: a.name.clone(),
        cmd: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        labels,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        tty: a.tty,
        open_stdin: a.interactive,
        init: a.init,
        restart,
        auto_remove,
        log: log_options(a)?,
        resources: resources(a)?,
        security: security(a)?,
        binds,
        tmpfs,
        network: a.network.clone(),
        net: bulwark_engine::NetworkSettings {
            publish: a.publish.clone(),
            publish_all: a.publish_all,
            exposed: a
                .expose
                .iter()
                .map(|e| {
                    if e.contains('/') {
                        e.clone()
                    } else {
                        format!("{e}/tcp")
                    }
                })
                .collect(),
            ip: a.ip.clone(),
            aliases: a.network_alias.clone(),
            mac: a.mac_address.clone(),
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            extra_hosts: a.add_host.clone(),
        },
        health,
        no_healthcheck: a.no_healthcheck,
    })
}

fn bulwark_runtime_signal(signal: &str) -> Result<(), CliError> {
    bulwark_engine::parse_signal(signal)
        .map(|_| ())
        .map_err(|_| {
            usage(
                "--stop-signal",
                signal,
                "a signal name such as SIGTERM or a number",
            )
        })
}

/// `create` (and `run`'s first half): pulls the image when it is missing.
fn create(
    engine: &Engine,
    a: &CreateArgs,
    auto_remove: bool,
    quiet: bool,
) -> Result<String, CliError> {
    let request = request(a, auto_remove)?;
    if let Err(EngineError::NoSuchImage(_)) = engine.resolve(&a.image) {
        eprintln!(
            "Unable to find image '{}' locally",
            bulwark_engine::ImageName::parse(&a.image)
                .map(|n| n.familiar())
                .unwrap_or_else(|_| a.image.clone())
        );
        let pull = crate::args::PullArgs {
            name: a.image.clone(),
            platform: None,
            quiet,
        };
        // Docker prints the pull's progress on stderr here; its last line (the name) too.
        crate::transfer_cmd::pull_quietly(engine, &pull).map_err(CliError::run)?;
    }
    let created = engine.create_container(&request).map_err(CliError::run)?;
    for warning in &created.warnings {
        eprintln!("WARNING: {warning}");
    }
    Ok(created.id)
}

pub fn create_cmd(engine: &Engine, a: &CreateArgs) -> Result<u8, CliError> {
    println!("{}", create(engine, a, false, false)?);
    Ok(0)
}

pub fn run(engine: &Engine, a: &RunArgs) -> Result<u8, CliError> {
    let id = create(engine, &a.create, a.rm, a.quiet)?;
    if a.detach {
        if let Err(e) = engine.start_container(&id, StartMode::Detached) {
            if a.rm {
                let _ = engine.remove_container(&id, true);
            }
            return Err(CliError::run(e));
        }
        println!("{id}");
        return Ok(0);
    }
    attached(engine, &id, a.create.interactive, a.create.tty, a.rm)
}

/// Starts `id` with this process's stdio attached and returns its exit code.
fn attached(
    engine: &Engine,
    id: &str,
    interactive: bool,
    tty: bool,
    auto_remove: bool,
) -> Result<u8, CliError> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| CliError::Usage(format!("a pipe: {e}")))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin: OwnedFd = if interactive {
        nix::unistd::dup(std::io::stdin().as_fd())
            .map_err(|e| CliError::Usage(format!("stdin: {e}")))?
    } else {
        std::fs::File::open("/dev/null")
            .map_err(CliError::io("opening /dev/null"))?
            .into()
    };
    let size = tty.then(window_size).flatten();
    let raw = (tty && interactive).then(RawTerminal::enter).flatten();
    let started = engine.start_container(
        id,
        StartMode::Attached(Attach {
            stdin,
            stdout: out_w,
            stderr: err_w,
            size,
        }),
    );
    let started = match started {
        Ok(started) => started,
        Err(e) => {
            drop(raw);
            if auto_remove {
                let _ = engine.remove_container(id, true);
            }
            return Err(CliError::run(e));
        }
    };
    // Docker's --sig-proxy: without a terminal (where ^C is input), the signals a user
    // sends this command go to the container.
    if !tty {
        proxy_signals(engine, id);
    }
    let copy = |from: OwnedFd, to: fn() -> Box<dyn Write + Send>| {
        std::thread::spawn(move || {
            let mut from = std::fs::File::from(from);
            let mut to = to();
            let mut buffer = [0u8; 32 * 1024];
            while let Ok(n) = from.read(&mut buffer) {
                if n == 0
                    || to
                        .write_all(&buffer[..n])
                        .and_then(|()| to.flush())
                        .is_err()
                {
                    break;
                }
            }
        })
    };
    let out = copy(out_r, || Box::new(std::io::stdout()));
    let err = copy(err_r, || Box::new(std::io::stderr()));
    let ended = started.ended();
    let _ = out.join();
    let _ = err.join();
    drop(raw);
    let code = match ended {
        bulwark_engine::Ended::Detached => {
            eprintln!("\nread escape sequence");
            return Ok(0);
        }
        bulwark_engine::Ended::Exited(code) => code,
        bulwark_engine::Ended::Unknown => engine.wait_container(id).map_err(CliError::run)?,
    };
    if auto_remove {
        // The monitor removes the container as it ends; `run --rm` returns after that.
        engine.wait_removed(id, std::time::Duration::from_secs(120));
    }
    Ok(code.clamp(0, 255) as u8)
}

/// Forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to this process to the container,
/// from a thread of its own (blocked here first, so the threads started after this one
/// leave them to it).
fn proxy_signals(engine: &Engine, id: &str) {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(signal);
    }
    if set.thread_block().is_err() {
        return;
    }
    let Ok(fd) = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC) else {
        let _ = set.thread_unblock();
        return;
    };
    let (engine, id) = (engine.clone(), id.to_owned());
    std::thread::spawn(move || {
        while let Ok(Some(info)) = fd.read_signal() {
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                let _ = engine.kill_container(&id, Some(signal.as_str()));
            }
        }
    });
}

fn window_size() -> Option<(u16, u16)> {
    bulwark_engine::window_size(std::io::stdout().as_fd())
}

/// The client's terminal in raw mode while attached to a container's terminal.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<RawTerminal> {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// Runs `each` on every container named; prints what it returns; reports each failure.
/// Runs `each` for every name, printing its line or its error; fails if any failed.
pub(crate) fn for_each(
    containers: &[String],
    mut each: impl FnMut(&str) -> Result<Option<String>, EngineError>,
) -> Result<u8, CliError> {
    let mut failed = false;
    for what in containers {
        match each(what) {
            Ok(Some(line)) => println!("{line}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(0)
    }
}

pub fn start(engine: &Engine, a: &StartArgs) -> Result<u8, CliError> {
    if a.attach {
        let [one] = a.containers.as_slice() else {
            return Err(CliError::Usage(
                "you cannot start and attach multiple containers at once".into(),
            ));
        };
        let dir = engine.container(one)?;
        let record = engine.inspect_container(&dir.id)?;
        let tty = record["Config"]["Tty"].as_bool().unwrap_or(false);
        return attached(engine, &dir.id, false, tty, false);
    }
    for_each(&a.containers, |c| {
        engine
            .start_container(c, StartMode::Detached)
            .map(|_| Some(c.to_owned()))
    })
}

pub fn stop(engine: &Engine, a: &StopArgs) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine
            .stop_container(c, a.time, a.signal.as_deref())
            .map(|()| Some(c.to_owned()))
    })
}

pub fn restart(engine: &Engine, a: &StopArgs) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine.stop_container(c, a.time, a.signal.as_deref())?;
        engine
            .start_container(c, StartMode::Detached)
            .map(|_| Some(c.to_owned()))
    })
}

pub fn kill(engine: &Engine, a: &KillArgs) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine
            .kill_container(c, a.signal.as_deref())
            .map(|()| Some(c.to_owned()))
    })
}

pub fn rm(engine: &Engine, a: &RmArgs) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine
            .remove_container(c, a.force)
            .map(|_| Some(c.to_owned()))
    })
}

pub fn wait(engine: &Engine, a: &ContainersArgs) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine.wait_container(c).map(|code| Some(code.to_string()))
    })
}

pub fn pause(engine: &Engine, a: &ContainersArgs, pause: bool) -> Result<u8, CliError> {
    for_each(&a.containers, |c| {
        engine
            .pause_container(c, pause)
            .map(|()| Some(c.to_owned()))
    })
}

pub fn rename(engine: &Engine, a: &RenameArgs) -> Result<u8, CliError> {
    engine.rename_container(&a.container, &a.new_name)?;
    Ok(0)
}

/// Docker's prompt before a prune: true when the user answers y.
pub(crate) fn confirm(warning: &str) -> bool {
    eprint!("WARNING! {warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    answer.trim().eq_ignore_ascii_case("y")
}

pub fn prune(engine: &Engine, a: &PruneArgs) -> Result<u8, CliError> {
    if !a.force && !confirm("This will remove all stopped containers.") {
        return Ok(0);
    }
    let (removed, reclaimed) = engine.prune_containers()?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        removed.iter().for_each(|id| println!("{id}"));
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(reclaimed, 3)
    );
    Ok(0)
}

pub fn inspect(engine: &Engine, a: &InspectArgs) -> Result<u8, CliError> {
    show_inspected(a, |what| {
        engine.inspect_container(what).map_err(|e| e.to_string())
    })
}

/// `inspect`: containers first, then images, as Docker looks them up.
pub fn inspect_any(engine: &Engine, a: &InspectArgs) -> Result<u8, CliError> {
    show_inspected(a, |what| {
        engine
            .inspect_container(what)
            .or_else(|_| engine.inspect(what))
            .map_err(|_| format!("No such object: {what}"))
    })
}

/// Prints what `look` finds for each name (as a JSON array, or through `--format`) and
/// each failure; fails if one did.
pub(crate) fn show_inspected(
    a: &InspectArgs,
    look: impl Fn(&str) -> Result<Value, String>,
) -> Result<u8, CliError> {
    let template = a
        .format
        .as_deref()
        .map(|f| Template::parse(f, ""))
        .transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    for what in &a.containers {
        match look(what) {
            Ok(v) => found.push(v),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    match template {
        Some(t) => found.iter().for_each(|v| println!("{}", t.render(v))),
        None => println!("{}", go_json_pretty(&Value::Array(found))),
    }
    if failed {
        Err(CliError::Reported)
    } else {
        Ok(0)
    }
}

pub fn ps(engine: &Engine, a: &PsArgs) -> Result<u8, CliError> {
    let mut all = a.all;
    let mut filters: Vec<(String, String)> = Vec::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| usage("--filter", f, "KEY=VALUE"))?;
        if !matches!(
            k,
            "name" | "id" | "status" | "label" | "ancestor" | "exited"
        ) {
            return Err(usage(
                "--filter",
                f,
                "name=, id=, status=, label=, ancestor= or exited=",
            ));
        }
        if k == "status" || k == "exited" {
            all = true;
        }
        filters.push((k.into(), v.into()));
    }
    let now = SystemTime::now();
    let list = engine.list_containers(all).map_err(CliError::from)?;
    let rows: Vec<Map<String, Value>> = list
        .iter()
        .filter(|c| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "name" => c.record.name.contains(v.as_str()),
                "id" => c.record.id.starts_with(v.as_str()),
                "status" => c.state.status.name() == v,
                "exited" => c.state.status == bulwark_engine::Status::Exited && c.state.exit_code.to_string() == *v,
                "ancestor" => c.record.image == *v || c.record.image_id.contains(v.as_str()),
                _ => {
                    let (lk, lv) = v.split_once('=').map_or((v.as_str(), None), |(a, b)| (a, Some(b)));
                    c.record.run.labels.get(lk).is_some_and(|x| lv.is_none_or(|lv| lv == x))
                }
            })
        })
        .map(|c| {
            let id = if a.no_trunc { c.record.id.clone() } else { c.record.id[..12].to_owned() };
            let mut command = c.command();
            if !a.no_trunc && command.chars().count() > 20 {
                command = command.chars().take(19).collect::<String>() + "…";
            }
            let labels = c.record.run.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let row = json!({
                "ID": id,
                "Image": c.record.image,
                "Command": format!("\"{command}\""),
                "CreatedAt": c.record.created,
                "RunningFor": humantime::parse_rfc3339_weak(&c.record.created).ok().and_then(|t| now.duration_since(t).ok()).map(|d| format!("{} ago", bulwark_engine::human_duration(d))).unwrap_or_default(),
                "Status": c.status_text(now),
                "State": c.state.status.name(),
                "Ports": c.ports_text(),
                "Names": c.record.name,
                "Labels": labels,
                "Mounts": c.record.binds.iter().map(|b| b.source.clone()).collect::<Vec<_>>().join(","),
                "Networks": c.record.network,
                "Size": "",
            });
            match row {
                Value::Object(m) => m,
                _ => unreachable!("a JSON object"),
            }
        })
        .collect();
    let default =
        "{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
    let template = match (&a.format, a.quiet) {
        (_, true) => Template::parse("{{.ID}}", default)?,
        (Some(f), false) => Template::parse(f, default)?,
        (None, false) => Template::parse("table", default)?,
    };
    if let Some(first) = rows.first() {
        template.check(first, "containers")?;
    }
    let mut lines = Vec::new();
    if template.table {
        let title = |field: &str| match field {
            "ID" => "CONTAINER ID".to_owned(),
            "RunningFor" => "CREATED".to_owned(),
            "CreatedAt" => "CREATED AT".to_owned(),
            other => other.to_ascii_uppercase(),
        };
        lines.push(template.header(&title));
    }
    lines.extend(rows.into_iter().map(|r| template.render(&Value::Object(r))));
    if template.table {
        print!("{}", tabulate(&lines));
    } else {
        lines.iter().for_each(|l| println!("{l}"));
    }
    Ok(0)
}

fn log_time(flag: &str, text: &str) -> Result<SystemTime, CliError> {
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Ok(t);
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs_f64(secs));
    }
    humantime::parse_duration(text)
        .map(|d| SystemTime::now() - d)
        .map_err(|_| {
            usage(
                flag,
                text,
                "a time such as 2026-12-06T13:23:37Z, a Unix time or a duration such as 42m",
            )
        })
}

pub fn logs(engine: &Engine, a: &LogsArgs) -> Result<u8, CliError> {
    let tail = match a.tail.as_str() {
        "all" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| usage("--tail", n, "a number of lines or all"))?,
        ),
    };
    let request = LogRequest {
        filter: LogFilter {
            since: a
                .since
                .as_deref()
                .map(|s| log_time("--since", s))
                .transpose()?,
            until: a
                .until
                .as_deref()
                .map(|s| log_time("--until", s))
                .transpose()?,
            tail,
        },
        follow: a.follow,
    };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr());
    engine.container_logs(&a.container, &request, |entry| {
        let prefix = if a.timestamps {
            format!("{} ", entry.time)
        } else {
            String::new()
        };
        let line = format!("{prefix}{}", entry.log);
        let written = match entry.stream {
            Stream::Stdout => out.write_all(line.as_bytes()).and_then(|()| out.flush()),
            Stream::Stderr => err.write_all(line.as_bytes()),
        };
        written.is_ok()
    })?;
    Ok(0)
}

pub fn exec(engine: &Engine, a: &ExecArgs) -> Result<u8, CliError> {
    let tty = a.tty.then(|| window_size().unwrap_or((24, 80)));
    let request = ExecRequest {
        cmd: a.command.clone(),
        env: a.env.clone(),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        interactive: a.interactive,
        tty,
        detach: a.detach,
        privileged: a.privileged,
    };
    let execution = engine
        .exec_container(&a.container, &request)
        .map_err(|e| match e {
            EngineError::InvalidArgument(_)
            | EngineError::Conflict(_)
            | EngineError::Container(_) => CliError::from(e),
            e => CliError::run(e),
        })?;
    if a.detach {
        return Ok(0);
    }
    if let Some(master) = &execution.master {
        let _raw = a.interactive.then(RawTerminal::enter).flatten();
        relay_terminal(master, a.interactive);
    }
    let code = engine.wait_exec(&execution)?;
    Ok(code.clamp(0, 255) as u8)
}

/// Copies the terminal's output to stdout (and, with `input`, stdin to the terminal)
/// until the terminal closes.
fn relay_terminal(master: &OwnedFd, input: bool) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let stdin = std::io::stdin();
    let mut stdin_open = input;
    let mut buffer = [0u8; 16 * 1024];
    let mut out = std::io::stdout();
    loop {
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let master_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let stdin_ready = stdin_open
            && fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        if master_ready {
            match nix::unistd::read(master, &mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let _ = out.write_all(&buffer[..n]).and_then(|()| out.flush());
                }
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_fd(), &mut buffer) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = nix::unistd::write(master, &buffer[..n]);
                }
            }
        }
    }
}

pub fn top(engine: &Engine, a: &TopArgs) -> Result<u8, CliError> {
    let rows = engine.top_container(&a.container)?;
    let mut lines = vec!["UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD".to_owned()];
    lines.extend(rows.iter().map(|r| r.join("\t")));
    print!("{}", tabulate(&lines));
    Ok(0)
}

pub fn stats(engine: &Engine, a: &StatsArgs) -> Result<u8, CliError> {
    loop {
        let rows = engine.container_stats(&a.containers, std::time::Duration::from_millis(500))?;
        let mut lines = vec![
            "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"
                .to_owned(),
        ];
        for r in &rows {
            let id = if a.no_trunc {
                r.id.clone()
            } else {
                r.id[..12].to_owned()
            };
            let percent = if r.memory_limit > 0 {
                r.memory_usage as f64 / r.memory_limit as f64 * 100.0
            } else {
                0.0
            };
            lines.push(format!(
                "{id}\t{}\t{:.2}%\t{} / {}\t{percent:.2}%\t--\t--\t{}",
                r.name,
                r.cpu_percent,
                binary_size(r.memory_usage),
                binary_size(r.memory_limit),
                r.pids
            ));
        }
        if !a.no_stream {
            // Each refresh replaces the last, as docker stats does.
            print!("\x1b[2J\x1b[H");
        }
        print!("{}", tabulate(&lines));
        let _ = std::io::stdout().flush();
        if a.no_stream {
            return Ok(0);
        }
    }
}

/// Sizes as docker stats shows them (binary units: 1.5MiB).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.3}{}", UNITS[unit]).replace(".000", "")
    }
}

pub fn update(engine: &Engine, a: &UpdateArgs) -> Result<u8, CliError> {
    let limits = limits(&a.limits)?;
    let request = bulwark_engine::UpdateRequest {
        memory: limits.memory,
        memory_swap: limits.memory_swap,
        nano_cpus: limits.nano_cpus,
        cpu_shares: limits.cpu_shares,
        pids_limit: limits.pids_limit,
        restart: a
            .restart
            .as_deref()
            .map(|r| {
                RestartPolicy::parse(r).ok_or_else(|| {
                    usage(
                        "--restart",
                        r,
                        "no, on-failure[:N], always or unless-stopped",
                    )
                })
            })
            .transpose()?,
    };
    for_each(&a.containers, |c| {
        engine
            .update_container(c, &request)
            .map(|()| Some(c.to_owned()))
    })
}

pub fn boot(engine: &Engine) -> Result<u8, CliError> {
    let bulwark_engine::Booted { started, failed } = engine.boot()?;
    for id in &started {
        println!("{id}");
    }
    for (id, e) in &failed {
        eprintln!("Error: {id}: {e}");
    }
    if failed.is_empty() {
        Ok(0)
    } else {
        Err(CliError::Reported)
    }
}

/// `CONTAINER:PATH` or a host path (one starting with `/` or `.` is always the host's).
fn copy_end(text: &str) -> bulwark_engine::CopyEnd {
    match text.split_once(':') {
        Some((container, path))
            if !container.is_empty() && !text.starts_with('/') && !text.starts_with('.') =>
        {
            let path = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("/{path}")
            };
            bulwark_engine::CopyEnd::Container(container.to_owned(), path.into())
        }
        _ => bulwark_engine::CopyEnd::Host(text.into()),
    }
}

pub fn cp(engine: &Engine, a: &CpArgs) -> Result<u8, CliError> {
    engine.copy(&copy_end(&a.source), &copy_end(&a.destination))?;
    Ok(0)
}

pub fn events(engine: &Engine, a: &EventsArgs) -> Result<u8, CliError> {
    let mut filters = Vec::new();
    for f in &a.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| usage("--filter", f, "KEY=VALUE"))?;
        if !matches!(k, "container" | "event" | "image" | "type") {
            return Err(usage("--filter", f, "container=, event=, image= or type="));
        }
        filters.push((k.to_owned(), v.to_owned()));
    }
    let filter = bulwark_engine::EventFilter {
        since: a
            .since
            .as_deref()
            .map(|s| log_time("--since", s))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| log_time("--until", s))
            .transpose()?,
        filters,
    };
    let template = a
        .format
        .as_deref()
        .map(|f| Template::parse(f, ""))
        .transpose()?;
    let mut out = std::io::stdout().lock();
    engine.events(&filter, |e| {
        let line = match &template {
            Some(t) => t.render(&json!({
                "Type": "container", "Action": e.action, "Status": e.action, "ID": e.id, "id": e.id,
                "Actor": {"ID": e.id, "Attributes": e.attributes}, "time": e.time, "TimeNano": e.time,
            })),
            None => {
                let attrs: Vec<String> = e.attributes.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} container {} {} ({})", e.time, e.action, e.id, attrs.join(", "))
            }
        };
        writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
    })?;
    Ok(0)
}

pub fn attach(engine: &Engine, a: &AttachArgs) -> Result<u8, CliError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    if a.detach_keys != "ctrl-p,ctrl-q" {
        return Err(usage("--detach-keys", &a.detach_keys, "ctrl-p,ctrl-q"));
    }
    let mut attachment = engine.attach(&a.container)?;
    let input = attachment.tty && !a.no_stdin;
    let _raw = (input && std::io::IsTerminal::is_terminal(&std::io::stdin()))
        .then(RawTerminal::enter)
        .flatten();
    if let (true, Some((rows, cols))) = (attachment.tty, window_size()) {
        let _ = attachment.send_size(rows, cols);
    }
    let stdin = std::io::stdin();
    let mut stdin_open = input;
    let mut buffer = Vec::new();
    let mut keys = [0u8; 1024];
    let mut after_ctrl_p = false;
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    loop {
        let socket = attachment
            .stream
            .try_clone()
            .map_err(CliError::io("the attach socket"))?;
        let mut fds = vec![PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        if poll(&mut fds, PollTimeout::NONE).is_err() {
            continue;
        }
        let output_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let input_ready = stdin_open
            && fds
                .get(1)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty());
        drop(fds);
        if output_ready {
            match attachment.receive(&mut buffer) {
                Ok(Some(Stream::Stderr)) => {
                    let _ = err.write_all(&buffer);
                }
                Ok(Some(Stream::Stdout)) => {
                    let _ = out.write_all(&buffer).and_then(|()| out.flush());
                }
                Ok(None) | Err(_) => break,
            }
        }
        if input_ready {
            let n = match nix::unistd::read(stdin.as_fd(), &mut keys) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    continue;
                }
                Ok(n) => n,
            };
            // ctrl-p then ctrl-q detaches and leaves the container running.
            for &key in &keys[..n] {
                if after_ctrl_p && key == 0x11 {
                    drop(_raw);
                    eprintln!("\nread escape sequence");
                    return Ok(0);
                }
                after_ctrl_p = key == 0x10;
            }
            let _ = attachment.send_input(&keys[..n]);
        }
    }
    drop(_raw);
    let code = engine
        .wait_container(&attachment.id)
        .map_err(CliError::from)?;
    Ok(code.clamp(0, 255) as u8)
}
