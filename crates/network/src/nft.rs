//! NAT and published ports in the kernel through nftables.
//!
//! berth owns one table (`ip berth` by default). Every change renders the whole table from the
//! desired state and replaces it in a single `nft -f` transaction (create-if-missing, delete,
//! re-create), so a change is atomic, a rebuild after a daemon restart cannot duplicate rules,
//! and no rule outlives the state that asked for it. Conntrack keeps established flows' NAT
//! bindings across a replace.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use std::net::Ipv4Addr;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use crate::ports::PublishedPort;

/// What the table must express for one bridge network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeRules {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The bridge's own address: traffic to it is routed by the host and must stay tracked.
    pub gateway: Ipv4Addr,
    /// Internal networks get no outbound NAT and no traffic to or from other interfaces.
    pub internal: bool,
    /// The IPv6 subnet of an `--ipv6` network (its rules go to the `ip6` table).
    #[serde(default)]
    pub subnet6: Option<Ipv6Net>,
}

/// The whole desired state of berth's table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruleset {
    pub bridges: Vec<BridgeRules>,
    pub ports: Vec<PublishedPort>,
}

fn quote(name: &str) -> String {
    // Interface names are validated elsewhere; quoting keeps nft from reading them as keywords.
    format!("\"{}\"", name.replace('"', ""))
}

/// Render `table ip <table> { ... }`.
pub fn render(table: &str, rules: &Ruleset) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "table ip {table} {{");

    // Published ports: DNAT whatever is addressed to a local address (or the given one).
    out.push_str("  chain published {\n");
    for p in &rules.ports {
        let daddr = p
            .host_ip
            .map(|ip| format!("ip daddr {ip} "))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {daddr}{proto} dport {hp} dnat to {cip}:{cp}",
            proto = p.protocol,
            hp = p.host_port,
            cip = p.container_ip,
            cp = p.container_port
        );
    }
    out.push_str("  }\n");
    // From outside and from containers (hairpin) ...
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    // ... and from the host itself, including 127.0.0.1.
    out.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n",
    );

    out.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for b in &rules.bridges {
        let br = quote(&b.bridge);
        if !b.internal {
            // Outbound: containers leave with the host's address.
            let _ = writeln!(out, "    ip saddr {} oifname != {br} masquerade", b.subnet);
        }
        // Localhost published ports: 127.0.0.1 cannot appear on the bridge (route_localnet lets
        // it out; masquerade gives the container a source it can answer).
        let _ = writeln!(out, "    oifname {br} ip saddr 127.0.0.0/8 masquerade");
        // Hairpin: a container reaching a published port of its own network must see the
        // gateway as source, or the reply would bypass the host's un-DNAT.
        let _ = writeln!(
            out,
            "    oifname {br} ip saddr {} ct status dnat masquerade",
            b.subnet
        );
    }
    out.push_str("  }\n");

    // route_localnet (needed for published ports on 127.0.0.1) would also let a container
    // reach the host's loopback-only services by routing 127.0.0.0/8 to its gateway: drop
    // such packets before anything else sees them.
    let bridges: Vec<String> = rules.bridges.iter().map(|b| quote(&b.bridge)).collect();
    if !bridges.is_empty() {
        let _ = writeln!(
            out,
            "  chain guard {{\n    type filter hook prerouting priority raw; policy accept;\n    iifname {{ {} }} ip daddr 127.0.0.0/8 drop",
            bridges.join(", ")
        );
        // With br_netfilter loaded (its global sysctl overrides a bridge's own nf_call_iptables=0)
        // every frame between two containers of one network runs the IPv4 hooks. Such traffic
        // is never NATed, so leave it out of conntrack: that is most of br_netfilter's cost.
        // Traffic to the gateway (published ports, hairpin replies after masquerade) stays tracked.
        for b in &rules.bridges {
            let _ = writeln!(
                out,
                "    iifname {} ip saddr {net} ip daddr {net} ip daddr != {gw} notrack",
                quote(&b.bridge),
                net = b.subnet,
                gw = b.gateway
            );
        }
        out.push_str("  }\n");
    }

    // Isolation between berth networks; published ports stay reachable across them.
    out.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n    ct status dnat accept\n");
    for b in &rules.bridges {
        let br = quote(&b.bridge);
        if b.internal {
            let _ = writeln!(out, "    iifname {br} oifname != {br} drop");
            let _ = writeln!(out, "    oifname {br} iifname != {br} drop");
            continue;
        }
        let others: Vec<String> = rules
            .bridges
            .iter()
            .filter(|o| o.bridge != b.bridge)
            .map(|o| quote(&o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                out,
                "    iifname {br} oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    out.push_str("  }\n}\n");
    out
}

/// Render `table ip6 <table> { ... }` for the networks with IPv6: masquerade out, DNAT of
/// published ports (host IPv6 addresses), hairpin, and the same isolation as IPv4. None when
/// no network has IPv6 (the table is then absent).
pub fn render6(table: &str, rules: &Ruleset) -> Option<String> {
    let v6: Vec<(&BridgeRules, Ipv6Net)> = rules
        .bridges
        .iter()
        .filter_map(|b| b.subnet6.map(|s| (b, s)))
        .collect();
    if v6.is_empty() {
        return None;
    }
    let mut out = String::new();
    let _ = writeln!(out, "table ip6 {table} {{");
    out.push_str("  chain published {\n");
    for p in rules.ports.iter().filter(|p| p.host_ip.is_none()) {
        if let Some(cip6) = p.container_ip6 {
            let _ = writeln!(
                out,
                "    {proto} dport {hp} dnat to [{cip6}]:{cp}",
                proto = p.protocol,
                hp = p.host_port,
                cp = p.container_port
            );
        }
    }
    out.push_str("  }\n");
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    out.push_str(
        "  chain output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump published\n  }\n",
    );
    out.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    for (b, subnet) in &v6 {
        let br = quote(&b.bridge);
        if !b.internal {
            let _ = writeln!(out, "    ip6 saddr {subnet} oifname != {br} masquerade");
        }
        let _ = writeln!(
            out,
            "    oifname {br} ip6 saddr {subnet} ct status dnat masquerade"
        );
    }
    out.push_str("  }\n");
    out.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n    ct status dnat accept\n");
    for (b, _) in &v6 {
        let br = quote(&b.bridge);
        if b.internal {
            let _ = writeln!(out, "    iifname {br} oifname != {br} drop");
            let _ = writeln!(out, "    oifname {br} iifname != {br} drop");
            continue;
        }
        let others: Vec<String> = v6
            .iter()
            .filter(|(o, _)| o.bridge != b.bridge)
            .map(|(o, _)| quote(&o.bridge))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(
                out,
                "    iifname {br} oifname {{ {} }} drop",
                others.join(", ")
            );
        }
    }
    out.push_str("  }\n}\n");
    Some(out)
}

fn run_nft(args: &[&str], stdin: Option<&str>, context: &str) -> Result<String> {
    let mut cmd = Command::new("nft");
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .ctx(|| format!("{context}: run nft (apt-get install nftables)"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .ctx(|| format!("{context}: write ruleset to nft"))?;
    }
    let out = child
        .wait_with_output()
        .ctx(|| format!("{context}: wait for nft"))?;
    if !out.status.success() {
        return Err(Error::Nft {
            context: context.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Replace berth's table with exactly `rules`, atomically.
pub fn apply(table: &str, rules: &Ruleset) -> Result<()> {
    validate_table_name(table)?;
    // Both families in one transaction; the ip6 table exists only while a network has IPv6.
    let script = format!(
        "table ip {table}\ndelete table ip {table}\ntable ip6 {table}\ndelete table ip6 {table}\n{}{}",
        render(table, rules),
        render6(table, rules).unwrap_or_default()
    );
    run_nft(
        &["-f", "-"],
        Some(&script),
        &format!("apply table ip {table}"),
    )?;
    Ok(())
}

/// Remove berth's table (no error if it is absent).
pub fn remove(table: &str) -> Result<()> {
    validate_table_name(table)?;
    let script = format!(
        "table ip {table}\ndelete table ip {table}\ntable ip6 {table}\ndelete table ip6 {table}\n"
    );
    run_nft(
        &["-f", "-"],
        Some(&script),
        &format!("delete table ip {table}"),
    )?;
    Ok(())
}

/// `nft -j list table ip <table>` — for inspection and tests.
pub fn list_json(table: &str) -> Result<serde_json::Value> {
    validate_table_name(table)?;
    let text = run_nft(
        &["-j", "list", "table", "ip", table],
        None,
        &format!("list table ip {table}"),
    )?;
    serde_json::from_str(&text).map_err(|e| Error::Nft {
        context: format!("parse nft -j output for {table}"),
        stderr: e.to_string(),
    })
}

fn validate_table_name(table: &str) -> Result<()> {
    let ok = !table.is_empty()
        && table.len() <= 64
        && table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && table
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName {
            name: table.to_string(),
            reason: "nft table names are letters, digits and '_', starting with a letter",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::Protocol;

    #[test]
    fn renders_masquerade_dnat_and_isolation() {
        let rules = Ruleset {
            bridges: vec![
                BridgeRules {
                    bridge: "berth0".into(),
                    subnet: "172.30.0.0/16".parse().unwrap(),
                    gateway: Ipv4Addr::new(172, 30, 0, 1),
                    internal: false,
                    subnet6: None,
                },
                BridgeRules {
                    bridge: "br-a".into(),
                    subnet: "172.31.1.0/24".parse().unwrap(),
                    gateway: Ipv4Addr::new(172, 31, 1, 1),
                    internal: false,
                    subnet6: Some("fd00:beef::/64".parse().unwrap()),
                },
            ],
            ports: vec![PublishedPort {
                container_ip6: None,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                container_ip: "172.30.0.2".parse().unwrap(),
                container_port: 80,
                protocol: Protocol::Tcp,
            }],
        };
        let text = render("berth", &rules);
        assert!(text.contains("ip saddr 172.30.0.0/16 oifname != \"berth0\" masquerade"));
        assert!(text.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 172.30.0.2:80"));
        assert!(text.contains("iifname \"berth0\" oifname { \"br-a\" } drop"));
        assert!(text.contains("iifname \"br-a\" oifname { \"berth0\" } drop"));
        assert!(text.contains("iifname { \"berth0\", \"br-a\" } ip daddr 127.0.0.0/8 drop"));
        assert!(text.contains(
            "iifname \"br-a\" ip saddr 172.31.1.0/24 ip daddr 172.31.1.0/24 ip daddr != 172.31.1.1 notrack"
        ));
        let v6 = render6("berth", &rules).unwrap();
        assert!(v6.starts_with("table ip6 berth {"));
        assert!(v6.contains("ip6 saddr fd00:beef::/64 oifname != \"br-a\" masquerade"));
        assert!(!v6.contains("berth0"), "only networks with IPv6: {v6}");
        let mut none = rules.clone();
        none.bridges[1].subnet6 = None;
        assert!(render6("berth", &none).is_none());
    }

    #[test]
    fn refuses_odd_table_names() {
        assert!(apply("berth; flush ruleset", &Ruleset::default()).is_err());
    }
}
