//! The resolver binary end to end: local answers over UDP and TCP, forwarding, SERVFAIL,
//! reloading, the instance lock, privilege drop and exit on removal.
mod common;

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const WEB: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 2);
const FROM_UPSTREAM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

fn records_json(port: u16, upstreams: &[SocketAddr], records: &str) -> String {
    let upstreams: Vec<String> = upstreams.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        r#"{{"listen": "127.0.0.1", "port": {port}, "upstreams": [{}], "records": [{records}]}}"#,
        upstreams.join(", ")
    )
}

const WEB_RECORDS: &str = r#"{"names": ["web", "web-alias", "3f2a1b4c5d6e"], "ip": "10.89.0.2"}"#;

/// Starts a resolver for `records` in a fresh scratch dir and waits until it answers.
fn start(upstreams: &[SocketAddr], records: &str) -> (Scratch, Resolver, SocketAddr) {
    let scratch = Scratch::new("net");
    let port = free_port();
    write_records(&scratch.records(), &records_json(port, upstreams, records));
    let mut resolver = Resolver::spawn(&scratch);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    resolver.wait_serving(addr, "web");
    (scratch, resolver, addr)
}

#[test]
fn answers_local_names_over_udp_and_tcp_and_forwards_the_rest() {
    let (upstream, asked) = fake_upstream(FROM_UPSTREAM);
    let (_scratch, resolver, addr) = start(&[upstream], WEB_RECORDS);

    let reply = udp_query(addr, "WEB.", RecordType::A).expect("udp reply");
    assert_eq!(a_records(&reply), [WEB]);
    assert_eq!(reply.answers[0].ttl, 600);
    assert!(reply.metadata.authoritative);
    assert_eq!(
        a_records(&tcp_query(addr, "web-alias", RecordType::A)),
        [WEB]
    );
    assert_eq!(
        a_records(&tcp_query(addr, "3f2a1b4c5d6e.", RecordType::A)),
        [WEB]
    );

    let aaaa = udp_query(addr, "web.", RecordType::AAAA).expect("udp reply");
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());

    let ptr = udp_query(addr, "2.0.89.10.in-addr.arpa.", RecordType::PTR).expect("udp reply");
    match ptr.answers.first().map(|record| &record.data) {
        Some(RData::PTR(name)) => assert_eq!(name.0.to_ascii(), "web."),
        other => panic!("expected a PTR answer, got {other:?}"),
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "local names never go upstream"
    );

    let forwarded = udp_query(addr, "example.com.", RecordType::A).expect("udp reply");
    assert_eq!(a_records(&forwarded), [FROM_UPSTREAM]);
    assert_eq!(
        forwarded.answers[0].ttl, 42,
        "the upstream's reply is passed through"
    );
    assert_eq!(
        a_records(&tcp_query(addr, "example.org.", RecordType::A)),
        [FROM_UPSTREAM]
    );
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // Running as root, the resolver serves as nobody with no_new_privs set.
    if nix::unistd::geteuid().is_root() {
        let status = fs::read_to_string(format!("/proc/{}/status", resolver.child.id())).unwrap();
        let field = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            line.split_whitespace()
                .skip(1)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(field("Uid:"), "65534 65534 65534 65534");
        assert_eq!(field("Gid:"), "65534 65534 65534 65534");
        assert_eq!(field("Groups:"), "");
        assert_eq!(field("NoNewPrivs:"), "1");
        assert_eq!(field("CapEff:"), "0000000000000000");
    }
}

#[test]
fn unknown_names_get_servfail_without_upstreams() {
    let (_scratch, _resolver, addr) = start(&[], WEB_RECORDS);
    let reply = udp_query(addr, "example.com.", RecordType::A).expect("udp reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(reply.answers.is_empty());
    let reply = tcp_query(addr, "nope.", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(
        a_records(&udp_query(addr, "web", RecordType::A).unwrap()),
        [WEB]
    );
}

#[test]
fn a_renamed_records_file_is_picked_up() {
    let (scratch, mut resolver, addr) = start(&[], WEB_RECORDS);
    let port = addr.port();
    let updated =
        r#"{"names": ["web"], "ip": "10.89.0.9"}, {"names": ["cache"], "ip": "10.89.0.4"}"#;
    write_records(&scratch.records(), &records_json(port, &[], updated));
    let reply = udp_query(addr, "web", RecordType::A).expect("udp reply");
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 9)]);
    assert_eq!(
        a_records(&tcp_query(addr, "cache", RecordType::A)),
        [Ipv4Addr::new(10, 89, 0, 4)]
    );
    let gone = udp_query(addr, "web-alias", RecordType::A).expect("udp reply");
    assert_eq!(
        gone.metadata.response_code,
        ResponseCode::ServFail,
        "no longer local"
    );

    // A broken version keeps the last good records in service.
    write_records(&scratch.records(), "{ not json");
    let reply = udp_query(addr, "cache", RecordType::A).expect("udp reply");
    assert_eq!(a_records(&reply), [Ipv4Addr::new(10, 89, 0, 4)]);
    assert!(resolver.child.try_wait().unwrap().is_none());
    assert!(resolver.stderr().contains("keeping the previous records"));
}

#[test]
fn removing_the_records_file_stops_the_resolver() {
    let (scratch, mut resolver, _addr) = start(&[], WEB_RECORDS);
    fs::remove_file(scratch.records()).unwrap();
    let status = resolver.wait_exit();
    assert!(status.success(), "{status}: {}", resolver.stderr());
}

#[test]
fn a_second_resolver_exits_quietly_while_the_lock_is_held() {
    let (scratch, mut first, addr) = start(&[], WEB_RECORDS);
    assert!(scratch.0.join("dns.json.lock").exists());
    let mut second = Resolver::spawn(&scratch);
    let status = second.wait_exit();
    assert!(status.success(), "{status}");
    assert_eq!(second.stderr(), "");
    assert!(first.child.try_wait().unwrap().is_none());
    assert_eq!(
        a_records(&udp_query(addr, "web", RecordType::A).unwrap()),
        [WEB]
    );
}

#[test]
fn a_bind_failure_exits_non_zero_naming_the_address() {
    let scratch = Scratch::new("bind");
    // An address this host does not have.
    let json = records_json(53, &[], WEB_RECORDS).replace("127.0.0.1", "192.0.2.1");
    write_records(&scratch.records(), &json);
    let mut resolver = Resolver::spawn(&scratch);
    let status = resolver.wait_exit();
    assert!(!status.success());
    let stderr = resolver.stderr();
    assert!(stderr.contains("192.0.2.1:53"), "{stderr}");
}
