//! Debian's `docker-registry` on 127.0.0.1, started once per test binary in three forms
//! over one storage directory: without authentication, behind basic authentication
//! (htpasswd) and behind bearer tokens from a small token service this module runs.
//! Images are uploaded over the distribution API, so their bytes are exactly the ones
//! the tests built; [`Registry::blob_file`] reaches into the storage to damage a blob.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::images::{digest, index, Format, Image};

/// The user and password both authenticated registries accept.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "s3cret";
/// bcrypt of [`PASSWORD`] (docker-registry takes bcrypt only), made for these tests.
const HTPASSWD: &str = "alice:$2b$04$9p1.zw22aJkbAzZiuJO03uOIS/IJB8slpC6klku2fzwVqZ3dfqTmO\n";

/// One registry process.
#[derive(Debug)]
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    storage: PathBuf,
    log: PathBuf,
}

/// The three registries of a test binary.
#[derive(Debug)]
pub struct Registries {
    pub plain: Registry,
    pub basic: Registry,
    pub token: Registry,
}

/// `temp_dir()/bulwark-registry-<pid>`: the registries' files, which live as long as the
/// test binary. Those of test binaries that have ended are removed here.
fn registry_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("bulwark-registry-") else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tmp.join(format!("bulwark-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).expect("making the registry directory");
    dir
}

/// The registries, started on first use. They live as long as the test binary: their
/// processes get SIGKILL when it exits (a parent-death signal tied to a thread that
/// never ends).
pub fn registries() -> &'static Registries {
    static REGISTRIES: OnceLock<Registries> = OnceLock::new();
    REGISTRIES.get_or_init(|| {
        which("docker-registry", "docker-registry");
        which("openssl", "openssl");
        let dir = registry_dir();
        let storage = dir.join("storage");
        std::fs::create_dir(&storage).expect("making the registry storage");
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, HTPASSWD).expect("writing htpasswd");
        let token_port = free_port();
        let cert = start_token_service(&dir, token_port);
        let plain = Registry::start(&dir, "plain", &storage, "");
        let basic = Registry::start(
            &dir,
            "basic",
            &storage,
            &format!("auth:\n  htpasswd:\n    realm: bulwark-tests\n    path: {}\n", htpasswd.display()),
        );
        let token = Registry::start(
            &dir,
            "token",
            &storage,
            &format!(
                "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: bulwark-tests\n    issuer: bulwark-tests-issuer\n    rootcertbundle: {}\n",
                cert.display()
            ),
        );
        Registries { plain, basic, token }
    })
}

#[track_caller]
fn which(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()));
    assert!(
        found,
        "{program} is missing: install Debian's {package} (scripts/deps.sh does)"
    );
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("a bound address").port()
}

/// Starts `command` from a thread that never ends, with a parent-death signal, so the
/// process ends with the test binary.
fn spawn_kept(mut command: Command) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let spawned = command.spawn().map(|child| child.id());
        let ok = spawned.is_ok();
        tx.send(spawned).expect("the starter waits");
        if ok {
            loop {
                std::thread::park();
            }
        }
    });
    rx.recv()
        .expect("the keeper thread answers")
        .expect("starting a test daemon");
}

impl Registry {
    fn start(dir: &Path, name: &str, storage: &Path, auth: &str) -> Registry {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join(format!("{name}.yml"));
        let text = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: {addr}\n  secret: bulwark-tests-only\n{auth}",
            storage.display()
        );
        std::fs::write(&config, text).expect("writing the registry config");
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("creating the registry log");
        let mut command = Command::new("setpriv");
        command
            .args(["--pdeathsig", "KILL", "--", "docker-registry", "serve"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("a log file"))
            .stderr(out);
        spawn_kept(command);
        let registry = Registry {
            addr,
            storage: storage.to_owned(),
            log,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + crate::default_timeout();
        loop {
            if let Ok(mut stream) = TcpStream::connect(&self.addr) {
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry on {} did not answer; its log:\n{}",
                self.addr,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        )
    }

    /// Uploads a blob to `repo` (the plain registry takes uploads for all three).
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) {
        let agent = Registry::agent();
        let url = format!("http://{}/v2/{repo}/blobs/uploads/", self.addr);
        let started = agent
            .post(&url)
            .send_empty()
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(
            started.status().as_u16(),
            202,
            "POST {url}: {}",
            started.status()
        );
        let location = started
            .headers()
            .get("Location")
            .and_then(|l| l.to_str().ok())
            .expect("an upload location")
            .to_owned();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("http://{}{location}", self.addr)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", digest(bytes));
        let done = agent
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        assert_eq!(done.status().as_u16(), 201, "PUT {url}: {}", done.status());
    }

    /// Uploads a manifest (or index) as `repo:reference`.
    pub fn put_manifest(&self, repo: &str, reference: &str, bytes: &[u8], media_type: &str) {
        let url = format!("http://{}/v2/{repo}/manifests/{reference}", self.addr);
        let mut done = Registry::agent()
            .put(&url)
            .header("Content-Type", media_type)
            .send(bytes)
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        let status = done.status().as_u16();
        let body = done.body_mut().read_to_string().unwrap_or_default();
        assert_eq!(status, 201, "PUT {url}: {body}");
    }

    /// Uploads an image (its blobs, then its manifest) as `repo:tag`.
    pub fn push_image(&self, repo: &str, tag: &str, image: &Image) {
        self.put_blob(repo, &image.config);
        for (blob, _) in &image.layers {
            self.put_blob(repo, blob);
        }
        self.put_manifest(repo, tag, &image.manifest, image.media_type);
    }

    /// Uploads `images` and an index (or manifest list) over them as `repo:tag`; returns
    /// the index's digest.
    pub fn push_index(&self, repo: &str, tag: &str, images: &[&Image], format: Format) -> String {
        for image in images {
            self.push_image(repo, &image.digest(), image);
        }
        let (bytes, media_type) = index(images, format);
        self.put_manifest(repo, tag, &bytes, media_type);
        digest(&bytes)
    }

    /// The file the registry keeps blob `digest` in (to damage it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// How many times the blob `digest` was fetched from this registry (its access log).
    pub fn blob_fetches(&self, digest: &str) -> usize {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let needle = format!("/blobs/{digest} ");
        log.lines()
            .filter(|l| l.contains("\"GET ") && l.contains(&needle))
            .count()
    }
}

/// Makes a signing key and certificate with `openssl`, then serves tokens on
/// `127.0.0.1:<port>/token` for [`USER`]/[`PASSWORD`] (HTTP basic), signed ES256 with the
/// certificate in `x5c`. Returns the certificate (the registry's root bundle).
fn start_token_service(dir: &Path, port: u16) -> PathBuf {
    let key = dir.join("token-key.pem");
    let cert = dir.join("token-cert.pem");
    let der = dir.join("token-key.p8");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (key_s, cert_s, der_s) = (
        key.to_str().unwrap(),
        cert.to_str().unwrap(),
        der.to_str().unwrap(),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=bulwark tests token signer",
        "-keyout",
        key_s,
        "-out",
        cert_s,
    ]);
    run(&[
        "pkcs8", "-topk8", "-nocrypt", "-in", key_s, "-outform", "DER", "-out", der_s,
    ]);
    let pkcs8 = std::fs::read(&der).expect("the key");
    let pem = std::fs::read_to_string(&cert).expect("the certificate");
    let cert_der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let rng = ring::rand::SystemRandom::new();
    let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &pkcs8,
        &rng,
    )
    .expect("a P-256 key");
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("binding the token service");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = answer_token(stream, &signer, &cert_der, &rng);
        }
    });
    cert
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn answer_token(
    stream: TcpStream,
    signer: &ring::signature::EcdsaKeyPair,
    cert_der: &str,
    rng: &ring::rand::SystemRandom,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_owned());
            }
        }
    }
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let decode = |v: &str| {
        v.replace("%3A", ":")
            .replace("%2F", "/")
            .replace("%2C", ",")
            .replace('+', " ")
    };
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let mut out = stream;
    if authorization.as_deref() != Some(expected.as_str()) {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad or missing credentials"}]}"#;
        return write!(
            out,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"token\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    let access: Vec<serde_json::Value> = params
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter_map(|scope| {
            let (kind, rest) = scope.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let service = params
        .iter()
        .find(|(k, _)| k == "service")
        .map_or("bulwark-tests".to_owned(), |(_, v)| v.clone());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_der]});
    let claims = serde_json::json!({
        "iss": "bulwark-tests-issuer", "sub": USER, "aud": service, "exp": now + 600, "nbf": now - 10,
        "iat": now, "jti": format!("{now}-{}", std::process::id()), "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = signer
        .sign(rng, input.as_bytes())
        .map_err(|_| std::io::Error::other("signing"))?;
    let token = format!("{input}.{}", b64url(signature.as_ref()));
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 600}).to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
