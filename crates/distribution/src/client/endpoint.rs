//! Which URLs serve a registry domain, and whether they may be reached without verified TLS.
//!
//! Like Docker: loopback registries (localhost, 127.0.0.0/8, ::1) and those in
//! `insecure_registries` (host, host:port or a CIDR) are tried over HTTPS without certificate
//! checks first, then over plain HTTP; Docker Hub (docker.io) goes through `registry_mirrors`
//! first, then registry-1.docker.io.

use std::net::IpAddr;

use reqwest::Url;

use crate::reference::DEFAULT_DOMAIN;

/// Where Docker Hub's registry API lives.
pub const DOCKER_HUB_REGISTRY: &str = "registry-1.docker.io";

/// One base URL to try for a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Ends with '/', so `base.join("v2/…")` keeps any mirror path prefix.
    pub base: Url,
    /// TLS without certificate verification (insecure registries only).
    pub skip_verify: bool,
    pub mirror: bool,
}

/// Registry settings from the daemon configuration.
#[derive(Debug, Clone, Default)]
pub struct EndpointConfig {
    pub insecure_registries: Vec<String>,
    pub registry_mirrors: Vec<String>,
}

impl EndpointConfig {
    /// Candidates in the order to try them.
    pub fn candidates(&self, domain: &str) -> Vec<Candidate> {
        let mut out = Vec::new();
        if domain == DEFAULT_DOMAIN {
            for m in &self.registry_mirrors {
                let text = if m.contains("://") {
                    m.clone()
                } else {
                    format!("https://{m}")
                };
                let Ok(mut url) = Url::parse(&text) else {
                    tracing::warn!(mirror = %m, "ignoring unparsable registry mirror");
                    continue;
                };
                if !url.path().ends_with('/') {
                    let p = format!("{}/", url.path());
                    url.set_path(&p);
                }
                let host = url_host(&url);
                out.push(Candidate {
                    skip_verify: url.scheme() == "https" && self.is_insecure(&host),
                    base: url,
                    mirror: true,
                });
            }
            if let Ok(url) = Url::parse(&format!("https://{DOCKER_HUB_REGISTRY}/")) {
                out.push(Candidate {
                    base: url,
                    skip_verify: false,
                    mirror: false,
                });
            }
            return out;
        }
        let insecure = self.is_insecure(domain);
        for scheme in ["https", "http"] {
            if scheme == "http" && !insecure {
                break;
            }
            if let Ok(url) = Url::parse(&format!("{scheme}://{domain}/")) {
                out.push(Candidate {
                    base: url,
                    skip_verify: insecure,
                    mirror: false,
                });
            }
        }
        out
    }

    /// Loopback, or listed in `insecure_registries` by host, host:port or CIDR.
    pub fn is_insecure(&self, domain: &str) -> bool {
        let host = host_of(domain);
        let ip: Option<IpAddr> = host.parse().ok();
        if host == "localhost" || ip.is_some_and(|ip| ip.is_loopback()) {
            return true;
        }
        self.insecure_registries.iter().any(|entry| {
            let entry = entry.trim();
            let entry = entry
                .strip_prefix("http://")
                .or_else(|| entry.strip_prefix("https://"))
                .unwrap_or(entry)
                .trim_end_matches('/');
            if entry == domain || entry == host {
                return true;
            }
            match (ip, entry.split_once('/')) {
                (Some(ip), Some((net, bits))) => cidr_contains(net, bits, ip),
                _ => false,
            }
        })
    }
}

fn url_host(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// The host of "host:port", "[v6]:port" or "host".
fn host_of(domain: &str) -> &str {
    if let Some(rest) = domain.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match domain.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => domain,
    }
}

fn cidr_contains(net: &str, bits: &str, ip: IpAddr) -> bool {
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_listed_registries_are_insecure() {
        let cfg = EndpointConfig {
            insecure_registries: vec![
                "myreg:5000".into(),
                "10.1.0.0/16".into(),
                "plain.example".into(),
            ],
            registry_mirrors: vec![],
        };
        for d in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.4.5",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(cfg.is_insecure(d), "{d}");
        }
        for d in [
            "myreg:5000",
            "10.1.200.3:443",
            "plain.example:8080",
            "plain.example",
        ] {
            assert!(cfg.is_insecure(d), "{d}");
        }
        for d in ["myreg:5001", "10.2.0.1", "quay.io", "docker.io"] {
            assert!(!cfg.is_insecure(d), "{d}");
        }
        let c = cfg.candidates("127.0.0.1:5000");
        let urls: Vec<&str> = c.iter().map(|c| c.base.as_str()).collect();
        assert_eq!(urls, ["https://127.0.0.1:5000/", "http://127.0.0.1:5000/"]);
        assert!(c[0].skip_verify);
        let c = cfg.candidates("quay.io");
        assert_eq!(c.len(), 1);
        assert!(!c[0].skip_verify);
    }

    #[test]
    fn docker_hub_goes_through_mirrors_first() {
        let cfg = EndpointConfig {
            insecure_registries: vec![],
            registry_mirrors: vec![
                "https://mirror.example/prefix".into(),
                "http://127.0.0.1:5555".into(),
            ],
        };
        let c = cfg.candidates("docker.io");
        let urls: Vec<&str> = c.iter().map(|c| c.base.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://mirror.example/prefix/",
                "http://127.0.0.1:5555/",
                "https://registry-1.docker.io/"
            ]
        );
        assert!(c[0].mirror && c[1].mirror && !c[2].mirror);
        assert_eq!(
            c[0].base
                .join("v2/library/busybox/manifests/latest")
                .unwrap()
                .as_str(),
            "https://mirror.example/prefix/v2/library/busybox/manifests/latest"
        );
        // Mirrors apply to Docker Hub only.
        assert_eq!(cfg.candidates("ghcr.io").len(), 1);
    }
}
