//! Daemons the engine tests start (containerd, dockerd, the registry): each on its own
//! unix socket or a 127.0.0.1 port with its own directories, stopped by its own pid when
//! the guard drops, also when a test panics; and the network links an engine creates.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clean::processes_mentioning;
use crate::process::{default_timeout, run_captured};

/// A running daemon; SIGTERM, then SIGKILL, on drop.
#[derive(Debug)]
pub struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
    /// Processes left by the daemon that name this path (containerd shims) are killed
    /// once it has stopped.
    leftovers_naming: Option<String>,
}

impl Daemon {
    /// Starts `command` with its output in `log`, and waits until `ready` holds.
    pub fn start(
        name: &str,
        command: &mut Command,
        log: &Path,
        ready: impl Fn() -> bool,
    ) -> Daemon {
        let out = std::fs::File::create(log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let daemon = Daemon {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
            leftovers_naming: None,
        };
        let deadline = Instant::now() + Duration::from_secs(180);
        while !ready() {
            if Instant::now() > deadline {
                panic!("{name} did not become ready:\n{}", daemon.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        daemon
    }

    /// Also kill, after the daemon stops, processes naming `path` (shims outlive
    /// containerd by design).
    pub fn kill_leftovers_naming(&mut self, path: &Path) {
        self.leftovers_naming = Some(path.display().to_string());
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Some(needle) = &self.leftovers_naming {
            for (pid, _) in processes_mentioning(needle) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// Network links an engine creates (its bridge), deleted on drop if they were not there
/// when the guard was made. Make it before the daemon, so it drops after it.
#[derive(Debug)]
pub struct Links(Vec<String>);

impl Links {
    pub fn created_from_now(links: &[&str]) -> Links {
        Links(
            links
                .iter()
                .filter(|l| !link_exists(l))
                .map(|l| l.to_string())
                .collect(),
        )
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for link in self.0.iter().filter(|l| link_exists(l)) {
            let _ = run_captured(
                Command::new("ip").args(["link", "delete", link]),
                default_timeout(),
            );
        }
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether something accepts connections on this unix socket.
pub fn socket_ready(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path).is_ok()
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Debian's `docker-registry` on 127.0.0.1, with its storage in `dir`, holding the test
/// image pushed with skopeo.
#[derive(Debug)]
pub struct Registry {
    pub address: String,
    _daemon: Daemon,
}

impl Registry {
    pub fn start_with(dir: &Path, archive: &Path, name: &str) -> Registry {
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
                dir.join("registry").display()
            ),
        )
        .unwrap();
        let daemon = Daemon::start(
            "docker-registry",
            Command::new("docker-registry").arg("serve").arg(&config),
            &dir.join("registry.log"),
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        let pushed = run_captured(
            Command::new("skopeo")
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("oci-archive:{}", archive.display()))
                .arg(format!("docker://{address}/{name}")),
            default_timeout(),
        );
        assert!(pushed.success(), "pushing the test image: {pushed}");
        Registry {
            address,
            _daemon: daemon,
        }
    }
}
