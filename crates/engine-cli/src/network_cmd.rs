//! `network ...` and `port`: flags in, one engine call, Docker's output.
use std::collections::BTreeMap;

use bulwark_engine::{Engine, NetworkCreateRequest, NetworkRecord, PREDEFINED_NETWORKS};
use serde_json::{json, Value};

use crate::error::CliError;
use crate::format::{tabulate, Template};
use crate::network_args::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkLsArgs, NetworkPruneArgs,
    NetworkRmArgs, PortArgs,
};

fn key_values(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
            None if !v.is_empty() => Ok((v.clone(), String::new())),
            _ => Err(CliError::Usage(format!(
                "invalid {flag} {v:?}: expected KEY=VALUE"
            ))),
        })
        .collect()
}

pub fn create(engine: &Engine, a: &NetworkCreateArgs) -> Result<u8, CliError> {
    let request = NetworkCreateRequest {
        name: a.name.clone(),
        driver: a.driver.clone(),
        subnet: a.subnet.clone(),
        gateway: a.gateway.clone(),
        ip_range: a.ip_range.clone(),
        internal: a.internal,
        ipv6: a.ipv6,
        ipam_driver: a.ipam_driver.clone().filter(|d| d != "default"),
        options: key_values("-o/--opt", &a.opt)?,
        labels: key_values("--label", &a.label)?,
    };
    let record = engine.create_network(&request)?;
    println!("{}", record.id);
    Ok(0)
}

/// A row of `network ls`: the predefined `host` and `none` are listed as Docker lists
/// them, though nothing is stored for them.
fn rows(engine: &Engine) -> Vec<Value> {
    let stored = engine.list_networks();
    let mut rows: Vec<Value> = stored.iter().map(row).collect();
    for name in PREDEFINED_NETWORKS.iter().filter(|n| **n != "bridge") {
        rows.push(json!({"ID": format!("{:0<64}", hex_of(name)), "Name": name, "Driver": if *name == "host" { "host" } else { "null" }, "Scope": "local", "Internal": false, "Labels": {}}));
    }
    rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    rows
}

fn hex_of(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn row(n: &NetworkRecord) -> Value {
    json!({"ID": n.id, "Name": n.name, "Driver": n.driver, "Scope": "local", "Internal": n.internal, "Labels": n.labels, "Subnet": n.subnet.to_string()})
}

fn matches(row: &Value, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(key, value)| match key.as_str() {
        "name" => row["Name"]
            .as_str()
            .is_some_and(|n| n.contains(value.as_str())),
        "id" => row["ID"]
            .as_str()
            .is_some_and(|n| n.starts_with(value.as_str())),
        "driver" => row["Driver"] == value.as_str(),
        "label" => match value.split_once('=') {
            Some((k, v)) => row["Labels"][k] == v,
            None => row["Labels"].get(value).is_some(),
        },
        "type" => {
            (value == "builtin")
                == PREDEFINED_NETWORKS.contains(&row["Name"].as_str().unwrap_or_default())
        }
        _ => false,
    })
}

pub fn ls(engine: &Engine, a: &NetworkLsArgs) -> Result<u8, CliError> {
    let mut filters = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some((k, v)) if ["name", "id", "driver", "label", "type"].contains(&k) => {
                filters.push((k.to_owned(), v.to_owned()))
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "invalid filter {f:?} (expected name=, id=, driver=, label= or type=)"
                )))
            }
        }
    }
    let rows: Vec<Value> = rows(engine)
        .into_iter()
        .filter(|r| matches(r, &filters))
        .collect();
    let id = |r: &Value| {
        let id = r["ID"].as_str().unwrap_or_default().to_owned();
        if a.no_trunc {
            id
        } else {
            id[..12].to_owned()
        }
    };
    if a.quiet {
        rows.iter().for_each(|r| println!("{}", id(r)));
        return Ok(0);
    }
    if let Some(format) = &a.format {
        let template = Template::parse(format, "")?;
        for r in &rows {
            let mut shown = r.clone();
            shown["ID"] = json!(id(r));
            println!("{}", template.render(&shown));
        }
        return Ok(0);
    }
    let mut lines = vec!["NETWORK ID\tNAME\tDRIVER\tSCOPE".to_owned()];
    for r in &rows {
        lines.push(format!(
            "{}\t{}\t{}\t{}",
            id(r),
            r["Name"].as_str().unwrap_or_default(),
            r["Driver"].as_str().unwrap_or_default(),
            "local"
        ));
    }
    print!("{}", tabulate(&lines));
    Ok(0)
}

pub fn inspect(engine: &Engine, a: &crate::container_args::InspectArgs) -> Result<u8, CliError> {
    crate::container_cmd::show_inspected(a, |what| {
        engine.inspect_network(what).map_err(|e| e.to_string())
    })
}

pub fn rm(engine: &Engine, a: &NetworkRmArgs) -> Result<u8, CliError> {
    crate::container_cmd::for_each(&a.networks, |what| match engine.remove_network(what) {
        Ok(_) => Ok(Some(what.to_owned())),
        Err(bulwark_engine::EngineError::Network(m)) if a.force && m.contains("not found") => {
            Ok(None)
        }
        Err(e) => Err(e),
    })
}

pub fn prune(engine: &Engine, a: &NetworkPruneArgs) -> Result<u8, CliError> {
    if !a.force
        && !crate::container_cmd::confirm(
            "This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let removed = engine.prune_networks()?;
    if !removed.is_empty() {
        println!("Deleted Networks:");
        removed.iter().for_each(|n| println!("{n}"));
    }
    Ok(0)
}

pub fn port(engine: &Engine, a: &PortArgs) -> Result<u8, CliError> {
    let mappings = engine.container_ports(&a.container, a.private.as_deref())?;
    for m in mappings {
        match a.private {
            Some(_) => println!(
                "{}:{}",
                m.host_ip
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "0.0.0.0".into()),
                m.host_port
            ),
            None => println!("{m}"),
        }
    }
    Ok(0)
}

pub fn connect(engine: &Engine, a: &NetworkConnectArgs) -> Result<u8, CliError> {
    engine.connect_network(&a.network, &a.container, a.ip.as_deref(), &a.alias)?;
    Ok(0)
}

pub fn disconnect(engine: &Engine, a: &NetworkDisconnectArgs) -> Result<u8, CliError> {
    engine.disconnect_network(&a.network, &a.container)?;
    Ok(0)
}
