//! Networking, as root on the host: user networks with names and aliases, published TCP
//! and UDP ports (from the host on 127.0.0.1 and the gateway, from another namespace
//! acting as an outside host, hairpin from the same bridge), isolation between networks
//! and of `--internal`, `--network none|host|container:`, the files Docker writes, bad
//! input and what kills leave. Every address is on bridges, veths and namespaces made
//! here; traffic stays on them and on loopback.
mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::Duration;

use bulwark_tests::{wait_until, Bulwark};
use serde_json::Value;
use support::{assert_nothing_left, engine, image, inspect};

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("running a host tool");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace with a veth to the host: a host "outside" the bridges.
struct Outside {
    name: String,
    host_end: String,
    host_ip: Ipv4Addr,
    ip: Ipv4Addr,
    listener: Option<std::process::Child>,
}

impl Outside {
    fn new(octet: u8) -> Outside {
        let name = format!("bwt-out-{}-{octet}", std::process::id());
        let host_end = format!("bwto{}{octet}", std::process::id() % 10000);
        let host_ip = Ipv4Addr::new(10, 250, octet, 1);
        let ip = Ipv4Addr::new(10, 250, octet, 2);
        sh(&["ip", "netns", "add", &name]);
        sh(&[
            "ip", "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &name,
        ]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{host_ip}/24"),
            "dev",
            &host_end,
        ]);
        sh(&["ip", "link", "set", &host_end, "up"]);
        for args in [
            vec![
                "ip",
                "addr",
                "add",
                &format!("{ip}/24") as &str,
                "dev",
                "eth0",
            ],
            vec!["ip", "link", "set", "eth0", "up"],
            vec!["ip", "link", "set", "lo", "up"],
            vec![
                "ip",
                "route",
                "add",
                "default",
                "via",
                &host_ip.to_string() as &str,
            ],
        ] {
            let mut full = vec!["ip", "netns", "exec", &name];
            full.extend(args);
            sh(&full);
        }
        Outside {
            name,
            host_end,
            host_ip,
            ip,
            listener: None,
        }
    }

    /// Runs a command in the namespace.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Answers `outside-answers` to every TCP connection on port 7777, until dropped.
    fn listen(&mut self) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args([
                "busybox",
                "nc",
                "-ll",
                "-p",
                "7777",
                "-e",
                "echo",
                "outside-answers",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("ip netns exec");
        self.listener = Some(child);
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        if let Some(mut child) = self.listener.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_end])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// `GET /hostname` from a container's `httpd -h /etc`.
fn http_hostname(addr: (Ipv4Addr, u16)) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr.into(), Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /hostname HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

fn serve_http(engine: &Bulwark, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d"];
    args.extend(extra);
    args.extend([image(), "httpd", "-f", "-p", "80", "-h", "/etc"]);
    engine.ok(args).trim().to_owned()
}

fn hostname_of(engine: &Bulwark, id: &str) -> String {
    engine
        .ok(["inspect", "-f", "{{.Config.Hostname}}", id])
        .trim()
        .to_owned()
}

fn network_of(engine: &Bulwark, id: &str, network: &str) -> Value {
    inspect(engine, id)["NetworkSettings"]["Networks"][network].clone()
}

/// A shell line run in a new container on `network`; its output.
fn from_container(engine: &Bulwark, network: &str, script: &str) -> bulwark_tests::Output {
    engine.cmd([
        "run",
        "--rm",
        "--network",
        network,
        image(),
        "sh",
        "-c",
        script,
    ])
}

#[test]
fn containers_on_a_user_network_reach_each_other_by_name_and_alias() {
    let engine = engine();
    let id = engine
        .ok([
            "network",
            "create",
            "-o",
            "com.docker.network.driver.mtu=9000",
            "names",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let server = serve_http(
        &engine,
        &[
            "--name",
            "web",
            "--network",
            "names",
            "--network-alias",
            "frontdoor",
        ],
    );
    let hostname = hostname_of(&engine, &server);
    let ip = network_of(&engine, &server, "names")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = from_container(
        &engine,
        "names",
        "for n in web frontdoor; do printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 30 $n 80; done; nslookup web; cat /etc/resolv.conf; echo mtu=$(cat /sys/class/net/eth0/mtu)",
    );
    out.assert_success();
    assert_eq!(out.stdout.matches(&hostname).count(), 2, "{out}");
    assert!(out.stdout.contains("mtu=9000"), "{out}");
    assert!(out.stdout.contains(&format!("Address: {ip}")), "{out}");
    let gateway = network_of(&engine, &server, "names")["Gateway"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        out.stdout.contains(&format!("nameserver {gateway}")),
        "{out}"
    );
    // The default bridge has no names, as Docker's has none.
    let plain = serve_http(&engine, &["--name", "plainweb"]);
    let out = from_container(&engine, "bridge", "nslookup plainweb; cat /etc/resolv.conf");
    assert!(
        !out.stdout.contains(
            &network_of(&engine, &plain, "bridge")["IPAddress"]
                .as_str()
                .unwrap()
                .to_owned()
        ),
        "{out}"
    );
    // inspect shows both ends.
    let net: Value = serde_json::from_str(&engine.ok(["network", "inspect", "names"])).unwrap();
    assert_eq!(net[0]["Containers"][&server]["Name"], "web", "{net}");
    engine.ok(["rm", "-f", &server, &plain]);
    engine.ok(["network", "rm", "names"]);
    assert_nothing_left(&engine);
}

#[test]
fn published_ports_answer_from_everywhere_without_a_proxy() {
    let engine = engine();
    let outside = Outside::new(11);
    let server = serve_http(&engine, &["-p", "18080:80", "--name", "pub"]);
    let hostname = hostname_of(&engine, &server);
    let gateway: Ipv4Addr = network_of(&engine, &server, "bridge")["Gateway"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        engine.ok(["port", &server]).trim(),
        "80/tcp -> 0.0.0.0:18080"
    );
    let ps = engine.ok(["ps"]);
    assert!(ps.contains("0.0.0.0:18080->80/tcp"), "{ps}");
    for target in [Ipv4Addr::LOCALHOST, gateway, outside.host_ip] {
        let text = http_hostname((target, 18080)).unwrap_or_else(|e| panic!("{target}:18080: {e}"));
        assert!(text.contains(&hostname), "{target}: {text}");
    }
    // From another host: the outside namespace, to the host's address on its link.
    let out = outside.run(&[
        "sh",
        "-c",
        &format!(
            "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 30 {} 18080",
            outside.host_ip
        ),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&hostname),
        "outside: {out:?}"
    );
    // Hairpin: a container on the same bridge through the gateway's published port.
    let out = from_container(
        &engine,
        "bridge",
        &format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 30 {gateway} 18080"),
    );
    assert!(out.stdout.contains(&hostname), "hairpin: {out}");
    // No proxy process: only the container's own (its monitor and httpd).
    let proxies = bulwark_tests::processes_mentioning("18080");
    assert!(proxies.is_empty(), "a process holds the port: {proxies:?}");
    // UDP, and a host port left to us.
    let udp = engine
        .ok([
            "run",
            "-d",
            "-p",
            "127.0.0.1::9999/udp",
            image(),
            "bulwark-check",
            "udp-echo",
            "9999",
        ])
        .trim()
        .to_owned();
    let shown = engine.ok(["port", &udp, "9999/udp"]);
    let port: u16 = shown
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{shown}"));
    assert!(shown.starts_with("127.0.0.1:"), "{shown}");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut answer = String::new();
    wait_until("the UDP echo answers through its published port", || {
        let _ = socket.send_to(b"ping", ("127.0.0.1", port));
        let mut buf = [0u8; 64];
        match socket.recv(&mut buf) {
            Ok(n) => {
                answer = String::from_utf8_lossy(&buf[..n]).into_owned();
                true
            }
            Err(_) => false,
        }
    });
    assert_eq!(answer, "echo: ping");
    // -P: every exposed port to a free one.
    let all = engine
        .ok([
            "run",
            "-d",
            "--expose",
            "80",
            "-P",
            image(),
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/etc",
        ])
        .trim()
        .to_owned();
    let shown = engine.ok(["port", &all]);
    let port: u16 = shown
        .trim()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{shown}"));
    assert!(http_hostname((Ipv4Addr::LOCALHOST, port))
        .unwrap()
        .contains(&hostname_of(&engine, &all)));
    let inspected = inspect(&engine, &server);
    assert_eq!(
        inspected["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"], "18080",
        "{inspected}"
    );
    engine.ok(["rm", "-f", &server, &udp, &all]);
    assert!(
        http_hostname((Ipv4Addr::LOCALHOST, 18080)).is_err(),
        "the port still answers after rm"
    );
    assert_nothing_left(&engine);
}

#[test]
fn networks_are_isolated_and_internal_ones_have_no_way_out() {
    let engine = engine();
    let mut outside = Outside::new(12);
    outside.listen();
    engine.ok(["network", "create", "left"]);
    engine.ok(["network", "create", "right"]);
    engine.ok(["network", "create", "--internal", "sealed"]);
    let server = serve_http(&engine, &["--network", "left"]);
    let ip = network_of(&engine, &server, "left")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    let probe = format!("printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 10 {ip} 80");
    let same = from_container(&engine, "left", &probe);
    assert!(
        same.stdout.contains(&hostname_of(&engine, &server)),
        "same network: {same}"
    );
    let other = from_container(&engine, "right", &probe);
    assert!(
        !other.stdout.contains("200 OK"),
        "another network reached it: {other}"
    );
    // The way out (NAT) from a normal network, none from an internal one.
    let out_probe = format!("nc -w 10 {} 7777 </dev/null", outside.ip);
    let out = from_container(&engine, "right", &out_probe);
    assert!(out.stdout.contains("outside-answers"), "no way out: {out}");
    let sealed = from_container(&engine, "sealed", &format!("{out_probe}; ip route"));
    assert!(
        !sealed.stdout.contains("outside-answers"),
        "internal network got out: {sealed}"
    );
    assert!(!sealed.stdout.contains("default"), "{sealed}");
    engine.ok(["rm", "-f", &server]);
    let removed = engine.ok(["network", "prune", "-f"]);
    for name in ["left", "right", "sealed"] {
        assert!(removed.contains(name), "{removed}");
    }
    assert_nothing_left(&engine);
}

#[test]
fn none_host_and_container_modes_and_the_files_docker_writes() {
    let engine = engine();
    let out = engine.ok([
        "run",
        "--rm",
        "--network",
        "none",
        image(),
        "sh",
        "-c",
        "ls /sys/class/net; cat /etc/hosts",
    ]);
    assert_eq!(out.lines().next(), Some("lo"), "{out}");
    let host_links = sh(&["ls", "/sys/class/net"]);
    let out = engine.ok([
        "run",
        "--rm",
        "--network",
        "host",
        image(),
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out.trim(), host_links.trim());
    let first = engine
        .ok([
            "run",
            "-d",
            "--hostname",
            "first",
            "--add-host",
            "db:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "10.9.9.9",
            "--dns-search",
            "example.test",
            "--dns-option",
            "ndots:2",
            "--mac-address",
            "02:42:0a:0b:0c:0d",
            image(),
            "sleep",
            "600",
        ])
        .trim()
        .to_owned();
    let settings = network_of(&engine, &first, "bridge");
    let (ip, gateway) = (
        settings["IPAddress"].as_str().unwrap(),
        settings["Gateway"].as_str().unwrap(),
    );
    assert_eq!(settings["MacAddress"], "02:42:0a:0b:0c:0d");
    let files = engine.ok([
        "exec",
        &first,
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf /etc/hostname; cat /sys/class/net/eth0/address",
    ]);
    for line in [
        "127.0.0.1\tlocalhost",
        "10.1.2.3\tdb",
        &format!("{gateway}\tgw"),
        &format!("{ip}\tfirst"),
        "nameserver 10.9.9.9",
        "search example.test",
        "options ndots:2",
        "02:42:0a:0b:0c:0d",
    ] {
        assert!(files.contains(line), "{line:?} missing from:\n{files}");
    }
    assert_eq!(
        files.lines().filter(|l| *l == "first").count(),
        1,
        "{files}"
    );
    let joined = engine.ok([
        "run",
        "--rm",
        "--network",
        &format!("container:{first}"),
        image(),
        "sh",
        "-c",
        "ip -4 addr show eth0",
    ]);
    assert!(joined.contains(&format!("inet {ip}/")), "{joined}");
    engine.ok(["rm", "-f", &first]);
    assert_nothing_left(&engine);
}

#[test]
fn bad_network_input_is_named_and_leaves_nothing_behind() {
    let engine = engine();
    engine.ok(["network", "create", "--subnet", "10.251.0.0/16", "taken"]);
    let bad = |args: &[&str], needle: &str| {
        let out = engine.cmd(args);
        assert!(!out.success(), "{args:?} succeeded: {out}");
        assert!(
            out.stderr.contains(needle),
            "{args:?}: {needle:?} not in {out}"
        );
    };
    bad(
        &["network", "create", "--subnet", "10.251.3.0/24", "overlap"],
        "overlaps",
    );
    bad(
        &["network", "create", "--subnet", "10.252.0.0/33", "x"],
        "--subnet",
    );
    bad(
        &[
            "network",
            "create",
            "--subnet",
            "10.252.0.0/16",
            "--gateway",
            "10.9.0.1",
            "x",
        ],
        "--gateway",
    );
    bad(&["network", "create", "taken"], "already exists");
    bad(&["network", "create", "bad/name"], "invalid network name");
    bad(
        &["network", "create", "-d", "nosuchdriver", "x"],
        "nosuchdriver",
    );
    bad(
        &[
            "network",
            "create",
            "-o",
            "com.docker.network.driver.mtu=5",
            "x",
        ],
        "MTU",
    );
    bad(&["network", "rm", "bridge"], "pre-defined");
    bad(&["network", "rm", "nosuchnet"], "nosuchnet");
    for (flag, value, needle) in [
        ("--network", "nosuchnet", "network nosuchnet not found"),
        ("-p", "80:80:80:80", "invalid -p/--publish \"80:80:80:80\""),
        ("-p", "99999:80", "\"99999:80\""),
        ("-p", "80/sctp", "sctp"),
        ("--ip", "10.251.0.300", "--ip"),
        ("--mac-address", "01:00:00:00:00:00", "--mac-address"),
        ("--add-host", "nohost", "--add-host"),
        ("--dns", "not-an-ip", "--dns"),
    ] {
        let out = engine.cmd([
            "run",
            "--rm",
            "--network",
            if flag == "--ip" { "taken" } else { "bridge" },
            flag,
            value,
            image(),
            "true",
        ]);
        if flag == "--network" {
            let out = engine.cmd(["run", "--rm", flag, value, image(), "true"]);
            out.assert_code(125);
            assert!(out.stderr.contains(needle), "{out}");
            continue;
        }
        out.assert_code(125);
        assert!(out.stderr.contains(needle), "{flag} {value}: {out}");
    }
    // A port ours already holds, and one a host program holds.
    let holder = serve_http(&engine, &["-p", "18181:80"]);
    bad(
        &["run", "--rm", "-p", "18181:80", image(), "true"],
        "port is already allocated",
    );
    let _listening = std::net::TcpListener::bind("0.0.0.0:18182").unwrap();
    bad(
        &["run", "--rm", "-p", "18182:80", image(), "true"],
        "already in use",
    );
    bad(
        &[
            "run",
            "--rm",
            "--network",
            "taken",
            "--ip",
            "10.251.0.1",
            image(),
            "true",
        ],
        "--ip",
    );
    let user = engine
        .ok(["run", "-d", "--network", "taken", image(), "sleep", "600"])
        .trim()
        .to_owned();
    bad(&["network", "rm", "taken"], "active endpoints");
    engine.ok(["rm", "-f", &holder, &user]);
    engine.ok(["network", "rm", "taken"]);
    assert_nothing_left(&engine);
    assert_no_network_leftovers(&engine);
}

/// No veth, pinned namespace, address claim or DNAT rule of this engine's containers.
#[track_caller]
fn assert_no_network_leftovers(engine: &Bulwark) {
    let links = sh(&["ip", "-o", "link", "show"]);
    let ids: Vec<String> = std::fs::read_dir(engine.containers_dir())
        .map(|e| {
            e.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        ids.iter().all(|n| n == "names" || n == "events.log"),
        "{ids:?}"
    );
    let claims: Vec<String> = std::fs::read_dir(engine.store().join("networks"))
        .map(|nets| {
            nets.flatten()
                .flat_map(|n| {
                    std::fs::read_dir(n.path().join("ips"))
                        .map(|e| {
                            e.flatten()
                                .map(|e| e.path().display().to_string())
                                .collect::<Vec<_>>()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    assert!(claims.is_empty(), "addresses still claimed: {claims:?}");
    let ruleset = sh(&["nft", "list", "ruleset"]);
    let table = bulwark_tests::firewall_table(&engine.store());
    if let Some(start) = ruleset.find(&format!("table ip {table} ")) {
        let ours = &ruleset[start..];
        let ours = &ours[..ours.find("\n}").unwrap_or(ours.len())];
        assert!(!ours.contains("dnat to"), "DNAT rules left: {ours}");
    }
    let _ = links;
}

#[test]
fn kills_leave_no_veth_namespace_or_rule() {
    let engine = engine();
    // bulwark killed at several points of `run -d -p`.
    for delay_ms in [5u64, 20, 60, 150, 400] {
        let mut child = engine
            .command([
                "run",
                "-d",
                "-p",
                "18300:80",
                image(),
                "httpd",
                "-f",
                "-p",
                "80",
                "-h",
                "/etc",
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // The next command that makes a container collects a half-made one after a while;
        // `rm -f` of what `ps -a` shows removes finished ones.
        for id in engine.ok(["ps", "-aq", "--no-trunc"]).split_whitespace() {
            engine.ok(["rm", "-f", id]);
        }
    }
    // A monitor killed: `rm -f` still removes the container's network.
    let id = serve_http(&engine, &["-p", "18301:80"]);
    let monitor = bulwark_tests::processes_mentioning(&id)
        .into_iter()
        .find(|(_, cmd)| cmd.contains("bulwark-mon"));
    if let Some((pid, _)) = monitor {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    engine.ok(["rm", "-f", &id]);
    // Half-made containers are collected once their maker's lock is free and they are
    // old enough; `container prune` is such a command.
    wait_until("half-made containers are collected", || {
        engine.ok(["container", "prune", "-f"]);
        std::fs::read_dir(engine.containers_dir())
            .map(|e| {
                e.flatten().all(|e| {
                    let n = e.file_name();
                    n == "names" || n == "events.log"
                })
            })
            .unwrap_or(true)
    });
    engine.ok(["network", "prune", "-f"]);
    // Veths go with their namespaces, which the kernel destroys in the background.
    let bridge = bulwark_tests::default_bridge(&engine.store());
    wait_until("no veth is left on this engine's bridge", || {
        sh(&["ip", "-o", "link", "show"])
            .lines()
            .all(|l| !(l.contains(": vb") && l.contains(&format!("master {bridge} "))))
    });
    assert!(http_hostname((Ipv4Addr::LOCALHOST, 18300)).is_err());
    assert_nothing_left(&engine);
    assert_no_network_leftovers(&engine);
}

#[test]
fn connect_disconnect_and_a_lost_namespace_come_back() {
    let engine = engine();
    engine.ok(["network", "create", "extra"]);
    let id = engine
        .ok(["run", "-d", image(), "sleep", "600"])
        .trim()
        .to_owned();
    let server = serve_http(&engine, &["--name", "peer", "--network", "extra"]);
    engine.ok(["network", "connect", "--alias", "second", "extra", &id]);
    let joined = network_of(&engine, &id, "extra");
    assert!(
        joined["IPAddress"]
            .as_str()
            .is_some_and(|ip| !ip.is_empty()),
        "{joined}"
    );
    let out = engine.ok(["exec", &id, "sh", "-c", "ls /sys/class/net; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 30 peer 80; nslookup second"]);
    assert!(out.contains("eth1"), "{out}");
    assert!(out.contains(&hostname_of(&engine, &server)), "{out}");
    let own = network_of(&engine, &id, "extra")["IPAddress"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        out.contains(&format!("Address: {own}")),
        "its alias on the new network: {out}"
    );
    engine
        .cmd(["network", "connect", "extra", &id])
        .assert_code(1);
    engine.ok(["network", "disconnect", "extra", &id]);
    let out = engine.ok(["exec", &id, "ls", "/sys/class/net"]);
    assert!(!out.contains("eth1"), "{out}");
    // A reboot takes /run: the pinned namespace and the veth. `start` makes them again
    // with the same address.
    let before = network_of(&engine, &id, "bridge")["IPAddress"].clone();
    engine.ok(["stop", "-t", "1", &id]);
    let pinned = inspect(&engine, &id)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_owned();
    sh(&["umount", &pinned]);
    std::fs::remove_file(&pinned).unwrap();
    let _ = Command::new("ip")
        .args(["link", "del", &format!("vb{}0", &id[..11])])
        .output();
    engine.ok(["start", &id]);
    assert_eq!(network_of(&engine, &id, "bridge")["IPAddress"], before);
    let out = engine.ok(["exec", &id, "ip", "-4", "addr", "show", "eth0"]);
    assert!(out.contains(before.as_str().unwrap()), "{out}");
    engine.ok(["rm", "-f", &id, &server]);
    // A reboot also takes the bridges and the rules: the next container brings both back.
    let table = bulwark_tests::firewall_table(&engine.store());
    sh(&[
        "ip",
        "link",
        "del",
        &bulwark_tests::default_bridge(&engine.store()),
    ]);
    sh(&["nft", "delete", "table", "ip", &table]);
    engine.ok(["run", "--rm", image(), "true"]);
    let rules = sh(&["nft", "list", "table", "ip", &table]);
    assert!(rules.contains("masquerade"), "{rules}");
    engine.ok(["network", "rm", "extra"]);
    assert_nothing_left(&engine);
    assert_no_network_leftovers(&engine);
}

#[test]
fn rootless_containers_get_pasta_with_published_ports() {
    let engine = Bulwark::rootless();
    engine.ok(["pull", "-q", image()]);
    let mut outside = Outside::new(13);
    outside.listen();
    let id = serve_http(&engine, &["-p", "18600:80"]);
    assert_eq!(
        engine
            .ok(["inspect", "-f", "{{.HostConfig.NetworkMode}}", &id])
            .trim(),
        "pasta"
    );
    assert_eq!(engine.ok(["port", &id]).trim(), "80/tcp -> 0.0.0.0:18600");
    let hostname = hostname_of(&engine, &id);
    let mut text = String::new();
    wait_until("the published port answers through pasta", || {
        text = http_hostname((Ipv4Addr::LOCALHOST, 18600)).unwrap_or_default();
        text.contains(&hostname)
    });
    // The way out, through the user's own sockets.
    // (pasta passes the peer's close on late: the reader stops after the answer.)
    let probe = format!("timeout 20 nc -w 10 {} 7777 </dev/null; true", outside.ip);
    let out = engine.ok(["exec", &id, "sh", "-c", &probe]);
    assert!(out.contains("outside-answers"), "{out}");
    // Stopped and started again: a new namespace, pasta again, the same port.
    engine.ok(["stop", "-t", "1", &id]);
    engine.ok(["start", &id]);
    wait_until("the port answers after a restart", || {
        http_hostname((Ipv4Addr::LOCALHOST, 18600)).is_ok_and(|t| t.contains(&hostname))
    });
    engine.ok(["rm", "-f", &id]);
    wait_until("pasta is gone with the container", || {
        bulwark_tests::processes_mentioning(&id).is_empty()
    });
    assert!(
        http_hostname((Ipv4Addr::LOCALHOST, 18600)).is_err(),
        "the port still answers after rm"
    );
}

/// The test plugin (tests/plugins/netplugin.py) serving `/run/docker/plugins/NAME.sock`.
struct Plugin {
    name: String,
    socket: std::path::PathBuf,
    log: std::path::PathBuf,
    child: std::process::Child,
}

impl Plugin {
    fn start(mode: &str, bridge: &str) -> Plugin {
        let name = format!("bwtest-{mode}-{}", std::process::id());
        let socket = std::path::PathBuf::from(format!("/run/docker/plugins/{name}.sock"));
        let log = std::env::temp_dir().join(format!("{name}.log"));
        let _ = std::fs::remove_file(&log);
        let script = bulwark_tests::workspace_root().join("tests/plugins/netplugin.py");
        let child = Command::new("python3")
            .arg(&script)
            .arg(&socket)
            .arg(&log)
            .arg(mode)
            .arg(bridge)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 for the test plugin");
        wait_until("the plugin listens", || socket.exists());
        Plugin {
            name,
            socket,
            log,
            child,
        }
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_file(&self.log);
    }
}

#[test]
fn remote_network_and_ipam_drivers_and_one_that_hangs() {
    let engine = engine();
    // Named like bulwark's bridges, so a host whose iptables FORWARD drops lets it pass.
    let bridge = format!("bw-p{}", std::process::id() % 100_000);
    let plugin = Plugin::start("ok", &bridge);
    engine.ok([
        "network",
        "create",
        "-d",
        &plugin.name,
        "--ipam-driver",
        &plugin.name,
        "remote",
    ]);
    let net: Value = serde_json::from_str(&engine.ok(["network", "inspect", "remote"])).unwrap();
    assert_eq!(net[0]["Driver"], plugin.name.as_str());
    assert_eq!(
        net[0]["IPAM"]["Config"][0]["Subnet"], "10.249.7.0/24",
        "{net}"
    );
    assert_eq!(
        net[0]["IPAM"]["Config"][0]["Gateway"], "10.249.7.1",
        "{net}"
    );
    let server = serve_http(&engine, &["--network", "remote"]);
    assert_eq!(
        network_of(&engine, &server, "remote")["IPAddress"],
        "10.249.7.10"
    );
    let out = from_container(&engine, "remote", "ip -4 addr show eth0; printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 30 10.249.7.10 80");
    assert!(out.stdout.contains("inet 10.249.7.11/24"), "{out}");
    assert!(out.stdout.contains(&hostname_of(&engine, &server)), "{out}");
    engine.ok(["rm", "-f", &server]);
    engine.ok(["network", "rm", "remote"]);
    let calls = plugin.calls();
    for call in [
        "/Plugin.Activate",
        "/IpamDriver.RequestPool",
        "/NetworkDriver.CreateNetwork",
        "/NetworkDriver.CreateEndpoint",
        "/NetworkDriver.Join",
        "/NetworkDriver.Leave",
        "/NetworkDriver.DeleteEndpoint",
        "/IpamDriver.ReleaseAddress",
        "/NetworkDriver.DeleteNetwork",
        "/IpamDriver.ReleasePool",
    ] {
        assert!(calls.contains(call), "{call} never called:\n{calls}");
    }
    assert!(
        !sh(&["ip", "-o", "link", "show"]).contains(&bridge),
        "the plugin's bridge is left"
    );
    // A plugin that never answers: the command fails after the deadline, not never.
    let hung = Plugin::start("hang", "unused");
    let started = std::time::Instant::now();
    let out = engine.cmd(["network", "create", "-d", &hung.name, "stuck"]);
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("no answer within"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
    assert!(!engine.ok(["network", "ls"]).contains("stuck"));
    let missing = engine.cmd(["network", "create", "-d", "bwtest-no-such-plugin", "x"]);
    assert!(
        missing.stderr.contains("plugin \"bwtest-no-such-plugin\""),
        "{missing}"
    );
    assert_nothing_left(&engine);
    assert_no_network_leftovers(&engine);
}
