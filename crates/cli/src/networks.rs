//! `network create|ls|inspect|rm|prune|connect|disconnect`, and the networking flags of
//! `run`/`create` (`-p`, `-P`, `--network-alias`, `--ip`, `--add-host`, `--dns`, …).

use std::collections::BTreeMap;

use berth_api::client::{Client, ClientError, Method};
use berth_api::types::{CreateBody, PortBinding};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::format;

/// Networking flags of `run` and `create`.
#[derive(Args, Debug, Clone, Default)]
pub struct NetFlags {
    /// Publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto]).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port without publishing it.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g. 172.30.100.104).
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g. fd00:beef::10), on a network created with --ipv6.
    #[arg(long)]
    pub ip6: Option<String>,
    /// Container MAC address (e.g. 02:42:ac:11:00:02).
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Add a link to another container (name[:alias]).
    #[arg(long = "link")]
    pub link: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip).
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers.
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains.
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options.
    #[arg(long = "dns-option")]
    pub dns_option: Vec<String>,
}

/// "[ip:][host:]container[/proto]" (ranges allowed) → ("80/tcp", binding) pairs.
fn port_bindings(spec: &str) -> Result<Vec<(String, PortBinding)>, ClientError> {
    let specs = berth_network::ports::parse_published(spec)
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    Ok(specs
        .into_iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.protocol),
                PortBinding {
                    host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                    host_port: if p.host_port == 0 {
                        String::new()
                    } else {
                        p.host_port.to_string()
                    },
                },
            )
        })
        .collect())
}

/// Put the flags into a create body whose HostConfig.NetworkMode is already set.
pub fn apply(f: &NetFlags, b: &mut CreateBody) -> Result<(), ClientError> {
    let h = &mut b.host_config;
    let mut bindings: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in &f.publish {
        for (key, binding) in port_bindings(p)? {
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }
    let mut exposed = serde_json::Map::new();
    for e in f.expose.iter().chain(bindings.keys()) {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    if !exposed.is_empty() {
        b.config.exposed_ports = Some(Value::Object(exposed));
    }
    if !bindings.is_empty() {
        h.port_bindings = Some(bindings);
    }
    h.publish_all_ports = f.publish_all;
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
    h.extra_hosts = nonempty(&f.add_host);
    h.links = nonempty(&f.link);
    h.dns = nonempty(&f.dns);
    h.dns_search = nonempty(&f.dns_search);
    h.dns_options = nonempty(&f.dns_option);
    if !f.network_alias.is_empty() || f.ip.is_some() || f.ip6.is_some() || f.mac_address.is_some() {
        let net = match h.network_mode.as_str() {
            "" | "default" => "bridge".to_string(),
            n => n.to_string(),
        };
        let mut ep = json!({"Aliases": f.network_alias});
        if let Some(ip) = &f.ip {
            ep["IPAMConfig"]["IPv4Address"] = json!(ip);
        }
        if let Some(ip6) = &f.ip6 {
            ep["IPAMConfig"]["IPv6Address"] = json!(ip6);
        }
        if let Some(m) = &f.mac_address {
            ep["MacAddress"] = json!(m);
        }
        b.networking_config = Some(json!({"EndpointsConfig": {net: ep}}));
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a network.
    Create {
        /// Subnet in CIDR format (one IPv4 and, with --ipv6, one IPv6).
        #[arg(long)]
        subnet: Vec<String>,
        /// Gateway for the subnet of the same family.
        #[arg(long)]
        gateway: Vec<String>,
        /// Allocate container addresses from a sub-range.
        #[arg(long = "ip-range")]
        ip_range: Option<String>,
        /// Enable IPv6 networking.
        #[arg(long)]
        ipv6: bool,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Driver to manage the network (bridge only).
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Set metadata on a network.
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Format output using a template ('{{.Name}} {{.Driver}}', '{{json .}}').
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
    },
    /// Connect a container to a network.
    Connect {
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address.
        #[arg(long)]
        ip: Option<String>,
        /// IPv6 address.
        #[arg(long)]
        ip6: Option<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
}

pub async fn run(c: &Client, cmd: NetworkCommand) -> Result<i32, ClientError> {
    match cmd {
        NetworkCommand::Create {
            subnet,
            gateway,
            ip_range,
            ipv6,
            internal,
            driver,
            label,
            name,
        } => {
            // One IPAM entry per family, as the docker CLI sends them.
            let mut configs: Vec<serde_json::Map<String, Value>> = Vec::new();
            let family = |s: &str| s.contains(':');
            for s in &subnet {
                let mut m = serde_json::Map::new();
                m.insert("Subnet".into(), json!(s));
                if let Some(g) = gateway.iter().find(|g| family(g) == family(s)) {
                    m.insert("Gateway".into(), json!(g));
                }
                if let Some(r) = ip_range.as_ref().filter(|r| family(r) == family(s)) {
                    m.insert("IPRange".into(), json!(r));
                }
                configs.push(m);
            }
            if subnet.is_empty() && (!gateway.is_empty() || ip_range.is_some()) {
                return Err(ClientError::Protocol(
                    "--gateway and --ip-range need a --subnet".into(),
                ));
            }
            let labels: BTreeMap<String, String> = label
                .iter()
                .map(|l| match l.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (l.clone(), String::new()),
                })
                .collect();
            let body = json!({
                "Name": name, "Driver": driver, "Internal": internal, "Labels": labels,
                "EnableIPv6": ipv6,
                "IPAM": {"Driver": "default", "Config": configs},
            });
            let r: Value = c.post("/networks/create", &body).await?;
            println!("{}", r["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCommand::Ls { quiet, format } => {
            let l: Vec<Value> = c.get("/networks").await?;
            let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
            if let Some(f) = format.filter(|_| !quiet) {
                let rows: Vec<Value> = l
                    .iter()
                    .map(|n| {
                        json!({"ID": format::short_id(&s(n, "Id")), "Name": s(n, "Name"),
                               "Driver": s(n, "Driver"), "Scope": s(n, "Scope"),
                               "Internal": n["Internal"].as_bool().unwrap_or(false)})
                    })
                    .collect();
                format::templated_with(&f, &rows, &[("ID", "NETWORK ID")])?;
            } else if quiet {
                for n in &l {
                    println!("{}", format::short_id(&s(n, "Id")));
                }
            } else {
                let rows: Vec<Vec<String>> = l
                    .iter()
                    .map(|n| {
                        vec![
                            format::short_id(&s(n, "Id")),
                            s(n, "Name"),
                            s(n, "Driver"),
                            s(n, "Scope"),
                        ]
                    })
                    .collect();
                format::table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE"], &rows);
            }
            Ok(0)
        }
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &networks {
                match c.get::<Value>(&format!("/networks/{n}")).await {
                    Ok(v) => out.push(v),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
            );
            Ok(code)
        }
        NetworkCommand::Rm { networks } => {
            let mut code = 0;
            for n in &networks {
                match c
                    .call_bytes(Method::DELETE, &format!("/networks/{n}"), None)
                    .await
                {
                    Ok(_) => println!("{n}"),
                    Err(e @ ClientError::Connect { .. }) => return Err(e),
                    Err(e) => {
                        eprintln!("{e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Prune { .. } => {
            let r: Value = c.post("/networks/prune", &json!({})).await?;
            if let Some(names) = r["NetworksDeleted"].as_array().filter(|n| !n.is_empty()) {
                println!("Deleted Networks:");
                for n in names {
                    println!("{}", n.as_str().unwrap_or(""));
                }
            }
            Ok(0)
        }
        NetworkCommand::Connect {
            alias,
            ip,
            ip6,
            network,
            container,
        } => {
            let mut ep = json!({"Aliases": alias});
            if let Some(ip) = ip {
                ep["IPAMConfig"]["IPv4Address"] = json!(ip);
            }
            if let Some(ip6) = ip6 {
                ep["IPAMConfig"]["IPv6Address"] = json!(ip6);
            }
            let body = json!({"Container": container, "EndpointConfig": ep});
            let b = serde_json::to_vec(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
            c.call_bytes(
                Method::POST,
                &format!("/networks/{network}/connect"),
                Some(b),
            )
            .await?;
            Ok(0)
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => {
            let body = json!({"Container": container, "Force": force});
            let b = serde_json::to_vec(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
            c.call_bytes(
                Method::POST,
                &format!("/networks/{network}/disconnect"),
                Some(b),
            )
            .await?;
            Ok(0)
        }
    }
}
