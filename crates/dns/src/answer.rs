//! The decision for one query: answer it from the records, forward it, or drop it.
//! Pure: a parsed message in, a message (or a verdict) out.
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::records::Records;

/// TTL of local answers, as Docker's embedded resolver uses.
pub const LOCAL_TTL: u32 = 600;

/// The UDP payload size advertised in EDNS replies.
const EDNS_PAYLOAD: u16 = 1232;

/// What to do with one query.
#[derive(Debug)]
pub enum Answer {
    /// Send this reply.
    Local(Message),
    /// The name is not ours: ask the upstreams.
    Forward,
    /// Not a query (e.g. a stray response): send nothing.
    Ignore,
}

/// Decides how to answer `query` from `records`.
pub fn answer(query: &Message, records: &Records) -> Answer {
    if query.metadata.message_type != MessageType::Query {
        return Answer::Ignore;
    }
    if query.metadata.op_code != OpCode::Query {
        return Answer::Local(reply(query, ResponseCode::NotImp));
    }
    let [question] = query.queries.as_slice() else {
        return Answer::Local(reply(query, ResponseCode::FormErr));
    };
    if question.query_class() != DNSClass::IN {
        return Answer::Forward;
    }
    let name = question.name();
    if question.query_type() == RecordType::PTR {
        return match reverse_name(name, records) {
            Some(target) => {
                let mut response = authoritative(query);
                response.add_answer(Record::from_rdata(
                    name.clone(),
                    LOCAL_TTL,
                    RData::PTR(PTR(target)),
                ));
                Answer::Local(response)
            }
            None => Answer::Forward,
        };
    }
    let Some(ips) = lookup_key(name).and_then(|key| records.addresses(&key)) else {
        return Answer::Forward;
    };
    // A known name answers every type itself, so AAAA for a v4-only container is an
    // empty NOERROR rather than a slow trip upstream.
    let mut response = authoritative(query);
    for ip in ips {
        let data = match (question.query_type(), ip) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(*v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
            _ => continue,
        };
        response.add_answer(Record::from_rdata(name.clone(), LOCAL_TTL, data));
    }
    Answer::Local(response)
}

/// A reply to `query` carrying only `code`, e.g. SERVFAIL when no upstream answered.
pub fn reply(query: &Message, code: ResponseCode) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata = Metadata::response_from_request(&query.metadata);
    response.metadata.response_code = code;
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.iter().cloned());
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        response.set_edns(edns);
    }
    response
}

fn authoritative(query: &Message) -> Message {
    let mut response = reply(query, ResponseCode::NoError);
    response.metadata.authoritative = true;
    response
}

/// Serializes `response`, dropping its records and setting TC when it exceeds `limit` bytes.
pub fn encode(response: &Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = response.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    response.truncate().to_vec().ok()
}

/// The largest UDP reply `query`'s sender accepts.
pub fn udp_limit(query: &Message) -> usize {
    usize::from(query.max_payload()).min(4096)
}

/// The records key for a queried name, or `None` when it cannot be one of ours.
fn lookup_key(name: &Name) -> Option<String> {
    let mut key = String::with_capacity(name.len());
    for label in name.iter() {
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        if !key.is_empty() {
            key.push('.');
        }
        key.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
    }
    (!key.is_empty()).then_some(key)
}

/// The fully qualified name of the record whose address `name` reverses, if any.
fn reverse_name(name: &Name, records: &Records) -> Option<Name> {
    let net = name.parse_arpa_name().ok()?;
    if net.prefix_len() != net.max_prefix_len() {
        return None;
    }
    let target = records.name_of(net.addr())?;
    Name::from_ascii(format!("{target}.")).ok()
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
