//! The nftables rules for every bridge network, rebuilt whole from what is on disk each
//! time something changes, in one atomic `nft` transaction: there is never a rule for a
//! container that is gone, and a crash between two steps is mended by the next rebuild.
//!
//! Table `ip bulwark` (one per store): NAT out of non-internal networks, published ports as DNAT for
//! traffic to any of the host's own addresses (from outside, from the host itself, 127.0.0.1
//! included, and from containers: hairpin), and a forward filter that keeps networks apart.
use std::borrow::Cow;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, CT,
};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{JumpTarget, Match, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::ports::PortMapping;
use crate::{NetworkError, NetworkRecord};

const COMMENT: &str = "bulwark";

/// A published port and where it leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub container_ip: Ipv4Addr,
    pub mapping: PortMapping,
}

/// Rebuilds table `ip <table>` for `networks` and `published`.
pub fn apply(
    table: &str,
    networks: &[NetworkRecord],
    published: &[Published],
) -> Result<(), NetworkError> {
    let nft = nft_program()?;
    let ruleset = ruleset(table, networks, published);
    nftables::helper::apply_ruleset_with_args(&ruleset, Some(nft), nftables::helper::DEFAULT_ARGS)
        .map_err(|e| NetworkError::Firewall(e.to_string()))?;
    let _ = allow_in_iptables_forward(nft);
    Ok(())
}

/// Removes table `ip <table>` (when no bridge network is left).
pub fn clear(table: &str) -> Result<(), NetworkError> {
    let nft = nft_program()?;
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table_of(table)));
    batch.delete(NfListObject::Table(table_of(table)));
    nftables::helper::apply_ruleset_with_args(
        &batch.to_nftables(),
        Some(nft),
        nftables::helper::DEFAULT_ARGS,
    )
    .map_err(|e| NetworkError::Firewall(e.to_string()))
}

fn nft_program() -> Result<&'static str, NetworkError> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or_else(|| NetworkError::Firewall("the nft program was not found in /usr/sbin, /sbin or /usr/bin (install Debian's nftables)".into()))
}

fn table_of(table: &str) -> Table<'static> {
    Table {
        family: NfFamily::IP,
        name: table.to_owned().into(),
        handle: None,
    }
}

fn chain(
    table: &str,
    name: &'static str,
    hook: Option<(NfChainType, NfHook, i32)>,
) -> NfListObject<'static> {
    let mut chain = Chain {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        name: name.into(),
        ..Default::default()
    };
    if let Some((kind, hook, prio)) = hook {
        chain._type = Some(kind);
        chain.hook = Some(hook);
        chain.prio = Some(prio);
        chain.policy = Some(NfChainPolicy::Accept);
    }
    NfListObject::Chain(chain)
}

fn rule(table: &str, chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::IP,
        table: table.to_owned().into(),
        chain: chain.into(),
        expr: Cow::Owned(expr),
        ..Default::default()
    })
}

fn is(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn text(s: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(s.into()))
}

fn field(protocol: &'static str, name: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.into(),
            field: name.into(),
        },
    )))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: key.into(),
        family: None,
        dir: None,
    }))
}

fn net(subnet: &Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(text(subnet.network().to_string())),
        len: u32::from(subnet.prefix_len()),
    }))
}

fn local_destination() -> Statement<'static> {
    let fib = Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    }));
    is(fib, Operator::EQ, text("local"))
}

fn iif(name: &str) -> Statement<'static> {
    is(meta(MetaKey::Iifname), Operator::EQ, text(name))
}

fn oif(name: &str) -> Statement<'static> {
    is(meta(MetaKey::Oifname), Operator::EQ, text(name))
}

fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

/// The whole table as one transaction: made (so that deleting it cannot fail), deleted,
/// and made again with its chains and rules.
pub fn ruleset(
    table: &str,
    networks: &[NetworkRecord],
    published: &[Published],
) -> Nftables<'static> {
    let mut batch = Batch::new();
    let t = table;
    batch.add(NfListObject::Table(table_of(t)));
    batch.delete(NfListObject::Table(table_of(t)));
    batch.add(NfListObject::Table(table_of(t)));
    batch.add(chain(
        t,
        "prerouting",
        Some((NfChainType::NAT, NfHook::Prerouting, -100)),
    ));
    batch.add(chain(
        t,
        "output",
        Some((NfChainType::NAT, NfHook::Output, -100)),
    ));
    batch.add(chain(
        t,
        "postrouting",
        Some((NfChainType::NAT, NfHook::Postrouting, 100)),
    ));
    batch.add(chain(
        t,
        "forward",
        Some((NfChainType::Filter, NfHook::Forward, 0)),
    ));
    batch.add(chain(t, "ports", None));
    for hooked in ["prerouting", "output"] {
        batch.add(rule(
            t,
            hooked,
            vec![
                local_destination(),
                Statement::Jump(JumpTarget {
                    target: "ports".into(),
                }),
            ],
        ));
    }
    for p in published {
        let mut expr = Vec::new();
        if let Some(ip) = p.mapping.host_ip {
            expr.push(is(field("ip", "daddr"), Operator::EQ, text(ip.to_string())));
        }
        let protocol = p.mapping.protocol.name();
        expr.push(is(
            field(protocol, "dport"),
            Operator::EQ,
            Expression::Number(u32::from(p.mapping.host_port)),
        ));
        expr.push(Statement::DNAT(Some(NAT {
            addr: Some(text(p.container_ip.to_string())),
            family: None,
            port: Some(Expression::Number(u32::from(p.mapping.container_port))),
            flags: None,
        })));
        batch.add(rule(t, "ports", expr));
    }
    let established = is(
        ct("state"),
        Operator::IN,
        Expression::List(vec![text("established"), text("related")]),
    );
    batch.add(rule(
        t,
        "forward",
        vec![established, Statement::Accept(None)],
    ));
    for n in networks {
        let br = n.bridge.as_str();
        // From the host's own addresses (127.0.0.1 too: route_localnet is on for the
        // bridge) and hairpin from the network itself: replies must come back through us.
        batch.add(rule(
            t,
            "postrouting",
            vec![
                oif(br),
                is(
                    field("ip", "saddr"),
                    Operator::EQ,
                    net(&"127.0.0.0/8".parse().expect("a prefix")),
                ),
                masquerade(),
            ],
        ));
        batch.add(rule(
            t,
            "postrouting",
            vec![
                oif(br),
                is(field("ip", "saddr"), Operator::EQ, net(&n.subnet)),
                is(ct("status"), Operator::IN, text("dnat")),
                masquerade(),
            ],
        ));
        batch.add(rule(
            t,
            "forward",
            vec![iif(br), oif(br), Statement::Accept(None)],
        ));
        if n.internal {
            batch.add(rule(t, "forward", vec![iif(br), Statement::Drop(None)]));
            batch.add(rule(t, "forward", vec![oif(br), Statement::Drop(None)]));
            continue;
        }
        batch.add(rule(
            t,
            "postrouting",
            vec![
                is(field("ip", "saddr"), Operator::EQ, net(&n.subnet)),
                is(meta(MetaKey::Oifname), Operator::NEQ, text(br)),
                masquerade(),
            ],
        ));
        batch.add(rule(
            t,
            "forward",
            vec![
                oif(br),
                is(ct("status"), Operator::IN, text("dnat")),
                Statement::Accept(None),
            ],
        ));
        let others: Vec<Expression<'static>> = networks
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| text(o.bridge.clone()))
            .collect();
        if !others.is_empty() {
            let set = Expression::Named(NamedExpression::Set(
                others
                    .into_iter()
                    .map(nftables::expr::SetItem::Element)
                    .collect(),
            ));
            batch.add(rule(
                t,
                "forward",
                vec![
                    iif(br),
                    is(meta(MetaKey::Oifname), Operator::EQ, set),
                    Statement::Drop(None),
                ],
            ));
        }
        batch.add(rule(t, "forward", vec![iif(br), Statement::Accept(None)]));
        // Nothing reaches a container from outside but through a published port.
        batch.add(rule(t, "forward", vec![oif(br), Statement::Drop(None)]));
    }
    batch.to_nftables()
}

/// A host where iptables' FORWARD chain drops by default (Docker sets that) would drop
/// what our own chain lets through; a verdict of ours cannot override another table's
/// drop. So, if that chain exists, it gets accept rules for our bridges (our chain above
/// still decides: its drops are final).
fn allow_in_iptables_forward(nft: &str) -> Result<(), NetworkError> {
    let listed = nftables::helper::get_current_ruleset_with_args(
        Some(nft),
        ["list", "chain", "ip", "filter", "FORWARD"],
    )
    .map_err(|e| NetworkError::Firewall(e.to_string()))?;
    let present = listed.objects.iter().any(|o| {
        matches!(o, nftables::schema::NfObject::ListObject(NfListObject::Rule(r)) if r.comment.as_deref() == Some(COMMENT))
    });
    if present {
        return Ok(());
    }
    let mut batch = Batch::new();
    for pattern in ["bulwark0", "bw-*"] {
        for statement in [iif(pattern), oif(pattern)] {
            batch.add_cmd(nftables::schema::NfCmd::Insert(NfListObject::Rule(Rule {
                family: NfFamily::IP,
                table: "filter".into(),
                chain: "FORWARD".into(),
                expr: Cow::Owned(vec![statement, Statement::Accept(None)]),
                comment: Some(COMMENT.into()),
                ..Default::default()
            })));
        }
    }
    nftables::helper::apply_ruleset_with_args(
        &batch.to_nftables(),
        Some(nft),
        nftables::helper::DEFAULT_ARGS,
    )
    .map_err(|e| NetworkError::Firewall(e.to_string()))
}
