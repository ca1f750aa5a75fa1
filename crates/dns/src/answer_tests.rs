//! Unit tests for the answer decision.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

use hickory_proto::op::Query;

use super::*;

fn records() -> Records {
    Records::parse(
        Path::new("dns.json"),
        br#"{"listen": "10.89.0.1", "records": [
            {"names": ["web", "web-alias", "3f2a1b4c5d6e"], "ip": "10.89.0.2"},
            {"names": ["svc"], "ip": "10.89.0.3"},
            {"names": ["svc", "db"], "ip": "10.89.0.4"},
            {"names": ["v6"], "ip": "fd00::5"}]}"#,
    )
    .unwrap()
}

/// A query as it arrives: built, then sent through the wire format.
fn query(name: &str, rtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = 4242;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    Message::from_vec(&message.to_vec().unwrap()).unwrap()
}

fn local(query: &Message) -> Message {
    match answer(query, &records()) {
        Answer::Local(reply) => Message::from_vec(&reply.to_vec().unwrap()).unwrap(),
        other => panic!("expected a local answer, got {other:?}"),
    }
}

fn addresses(reply: &Message) -> Vec<IpAddr> {
    reply
        .answers
        .iter()
        .map(|record| match &record.data {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(aaaa) => IpAddr::V6(aaaa.0),
            other => panic!("unexpected record {other:?}"),
        })
        .collect()
}

#[test]
fn a_query_for_a_known_name_is_answered_locally() {
    for name in ["web.", "WEB.", "Web-Alias.", "3F2A1B4C5D6E.", "web"] {
        let q = query(name, RecordType::A);
        let reply = local(&q);
        assert_eq!(reply.metadata.id, 4242);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.metadata.authoritative);
        assert!(reply.metadata.recursion_desired);
        assert_eq!(reply.queries, q.queries);
        assert_eq!(addresses(&reply), [IpAddr::V4(Ipv4Addr::new(10, 89, 0, 2))]);
        let record = &reply.answers[0];
        assert_eq!(record.ttl, LOCAL_TTL);
        // The owner name keeps the asker's spelling (0x20 case randomization).
        assert!(record.name.eq_case(q.queries[0].name()), "{name}");
    }
}

#[test]
fn a_shared_name_answers_every_address() {
    let reply = local(&query("svc.", RecordType::A));
    let expected: Vec<IpAddr> = vec![[10, 89, 0, 3].into(), [10, 89, 0, 4].into()];
    assert_eq!(addresses(&reply), expected);
}

#[test]
fn other_types_for_a_known_name_are_empty_noerror() {
    for rtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let reply = local(&query("web.", rtype));
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
        assert!(reply.answers.is_empty(), "{rtype}");
    }
    let v6 = local(&query("v6.", RecordType::AAAA));
    assert_eq!(
        addresses(&v6),
        [IpAddr::V6("fd00::5".parse::<Ipv6Addr>().unwrap())]
    );
    assert!(local(&query("v6.", RecordType::A)).answers.is_empty());
}

#[test]
fn reverse_queries_name_the_first_name_of_the_record() {
    for (arpa, target) in [
        ("2.0.89.10.in-addr.arpa.", "web."),
        ("4.0.89.10.IN-ADDR.ARPA.", "svc."),
        (
            "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.",
            "v6.",
        ),
    ] {
        let reply = local(&query(arpa, RecordType::PTR));
        assert_eq!(reply.answers.len(), 1, "{arpa}");
        match &reply.answers[0].data {
            RData::PTR(ptr) => assert_eq!(ptr.0.to_ascii(), target),
            other => panic!("unexpected record {other:?}"),
        }
    }
}

#[test]
fn unknown_names_and_addresses_are_forwarded() {
    for (name, rtype) in [
        ("example.com.", RecordType::A),
        ("web.example.com.", RecordType::A),
        ("9.0.89.10.in-addr.arpa.", RecordType::PTR),
        ("0.89.10.in-addr.arpa.", RecordType::PTR),
        ("web.", RecordType::PTR),
    ] {
        let verdict = answer(&query(name, rtype), &records());
        assert!(
            matches!(verdict, Answer::Forward),
            "{name} {rtype}: {verdict:?}"
        );
    }
    let mut odd = Message::query();
    let label = hickory_proto::rr::Label::from_raw_bytes(b"w\x00eb").unwrap();
    odd.add_query(Query::query(
        Name::from_labels([label]).unwrap(),
        RecordType::A,
    ));
    assert!(matches!(answer(&odd, &records()), Answer::Forward));
}

#[test]
fn malformed_or_unsupported_queries_get_errors_or_nothing() {
    let mut response = query("web.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert!(matches!(answer(&response, &records()), Answer::Ignore));

    let mut status = query("web.", RecordType::A);
    status.metadata.op_code = OpCode::Status;
    let reply = local(&status);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    assert!(reply.answers.is_empty());

    let mut empty = query("web.", RecordType::A);
    empty.queries.clear();
    assert_eq!(local(&empty).metadata.response_code, ResponseCode::FormErr);
    let mut two = query("web.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("db.").unwrap(),
        RecordType::A,
    ));
    assert_eq!(local(&two).metadata.response_code, ResponseCode::FormErr);
}

#[test]
fn failure_replies_echo_the_question_and_edns() {
    let mut q = query("example.com.", RecordType::A);
    let plain = reply(&q, ResponseCode::ServFail);
    assert_eq!(plain.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(plain.metadata.id, 4242);
    assert_eq!(plain.queries, q.queries);
    assert!(plain.edns.is_none());
    q.set_edns(Edns::new());
    let with_edns = reply(&q, ResponseCode::ServFail);
    assert_eq!(with_edns.edns.map(|e| e.max_payload()), Some(EDNS_PAYLOAD));
}

#[test]
fn oversized_replies_are_truncated() {
    let mut text = String::from(r#"{"listen": "10.89.0.1", "records": ["#);
    for i in 0..100 {
        let comma = if i == 0 { "" } else { "," };
        text += &format!(r#"{comma}{{"names": ["many"], "ip": "10.89.1.{i}"}}"#);
    }
    text += "]}";
    let records = Records::parse(Path::new("dns.json"), text.as_bytes()).unwrap();
    let q = query("many.", RecordType::A);
    assert_eq!(udp_limit(&q), 512);
    let Answer::Local(full) = answer(&q, &records) else {
        panic!("expected a local answer");
    };
    assert_eq!(full.answers.len(), 100);
    let whole = Message::from_vec(&encode(&full, usize::from(u16::MAX)).unwrap()).unwrap();
    assert_eq!(whole.answers.len(), 100);
    assert!(!whole.metadata.truncation);
    let bytes = encode(&full, udp_limit(&q)).unwrap();
    assert!(bytes.len() <= 512);
    let cut = Message::from_vec(&bytes).unwrap();
    assert!(cut.metadata.truncation);
    assert!(cut.answers.is_empty());
    assert_eq!(cut.metadata.id, 4242);
}
