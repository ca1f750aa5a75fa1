//! Networking without root: `pasta` (Debian's passt) gives a container's namespace a tap
//! interface with the host's addresses and routes, carries its traffic through ordinary
//! sockets of the user's, and forwards published ports into it. It runs in the
//! background until the namespace goes.
use std::path::Path;
use std::process::{Command, Stdio};

use crate::ports::{PortMapping, Protocol};
use crate::NetworkError;

/// Where pasta is, if installed.
pub fn program() -> Option<&'static str> {
    ["/usr/bin/pasta", "/usr/local/bin/pasta", "/bin/pasta"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// pasta's `-t`/`-u` value for one mapping: `[ADDR/]HOST:CONTAINER`.
fn spec(m: &PortMapping) -> String {
    match m.host_ip {
        Some(ip) => format!("{ip}/{}:{}", m.host_port, m.container_port),
        None => format!("{}:{}", m.host_port, m.container_port),
    }
}

/// Starts pasta for the namespace pinned at `netns` (it daemonizes once the namespace is
/// set up) with `ports` forwarded; its pid goes to `pid_file`.
pub fn start(
    netns: &Path,
    ports: &[PortMapping],
    log: &Path,
    pid_file: &Path,
) -> Result<(), NetworkError> {
    stop(pid_file, netns);
    let program = program().ok_or_else(|| {
        NetworkError::Invalid(
            "--network pasta: pasta is not installed (Debian's passt package)".into(),
        )
    })?;
    let mut command = Command::new(program);
    command
        .args(["--config-net", "--quiet", "--netns"])
        .arg(netns)
        .arg("--log-file")
        .arg(log)
        .arg("--pid")
        .arg(pid_file);
    let (tcp, udp): (Vec<&PortMapping>, Vec<&PortMapping>) =
        ports.iter().partition(|m| m.protocol == Protocol::Tcp);
    for (flag, list) in [("-t", &tcp), ("-u", &udp)] {
        match list.is_empty() {
            true => command.args([flag, "none"]),
            false => command
                .arg(flag)
                .arg(list.iter().map(|m| spec(m)).collect::<Vec<_>>().join(",")),
        };
    }
    let out = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| NetworkError::Other(format!("cannot run {program}: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stderr);
        let logged = std::fs::read_to_string(log).unwrap_or_default();
        return Err(NetworkError::Other(format!(
            "pasta failed ({}): {} {}",
            out.status,
            said.trim(),
            logged.lines().last().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Ends the pasta of `netns` (found by its pid file in the container's directory, and
/// checked to be a pasta). It would otherwise outlive the container: it holds the
/// namespace it watches.
pub fn stop(pid_file: &Path, netns: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    else {
        return;
    };
    // Its command line may read empty from another user namespace (pasta makes itself
    // undumpable); its name (pasta runs as passt or passt.avx2) is always there.
    let _ = netns;
    let ours = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.starts_with("pasta") || comm.starts_with("passt"));
    if ours {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::path::Path::new(&format!("/proc/{pid}")).exists()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    let _ = std::fs::remove_file(pid_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let m = PortMapping {
            host_ip: None,
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        assert_eq!(spec(&m), "8080:80");
        let m = PortMapping {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            ..m
        };
        assert_eq!(spec(&m), "127.0.0.1/8080:80");
    }
}
