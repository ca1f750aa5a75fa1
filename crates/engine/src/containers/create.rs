//! `create`: a container record from an image and the user's flags (merged as Docker
//! merges them), a root filesystem for it, and its OCI bundle. Nothing runs yet; what a
//! failure made is removed again.
use std::collections::BTreeMap;

use bulwark_container::{
    Bind, ContainerDir, ContainerRecord, HealthConfig, LogOptions, Resources, RestartPolicy,
    RunConfig, RunState, Security, Tmpfs,
};
use bulwark_store::Overlay;
use serde_json::Value;

use crate::{Engine, EngineError};

/// What `create` and `run` are asked for: Docker's flags, already parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub image: String,
    pub name: Option<String>,
    /// The arguments after the image (replace its `Cmd`).
    pub cmd: Vec<String>,
    /// `--entrypoint` (an empty string clears the image's).
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub tty: bool,
    pub open_stdin: bool,
    pub init: bool,
    pub restart: RestartPolicy,
    pub auto_remove: bool,
    pub log: LogOptions,
    pub resources: Resources,
    pub security: Security,
    pub binds: Vec<Bind>,
    pub tmpfs: Vec<Tmpfs>,
    /// `bridge` (the default as root), a network's name, `none` (the default without
    /// root), `host` or `container:NAME`.
    pub network: Option<String>,
    /// `-p`, `-P`, `--ip`, `--dns`, `--add-host`...
    pub net: bulwark_container::NetworkSettings,
    pub health: Option<HealthConfig>,
    pub no_healthcheck: bool,
}

/// A created container.
#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub name: String,
    /// What runs otherwise than asked (print as warnings).
    pub warnings: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Docker's merge: the flags over the image's config.
fn merge(request: &CreateRequest, image: &Value, id: &str) -> Result<RunConfig, EngineError> {
    let entrypoint = match &request.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => strings(&image["Entrypoint"]),
    };
    // A new entrypoint drops the image's command, as Docker does.
    let cmd = if !request.cmd.is_empty() {
        request.cmd.clone()
    } else if request.entrypoint.is_some() {
        Vec::new()
    } else {
        strings(&image["Cmd"])
    };
    if entrypoint.is_empty() && cmd.is_empty() {
        return Err(EngineError::InvalidArgument("No command specified".into()));
    }
    let mut env = strings(&image["Env"]);
    for e in &request.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|old| old.split_once('=').map_or(old.as_str(), |(k, _)| k) != key);
        env.push(e.clone());
    }
    let mut labels: BTreeMap<String, String> = image["Labels"]
        .as_object()
        .map(|l| {
            l.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(request.labels.clone());
    let text = |key: &str| image[key].as_str().unwrap_or_default().to_owned();
    Ok(RunConfig {
        entrypoint,
        cmd,
        env,
        working_dir: request
            .working_dir
            .clone()
            .unwrap_or_else(|| text("WorkingDir")),
        user: request.user.clone().unwrap_or_else(|| text("User")),
        hostname: request
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_owned()),
        labels,
        stop_signal: request
            .stop_signal
            .clone()
            .or_else(|| image["StopSignal"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: request.stop_timeout,
        tty: request.tty,
        open_stdin: request.open_stdin,
        init: request.init,
    })
}

/// The image's health check unless the flags give one (or `--no-healthcheck`).
fn health(request: &CreateRequest, image: &Value) -> Option<HealthConfig> {
    if request.no_healthcheck {
        return None;
    }
    if request.health.is_some() {
        return request.health.clone();
    }
    let h = &image["Healthcheck"];
    let test = strings(&h["Test"]);
    if test.is_empty() || test[0] == "NONE" {
        return None;
    }
    let ns = |key: &str, default: u64| h[key].as_u64().filter(|n| *n > 0).unwrap_or(default);
    Some(HealthConfig {
        test,
        interval: ns("Interval", 30_000_000_000),
        timeout: ns("Timeout", 30_000_000_000),
        retries: h["Retries"].as_u64().filter(|n| *n > 0).unwrap_or(3) as u32,
        start_period: ns("StartPeriod", 0),
    })
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, EngineError> {
    use std::io::Read;
    let mut raw = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| EngineError::Other(format!("reading /dev/urandom: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// A name as Docker makes them: an adjective and a noun.
fn random_name() -> Result<String, EngineError> {
    const FIRST: &[&str] = &[
        "brave", "calm", "eager", "keen", "bold", "quiet", "swift", "steady", "wise", "sharp",
        "gentle", "proud", "lucid", "stoic", "vivid", "nimble",
    ];
    const SECOND: &[&str] = &[
        "hopper", "lovelace", "turing", "noether", "curie", "ritchie", "thompson", "liskov",
        "hamilton", "dijkstra", "knuth", "shannon", "babbage", "goldberg", "perlman", "allen",
    ];
    let hex = random_hex(3)?;
    let n = u32::from_str_radix(&hex, 16).unwrap_or(0) as usize;
    Ok(format!(
        "{}_{}",
        FIRST[n % FIRST.len()],
        SECOND[(n / 16) % SECOND.len()]
    ))
}

impl Engine {
    /// `create`: checks the request, then makes the container's directory, name, root
    /// filesystem and bundle. Nothing is left behind when a step fails.
    pub fn create_container(&self, request: &CreateRequest) -> Result<Created, EngineError> {
        let image = self.resolve(&request.image)?;
        let image_config = self.config_json(&image)?;
        let image_config = &image_config["config"];
        let id = random_hex(32)?;
        let run = merge(request, image_config, &id)?;
        for bind in &request.binds {
            if !std::path::Path::new(&bind.source).exists() {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    bind.source
                )));
            }
        }
        if request.init && !self.config.init_path.is_file() {
            return Err(EngineError::InvalidArgument(format!(
                "--init: no init program at {} (install Debian's tini, or set init-path in the engine's config)",
                self.config.init_path.display()
            )));
        }
        let network = request
            .network
            .clone()
            .unwrap_or_else(|| self.default_network());
        let mut net = request.net.clone();
        if let Some(exposed) = image_config["ExposedPorts"].as_object() {
            net.exposed.extend(exposed.keys().cloned());
        }
        let network = self.check_network(&network, &net)?;
        let mut warnings = Vec::new();
        let r = &request.resources;
        if self.config.rootless
            && (r.memory.is_some()
                || r.nano_cpus.is_some()
                || r.cpu_shares.is_some()
                || r.pids_limit.is_some())
        {
            warnings.push("without root there is no cgroup to apply --memory, --cpus, --cpu-shares or --pids-limit: they are not applied (--ulimit is)".into());
        }
        if request.security.privileged {
            warnings.push("--privileged: the container gets every capability, no seccomp filter, no masked paths and no Landlock; it can take the host".into());
        }
        let containers = self.containers();
        containers.ensure()?;
        self.reconcile_containers();
        let dir = containers.dir(&id);
        std::fs::create_dir(&dir.dir).map_err(bulwark_container::ContainerError::io(
            "cannot create",
            &dir.dir,
        ))?;
        // Held until the container is complete: a command that finds a half-made one
        // unlocked knows its maker was killed.
        let _making = dir.lock()?;
        let name = match &request.name {
            Some(name) => name.strip_prefix('/').unwrap_or(name).to_owned(),
            None => String::new(),
        };
        let claimed = match name.is_empty() {
            false => containers
                .claim_name(&name, &id)
                .map(|()| name.clone())
                .map_err(EngineError::from),
            // A generated name another container has: another one, with a number after a
            // few tries (as Docker does).
            true => (|| {
                let mut last = None;
                for attempt in 0..20 {
                    let mut candidate = random_name()?;
                    if attempt >= 3 {
                        candidate = format!("{candidate}{}", attempt);
                    }
                    match containers.claim_name(&candidate, &id) {
                        Ok(()) => return Ok(candidate),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last
                    .map(EngineError::from)
                    .unwrap_or_else(|| EngineError::Other("no free name".into())))
            })(),
        };
        let name = match claimed {
            Ok(name) => name,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir.dir);
                return Err(e);
            }
        };
        let made = (|| {
            let record = ContainerRecord {
                id: id.clone(),
                name: name.clone(),
                image: request.image.clone(),
                image_id: image.id.to_string(),
                created: bulwark_container::now(),
                run,
                restart: request.restart,
                auto_remove: request.auto_remove,
                log: request.log.clone(),
                resources: request.resources.clone(),
                security: request.security.clone(),
                binds: request.binds.clone(),
                tmpfs: request.tmpfs.clone(),
                network,
                net,
                health: health(request, image_config),
                engine_binary: std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "bulwark".into()),
            };
            dir.write_record(&record)?;
            dir.write_state(&RunState::created())?;
            let mounted = {
                let _lock = self.store.lock()?;
                self.store.mount(&id, &image, Overlay::Auto)?
            };
            let files = self.join(&record, &dir)?;
            let mut config =
                super::spec::oci_config(&record, &mounted.merged, self.config.rootless)?;
            super::spec::add_network(&mut config, &files);
            if record.run.init {
                super::spec::add_init(&mut config, &self.config.init_path);
            }
            let bundle = dir.bundle();
            std::fs::create_dir(&bundle).map_err(bulwark_container::ContainerError::io(
                "cannot create",
                &bundle,
            ))?;
            let text = serde_json::to_vec_pretty(&config).expect("a config always serializes");
            bulwark_container::write_atomic(&bundle.join("config.json"), &text)?;
            Ok::<(), EngineError>(())
        })();
        if let Err(e) = made {
            self.discard(&dir, &name);
            return Err(e);
        }
        self.event("create", &dir, &[]);
        Ok(Created { id, name, warnings })
    }

    /// Removes what `create` made for a container (its mount, name and directory).
    pub(crate) fn discard(&self, dir: &ContainerDir, name: &str) {
        self.leave(dir);
        if let Ok(_lock) = self.store.lock() {
            match self.store.mount_record(&dir.id) {
                Ok(Some(_)) => {
                    let _ = self.store.umount(&dir.id);
                }
                _ => {
                    let _ = self.store.remove_unfinished_mount(&dir.id);
                }
            }
        }
        self.containers().release_name(name, &dir.id);
        let _ = std::fs::remove_dir_all(&dir.dir);
    }
}
