//! A container's /etc/hosts, /etc/hostname and /etc/resolv.conf.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// The address the embedded DNS server answers on inside a container (as Docker).
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// One `--add-host name:ip` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub ip: IpAddr,
}

impl ExtraHost {
    /// Parse `name:ip` (Docker's `--add-host`; the IP may be IPv6, so split at the first ':').
    pub fn parse(text: &str) -> Option<ExtraHost> {
        let (name, ip) = text.split_once(':').or_else(|| text.split_once('='))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        Some(ExtraHost {
            name: name.to_string(),
            ip: ip.parse().ok()?,
        })
    }
}

/// /etc/hosts: localhost lines, the container's own names on each of its addresses, then the
/// `--add-host` entries.
pub fn hosts(own: &[(IpAddr, Vec<String>)], extra: &[ExtraHost]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (ip, names) in own {
        if !names.is_empty() {
            let _ = writeln!(out, "{ip}\t{}", names.join(" "));
        }
    }
    for h in extra {
        let _ = writeln!(out, "{}\t{}", h.ip, h.name);
    }
    out
}

pub fn hostname(name: &str) -> String {
    format!("{name}\n")
}

/// The host's resolver configuration, as parsed from its resolv.conf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse().ok()) {
                        rc.nameservers.push(ip);
                    }
                }
                Some("search") | Some("domain") => {
                    rc.search = words.map(str::to_string).collect();
                }
                Some("options") => rc.options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        rc
    }

    /// The host's /etc/resolv.conf (empty if unreadable).
    pub fn host() -> ResolvConf {
        std::fs::read_to_string("/etc/resolv.conf")
            .map(|t| ResolvConf::parse(&t))
            .unwrap_or_default()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if !self.search.is_empty() {
            let _ = writeln!(out, "search {}", self.search.join(" "));
        }
        for ns in &self.nameservers {
            let _ = writeln!(out, "nameserver {ns}");
        }
        if !self.options.is_empty() {
            let _ = writeln!(out, "options {}", self.options.join(" "));
        }
        out
    }
}

/// What the user asked for with `--dns`, `--dns-search`, `--dns-option`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsSettings {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// Docker's fallback when the host only has loopback resolvers a container cannot reach.
const FALLBACK: [Ipv4Addr; 2] = [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// A container's resolv.conf.
///
/// On a network with embedded DNS the container asks 127.0.0.11 (which forwards to `--dns`
/// servers or the host's). Otherwise it gets `--dns` or the host's resolvers minus loopback
/// ones, which are unreachable from the container's namespace.
pub fn resolv_conf(host: &ResolvConf, user: &DnsSettings, embedded_dns: bool) -> String {
    let search = if user.search.is_empty() {
        host.search.clone()
    } else {
        user.search.clone()
    };
    let mut options = if user.options.is_empty() {
        host.options.clone()
    } else {
        user.options.clone()
    };
    let nameservers = if embedded_dns {
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".to_string());
        }
        vec![IpAddr::V4(EMBEDDED_DNS)]
    } else if !user.servers.is_empty() {
        user.servers.clone()
    } else {
        let reachable: Vec<IpAddr> = host
            .nameservers
            .iter()
            .copied()
            .filter(|ip| !ip.is_loopback())
            .collect();
        if reachable.is_empty() {
            FALLBACK.iter().map(|ip| IpAddr::V4(*ip)).collect()
        } else {
            reachable
        }
    };
    ResolvConf {
        nameservers,
        search,
        options,
    }
    .render()
}

/// Write hostname, hosts and resolv.conf into `dir` (the container's per-container directory,
/// from where the engine bind-mounts them), each through a temporary file and a rename so a
/// running container never reads half a file.
pub fn write_all(
    dir: &Path,
    hostname_text: &str,
    hosts_text: &str,
    resolv_text: &str,
) -> Result<()> {
    for (name, text) in [
        ("hostname", hostname_text),
        ("hosts", hosts_text),
        ("resolv.conf", resolv_text),
    ] {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, text).ctx(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, &path)
            .ctx(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}

/// Parse `--mac-address` (`02:42:ac:11:00:02`); refuses multicast addresses.
pub fn parse_mac(text: &str) -> Result<[u8; 6]> {
    let bad = |reason: &str| Error::InvalidName {
        name: text.to_string(),
        reason: if reason.is_empty() {
            "expected a MAC address like 02:42:ac:11:00:02"
        } else {
            "a multicast MAC cannot be an interface address"
        },
    };
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad(""));
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return Err(bad(""));
        }
        mac[i] = u8::from_str_radix(p, 16).map_err(|_| bad(""))?;
    }
    if mac[0] & 1 == 1 {
        return Err(bad("multicast"));
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_lists_own_names_and_extra_hosts() {
        let text = hosts(
            &[(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                vec!["web".into(), "abc123".into()],
            )],
            &[ExtraHost::parse("db:10.0.0.9").unwrap()],
        );
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("10.0.0.2\tweb abc123\n"));
        assert!(text.contains("10.0.0.9\tdb\n"));
        assert_eq!(
            ExtraHost::parse("v6:::1").unwrap().ip,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(ExtraHost::parse("nohost").is_none());
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers_and_uses_embedded_dns() {
        let host = ResolvConf::parse(
            "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.com\noptions edns0\n",
        );
        assert_eq!(host.nameservers.len(), 2);
        let plain = resolv_conf(&host, &DnsSettings::default(), false);
        assert_eq!(
            plain,
            "search example.com\nnameserver 192.0.2.1\noptions edns0\n"
        );
        let user = resolv_conf(
            &host,
            &DnsSettings {
                servers: vec!["9.9.9.9".parse().unwrap()],
                ..Default::default()
            },
            false,
        );
        assert!(user.contains("nameserver 9.9.9.9\n") && !user.contains("192.0.2.1"));
        let embedded = resolv_conf(&host, &DnsSettings::default(), true);
        assert!(embedded.contains("nameserver 127.0.0.11\n"));
        assert!(embedded.contains("ndots:0"));
        let only_loopback = ResolvConf::parse("nameserver 127.0.0.53\n");
        assert!(resolv_conf(&only_loopback, &DnsSettings::default(), false).contains("8.8.8.8"));
        assert_eq!(hostname("web"), "web\n");
    }

    #[test]
    fn writes_the_three_files_and_parses_macs() {
        let dir = tempfile::tempdir().unwrap();
        write_all(
            dir.path(),
            "web\n",
            "127.0.0.1\tlocalhost\n",
            "nameserver 1.1.1.1\n",
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("hostname")).unwrap(),
            "web\n"
        );
        assert!(fs::read_to_string(dir.path().join("resolv.conf"))
            .unwrap()
            .contains("1.1.1.1"));
        assert_eq!(
            parse_mac("02:42:AC:11:00:02").unwrap(),
            [2, 0x42, 0xac, 0x11, 0, 2]
        );
        for bad in [
            "01:00:5e:00:00:01",
            "02:42:ac:11:00",
            "zz:42:ac:11:00:02",
            "2:42:ac:11:00:02",
        ] {
            assert!(parse_mac(bad).is_err(), "{bad} accepted");
        }
    }
}
