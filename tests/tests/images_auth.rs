//! Registries behind authentication (htpasswd basic auth, bearer tokens from a token
//! service) and `push`: `login` checks credentials before keeping them in Docker's
//! config.json or a credential helper, secrets never reach the output, and what is
//! pushed pulls back the same.
use bulwark_tests::images::{rich_layers, Compression, Format, Image};
use bulwark_tests::registry::{registries, Registry, PASSWORD, USER};
use bulwark_tests::{Bulwark, Output};
use serde_json::Value;

fn no_secret(out: &Output) {
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password was printed: {out}"
    );
}

fn publish(repo: &str) -> Image {
    let image = Image::build(&rich_layers(Compression::Gzip, true), "amd64", Format::Oci);
    registries().plain.push_image(repo, "v1", &image);
    image
}

/// Denied without credentials, refused with wrong ones, served with the right ones,
/// denied again after logout.
fn login_flow(registry: &Registry, repo: &str) {
    let image = publish(repo);
    let engine = Bulwark::new();
    let name = format!("{}/{repo}:v1", registry.addr);
    let denied = engine.cmd(["pull", &name]);
    denied.assert_code(1);
    assert!(denied.stderr.contains("pull access denied for"), "{denied}");
    assert_eq!(engine.ok(["images", "-q"]), "");

    let wrong = engine.cmd_input(
        ["login", "-u", USER, "--password-stdin", &registry.addr],
        "not-it\n",
    );
    wrong.assert_code(1);
    assert!(
        wrong.stderr.contains("incorrect username or password"),
        "{wrong}"
    );
    assert!(
        !engine.docker_config().join("config.json").exists(),
        "a refused login was stored"
    );

    let ok = engine.cmd_input(
        ["login", "-u", USER, "--password-stdin", &registry.addr],
        &format!("{PASSWORD}\n"),
    );
    ok.assert_success();
    no_secret(&ok);
    assert_eq!(ok.stdout, "Login Succeeded\n");
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string(engine.docker_config().join("config.json")).unwrap(),
    )
    .unwrap();
    assert!(
        config["auths"][&registry.addr]["auth"].is_string(),
        "{config}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(engine.docker_config().join("config.json"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let pulled = engine.cmd(["pull", &name]);
    pulled.assert_success();
    no_secret(&pulled);
    assert!(pulled.stdout.contains(&image.digest()), "{pulled}");

    let out = engine.cmd(["logout", &registry.addr]);
    out.assert_success();
    assert_eq!(
        out.stdout,
        format!("Removing login credentials for {}\n", registry.addr)
    );
    assert_eq!(
        engine.ok(["logout", &registry.addr]),
        format!("Not logged in to {}\n", registry.addr)
    );
    engine.ok(["rmi", &name]);
    engine.cmd(["pull", &name]).assert_code(1);
}

#[test]
fn basic_auth_login_pull_and_logout() {
    login_flow(&registries().basic, "auth/basic");
}

#[test]
fn bearer_token_login_pull_and_logout() {
    login_flow(&registries().token, "auth/token");
}

#[test]
fn a_credential_helper_keeps_and_gives_the_secret() {
    let image = publish("auth/helper");
    let engine = Bulwark::new();
    let registry = &registries().token;
    // A helper in Docker's protocol that keeps one entry in a file.
    let bin = engine.home().join("helper-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kept = engine.home().join("helper-kept.json");
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  store) cat > {kept} ;;\n  get) cat > /dev/null; if [ -f {kept} ]; then cat {kept}; else echo 'credentials not found in native keychain'; exit 1; fi ;;\n  erase) cat > /dev/null; rm -f {kept} ;;\nesac\n",
        kept = kept.display()
    );
    let helper = bin.join("docker-credential-bulwarktest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(engine.docker_config()).unwrap();
    std::fs::write(
        engine.docker_config().join("config.json"),
        r#"{"credsStore": "bulwarktest"}"#,
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let with_path = |c: &mut std::process::Command| {
        c.env("PATH", &path);
    };
    let name = format!("{}/auth/helper:v1", registry.addr);
    engine.cmd_with(["pull", &name], with_path).assert_code(1);
    let login = engine.cmd_with(
        ["login", "-u", USER, "-p", PASSWORD, &registry.addr],
        with_path,
    );
    login.assert_success();
    assert!(
        login
            .stderr
            .contains("WARNING! Using --password via the CLI is insecure"),
        "{login}"
    );
    let kept_text = std::fs::read_to_string(&kept).expect("the helper kept the login");
    assert!(
        kept_text.contains(PASSWORD) && kept_text.contains(USER),
        "{kept_text}"
    );
    let config = std::fs::read_to_string(engine.docker_config().join("config.json")).unwrap();
    assert!(
        !config.contains("auth\":"),
        "the secret went to config.json too: {config}"
    );
    let pulled = engine.cmd_with(["pull", &name], with_path);
    pulled.assert_success();
    no_secret(&pulled);
    assert!(pulled.stdout.contains(&image.digest()), "{pulled}");
}

#[test]
fn push_then_pull_back_the_same_image() {
    let plain = &registries().plain;
    let image = publish("push/source");
    let engine = Bulwark::new();
    let source = format!("{}/push/source:v1", plain.addr);
    engine.ok(["pull", "-q", &source]);
    let target = format!("{}/push/copy:v2", plain.addr);
    engine.ok(["tag", &source, &target]);
    engine.ok(["tag", &source, &format!("{}/push/copy:v3", plain.addr)]);
    let out = engine.cmd(["push", &target]);
    out.assert_success();
    assert!(
        out.stdout.starts_with(&format!(
            "The push refers to repository [{}/push/copy]\n",
            plain.addr
        )),
        "{out}"
    );
    assert!(
        out.stdout.contains(": Mounted from push/source"),
        "the registry has the layers in push/source: {out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "v2: digest: {} size: {}",
            image.digest(),
            image.manifest.len()
        )),
        "{out}"
    );
    // Every tag of the repository.
    let all = engine.ok(["push", "--all-tags", &format!("{}/push/copy", plain.addr)]);
    assert!(
        all.contains("v2: digest:") && all.contains("v3: digest:"),
        "{all}"
    );

    let other = Bulwark::new();
    other.ok([
        "pull",
        "-q",
        &format!("{}/push/copy@{}", plain.addr, image.digest()),
    ]);
    let id = other.ok([
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        &format!("{}/push/copy@{}", plain.addr, image.digest()),
    ]);
    assert_eq!(id.trim(), image.id());

    // To a registry that wants a login: denied, then done after one.
    let token = &registries().token;
    let guarded = format!("{}/push/guarded:v1", token.addr);
    engine.ok(["tag", &source, &guarded]);
    let denied = engine.cmd(["push", &guarded]);
    denied.assert_code(1);
    assert!(denied.stderr.contains("denied"), "{denied}");
    engine
        .cmd_input(
            ["login", "-u", USER, "--password-stdin", &token.addr],
            PASSWORD,
        )
        .assert_success();
    let pushed = engine.cmd(["push", &guarded]);
    pushed.assert_success();
    no_secret(&pushed);
    let reader = Bulwark::new();
    reader
        .cmd_input(
            ["login", "-u", USER, "--password-stdin", &token.addr],
            PASSWORD,
        )
        .assert_success();
    reader.ok(["pull", "-q", &guarded]);
    assert_eq!(
        reader
            .ok(["image", "inspect", "-f", "{{.Id}}", &guarded])
            .trim(),
        image.id()
    );
}
