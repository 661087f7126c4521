//! /networks/… and the networking parts of container create/inspect/stats in Docker's shapes.

use std::collections::BTreeMap;

use berth_engine::networks::{port_specs, CreateNetwork, EndpointSpec, NetworkInfo, NetworkSpec};
use berth_engine::{ContainerRecord, Engine};
use hyper::{Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{self, Body};
use super::{error, json_body, Ctx};
use crate::types::CreateBody;

/// One network's endpoint settings in EndpointsConfig / connect's EndpointConfig.
fn endpoint_spec(v: &Value) -> EndpointSpec {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    EndpointSpec {
        aliases: strs(&v["Aliases"]),
        ip: v["IPAMConfig"]["IPv4Address"]
            .as_str()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok()),
        ip6: v["IPAMConfig"]["IPv6Address"]
            .as_str()
            .filter(|s| !s.is_empty())
            .and_then(|s| s.parse().ok()),
        mac: v["MacAddress"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        links: strs(&v["Links"]),
    }
}

/// The networking half of a create request: (network spec, -P), or a 400.
pub fn create_parts(b: &CreateBody) -> Result<(NetworkSpec, bool), String> {
    let h = &b.host_config;
    let bindings: BTreeMap<String, Vec<(String, String)>> = h
        .port_bindings
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let list = v
                .unwrap_or_default()
                .into_iter()
                .map(|p| (p.host_ip, p.host_port))
                .collect();
            (k, list)
        })
        .collect();
    let mut ports = port_specs(&bindings).map_err(|e| e.to_string())?;
    ports.sort_by_key(|p| (p.container_port, p.host_port));
    let mut exposed: Vec<String> = b
        .config
        .exposed_ports
        .as_ref()
        .and_then(|v| v.as_object())
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    exposed.extend(bindings.keys().cloned());
    exposed.dedup();
    let mut endpoints: BTreeMap<String, EndpointSpec> = b
        .networking_config
        .as_ref()
        .and_then(|n| n["EndpointsConfig"].as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), endpoint_spec(v)))
                .collect()
        })
        .unwrap_or_default();
    // The primary network's settings live under its name; "default" means the bridge.
    if !b.config.mac_address.is_empty() {
        let primary = match h.network_mode.as_str() {
            "" | "default" => "bridge".to_string(),
            m => m.to_string(),
        };
        endpoints.entry(primary).or_default().mac = Some(b.config.mac_address.clone());
    }
    if let Some(e) = endpoints.remove("default") {
        endpoints.entry("bridge".into()).or_insert(e);
    }
    Ok((
        NetworkSpec {
            endpoints,
            ports,
            exposed,
            extra_hosts: h.extra_hosts.clone().unwrap_or_default(),
            links: h.links.clone().unwrap_or_default(),
            dns: h.dns.clone().unwrap_or_default(),
            dns_search: h.dns_search.clone().unwrap_or_default(),
            dns_options: h.dns_options.clone().unwrap_or_default(),
        },
        h.publish_all_ports,
    ))
}

/// Inspect's NetworkSettings.
pub fn settings_json(engine: &Engine, rec: &ContainerRecord) -> Value {
    let (endpoints, published) = engine.container_networking(&rec.id);
    let mut ports = serde_json::Map::new();
    for e in &rec.spec.host.network.exposed {
        ports.insert(e.clone(), Value::Null);
    }
    for p in &published {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let entry = ports.entry(key).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "HostPort": p.host_port.to_string(),
            }));
        }
    }
    let mut networks = serde_json::Map::new();
    for (e, network_id) in &endpoints {
        let aliases: Vec<&String> = e.names.iter().skip(1).collect();
        let links = rec
            .spec
            .host
            .network
            .endpoints
            .get(&e.network)
            .filter(|ep| !ep.links.is_empty())
            .map(|ep| json!(ep.links))
            .unwrap_or(Value::Null);
        networks.insert(
            e.network.clone(),
            json!({
                "IPAMConfig": null,
                "Links": links,
                "Aliases": aliases,
                "MacAddress": e.mac,
                "NetworkID": network_id,
                "EndpointID": format!("{}{}", e.host_veth, &rec.id[..12]),
                "Gateway": e.gateway.map(|g| g.to_string()).unwrap_or_default(),
                "IPAddress": e.ip.to_string(),
                "IPPrefixLen": e.prefix_len,
                "IPv6Gateway": e.gateway6.map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.ip6.map(|i| i.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.prefix_len6,
                "DNSNames": e.names,
            }),
        );
    }
    // The top-level fields describe the default bridge endpoint (as Docker's).
    let primary = endpoints
        .iter()
        .map(|(e, _)| e)
        .find(|e| e.gateway.is_some())
        .or(endpoints.first().map(|(e, _)| e));
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if rec.state.pid > 0 { format!("/proc/{}/ns/net", rec.state.pid) } else { String::new() },
        "HairpinMode": false,
        "Ports": ports,
        "IPAddress": primary.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": primary.map(|e| e.prefix_len).unwrap_or(0),
        "Gateway": primary.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": primary.map(|e| e.mac.clone()).unwrap_or_default(),
        "EndpointID": primary.map(|e| format!("{}{}", e.host_veth, &rec.id[..12])).unwrap_or_default(),
        "GlobalIPv6Address": primary.and_then(|e| e.ip6).map(|i| i.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": primary.map(|e| e.prefix_len6).unwrap_or(0),
        "IPv6Gateway": primary.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "Networks": networks,
    })
}

/// Inspect's HostConfig fields about networking, as the client asked for them.
pub fn host_config_json(rec: &ContainerRecord, v: &mut Value) {
    let n = &rec.spec.host.network;
    let mut bindings = serde_json::Map::new();
    for p in &n.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let entry = bindings.entry(key).or_insert_with(|| json!([]));
        if let Some(a) = entry.as_array_mut() {
            a.push(json!({
                "HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
            }));
        }
    }
    let h = &mut v["HostConfig"];
    h["PortBindings"] = Value::Object(bindings);
    h["ExtraHosts"] = json!(n.extra_hosts);
    // Docker's form: "/target:/this/alias".
    h["Links"] = if n.links.is_empty() {
        Value::Null
    } else {
        json!(n
            .links
            .iter()
            .filter_map(|l| l.split_once(':'))
            .map(|(t, a)| format!("/{t}:/{}/{a}", rec.name))
            .collect::<Vec<_>>())
    };
    h["Dns"] = json!(n.dns);
    h["DnsSearch"] = json!(n.dns_search);
    h["DnsOptions"] = json!(n.dns_options);
    let dir = v["GraphDriver"]["Data"]["MergedDir"]
        .as_str()
        .and_then(|m| m.strip_suffix("/rootfs"))
        .map(str::to_string);
    if let Some(dir) = dir.filter(|_| rec.spec.host.network_mode != "host") {
        for (k, f) in [
            ("HostsPath", "hosts"),
            ("HostnamePath", "hostname"),
            ("ResolvConfPath", "resolv.conf"),
        ] {
            v[k] = json!(format!("{dir}/{f}"));
        }
    }
}

/// `ps`'s Ports: [{IP, PrivatePort, PublicPort, Type}].
pub fn summary_ports(engine: &Engine, rec: &ContainerRecord) -> Vec<Value> {
    let (_, published) = engine.container_networking(&rec.id);
    published
        .iter()
        .map(|p| {
            json!({
                "IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()),
                "PrivatePort": p.container_port,
                "PublicPort": p.host_port,
                "Type": p.protocol.to_string(),
            })
        })
        .collect()
}

/// stats' "networks": per interface, Docker's field names.
pub fn stats_json(engine: &Engine, id: &str) -> Value {
    let mut m = serde_json::Map::new();
    for (ifname, s) in engine.container_network_stats(id) {
        m.insert(
            ifname,
            json!({
                "rx_bytes": s.rx_bytes, "rx_packets": s.rx_packets,
                "rx_errors": s.rx_errors, "rx_dropped": s.rx_dropped,
                "tx_bytes": s.tx_bytes, "tx_packets": s.tx_packets,
                "tx_errors": s.tx_errors, "tx_dropped": s.tx_dropped,
            }),
        );
    }
    Value::Object(m)
}

fn network_json(n: &NetworkInfo, with_containers: bool) -> Value {
    let mut config = serde_json::Map::new();
    if let Some(s) = &n.subnet {
        config.insert("Subnet".into(), json!(s));
    }
    if let Some(g) = &n.gateway {
        config.insert("Gateway".into(), json!(g));
    }
    if let Some(r) = &n.ip_range {
        config.insert("IPRange".into(), json!(r));
    }
    let mut ipam_config = if config.is_empty() {
        vec![]
    } else {
        vec![Value::Object(config)]
    };
    if let Some(s6) = &n.subnet6 {
        ipam_config.push(json!({"Subnet": s6, "Gateway": n.gateway6.clone().unwrap_or_default()}));
    }
    let mut containers = serde_json::Map::new();
    if with_containers {
        for (id, name, e) in &n.containers {
            containers.insert(
                id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": format!("{}{}", e.host_veth, &id[..12.min(id.len())]),
                    "MacAddress": e.mac,
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix_len),
                    "IPv6Address": e.ip6.map(|i| format!("{i}/{}", e.prefix_len6)).unwrap_or_default(),
                }),
            );
        }
    }
    let mut options = serde_json::Map::new();
    if let Some(b) = &n.bridge {
        options.insert("com.docker.network.bridge.name".into(), json!(b));
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": ipam_config},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

/// `filters={"name":["x"],"id":[..],"driver":[..],"dangling":["true"]}`; other keys ignored.
fn keep(n: &NetworkInfo, filters: &Value) -> bool {
    let list = |k: &str| -> Vec<String> {
        match &filters[k] {
            Value::Array(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
            Value::Object(o) => o.keys().cloned().collect(),
            _ => Vec::new(),
        }
    };
    let names = list("name");
    if !names.is_empty() && !names.iter().any(|x| n.name.contains(x.as_str())) {
        return false;
    }
    let ids = list("id");
    if !ids.is_empty() && !ids.iter().any(|x| n.id.starts_with(x.as_str())) {
        return false;
    }
    let drivers = list("driver");
    if !drivers.is_empty() && !drivers.contains(&n.driver) {
        return false;
    }
    true
}

pub fn list(ctx: &Ctx) -> Response<Body> {
    let filters: Value = ctx
        .query
        .get("filters")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(Value::Null);
    let v: Vec<Value> = ctx
        .engine
        .list_networks()
        .iter()
        .filter(|n| keep(n, &filters))
        .map(|n| network_json(n, false))
        .collect();
    body::json(StatusCode::OK, &v)
}

pub fn inspect(ctx: &Ctx, key: &str) -> Response<Body> {
    match ctx.engine.inspect_network(key) {
        Ok(n) => body::json(StatusCode::OK, &network_json(&n, true)),
        Err(e) => error::response(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBodyNet {
    name: String,
    driver: String,
    internal: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Value>,
    labels: Option<BTreeMap<String, String>>,
    check_duplicate: Option<bool>,
    options: Option<BTreeMap<String, String>>,
}

pub async fn create(ctx: Ctx) -> Response<Body> {
    let engine = ctx.engine.clone();
    let b: CreateBodyNet = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let _ = b.check_duplicate;
    let ipam: Vec<(Option<String>, Option<String>, Option<String>)> = b
        .ipam
        .as_ref()
        .and_then(|i| i["Config"].as_array())
        .map(|a| {
            a.iter()
                .map(|c| {
                    let s = |k: &str| c[k].as_str().map(str::to_string);
                    (s("Subnet"), s("Gateway"), s("IPRange"))
                })
                .collect()
        })
        .unwrap_or_default();
    let req = CreateNetwork {
        name: b.name,
        driver: b.driver,
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        ipam,
        subnet: None,
        gateway: None,
        ip_range: None,
        internal: b.internal,
        labels: b.labels.unwrap_or_default(),
        options: b.options.unwrap_or_default(),
    };
    let done = tokio::task::spawn_blocking(move || engine.create_network(req)).await;
    match done {
        Ok(Ok(n)) => body::json(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})),
        Ok(Err(e)) => error::response(&e),
        Err(e) => body::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn remove(ctx: &Ctx, key: &str) -> Response<Body> {
    let engine = ctx.engine.clone();
    let key = key.to_string();
    match tokio::task::spawn_blocking(move || engine.remove_network(&key)).await {
        Ok(Ok(())) => body::empty(StatusCode::NO_CONTENT),
        Ok(Err(e)) => error::response(&e),
        Err(e) => body::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

pub async fn prune(ctx: &Ctx) -> Response<Body> {
    let engine = ctx.engine.clone();
    match tokio::task::spawn_blocking(move || engine.prune_networks()).await {
        Ok(Ok(names)) => body::json(StatusCode::OK, &json!({"NetworksDeleted": names})),
        Ok(Err(e)) => error::response(&e),
        Err(e) => body::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<Value>,
    force: bool,
}

pub async fn connect(ctx: Ctx, key: &str) -> Response<Body> {
    let engine = ctx.engine.clone();
    let b: ConnectBody = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ep = b
        .endpoint_config
        .as_ref()
        .map(endpoint_spec)
        .unwrap_or_default();
    match engine.connect_network(key, &b.container, ep).await {
        Ok(()) => body::empty(StatusCode::OK),
        Err(e) => error::response(&e),
    }
}

pub async fn disconnect(ctx: Ctx, key: &str) -> Response<Body> {
    let engine = ctx.engine.clone();
    let b: ConnectBody = match json_body(ctx.req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match engine.disconnect_network(key, &b.container, b.force).await {
        Ok(()) => body::empty(StatusCode::OK),
        Err(e) => error::response(&e),
    }
}
