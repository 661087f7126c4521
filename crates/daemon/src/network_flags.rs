//! dockerd's default-network flags (`--bip`, `--bridge`, `--default-address-pool`), merged over
//! daemon.json's `bip`, `bridge` and `default-address-pools`.

use std::path::Path;

use berth_network::Settings;
use ipnet::Ipv4Net;

use crate::registry_flags::DEFAULT_CONFIG_FILE;

#[derive(clap::Args, Debug, Default)]
pub struct NetworkFlags {
    /// The default bridge's address and subnet, e.g. 172.30.0.1/16.
    #[arg(long)]
    bip: Option<String>,
    /// Name of the default bridge device (default berth0).
    #[arg(long = "bridge", short = 'b')]
    bridge: Option<String>,
    /// Where user networks get their subnets: base=CIDR,size=PREFIX (e.g. base=172.31.0.0/16,size=24).
    #[arg(long = "default-address-pool", value_name = "base=CIDR,size=N")]
    default_address_pool: Option<String>,
}

/// The daemon.json keys we read.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct FileKeys {
    bip: Option<String>,
    bridge: Option<String>,
    default_address_pools: Option<Vec<Pool>>,
}

#[derive(serde::Deserialize)]
struct Pool {
    base: String,
    size: u8,
}

impl NetworkFlags {
    /// None when neither the file nor the flags set anything (berth's defaults apply).
    pub fn resolve(&self, config_file: Option<&Path>) -> Result<Option<Settings>, String> {
        let path = config_file.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
        let file: FileKeys = match std::fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(_) => FileKeys::default(),
        };
        let bip = self.bip.clone().or(file.bip);
        let bridge = self.bridge.clone().or(file.bridge);
        let pool = match &self.default_address_pool {
            Some(flag) => Some(parse_pool_flag(flag)?),
            None => file
                .default_address_pools
                .and_then(|p| p.into_iter().next()),
        };
        if bip.is_none() && bridge.is_none() && pool.is_none() {
            return Ok(None);
        }
        // On top of what BERTH_NETWORK_SETTINGS gives (tests use it), else berth's defaults.
        let mut s = match std::env::var(berth_engine::networks::SETTINGS_ENV) {
            Ok(t) if !t.is_empty() => serde_json::from_str(&t)
                .map_err(|e| format!("{}: {e}", berth_engine::networks::SETTINGS_ENV))?,
            _ => Settings::default(),
        };
        if let Some(bip) = bip {
            let net: Ipv4Net = bip
                .parse()
                .map_err(|e| format!("bip {bip:?}: {e} (expected e.g. 172.30.0.1/16)"))?;
            s.default_subnet = net.trunc();
        }
        if let Some(b) = bridge {
            if b.is_empty() || b.len() > 15 || b.contains('/') || b.contains(char::is_whitespace) {
                return Err(format!("bridge {b:?}: not a network interface name"));
            }
            s.default_bridge = b;
        }
        if let Some(p) = pool {
            let base: Ipv4Net = p
                .base
                .parse()
                .map_err(|e| format!("default-address-pools base {:?}: {e}", p.base))?;
            if p.size < base.prefix_len() || p.size > 30 {
                return Err(format!(
                    "default-address-pools size {} must be between {} and 30",
                    p.size,
                    base.prefix_len()
                ));
            }
            s.pool = base.trunc();
            s.pool_prefix = p.size;
        }
        Ok(Some(s))
    }
}

fn parse_pool_flag(flag: &str) -> Result<Pool, String> {
    let (mut base, mut size) = (None, None);
    for part in flag.split(',') {
        match part.split_once('=') {
            Some(("base", v)) => base = Some(v.to_string()),
            Some(("size", v)) => size = v.parse().ok(),
            _ => {
                return Err(format!(
                    "--default-address-pool {flag:?}: expected base=CIDR,size=N"
                ))
            }
        }
    }
    match (base, size) {
        (Some(base), Some(size)) => Ok(Pool { base, size }),
        _ => Err(format!(
            "--default-address-pool {flag:?}: expected base=CIDR,size=N"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_and_flags_become_settings() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"bip": "10.123.0.1/16", "default-address-pools": [{"base": "10.124.0.0/16", "size": 26}]}"#,
        )
        .unwrap();
        let flags = NetworkFlags {
            bridge: Some("br-test".into()),
            ..Default::default()
        };
        let s = flags.resolve(Some(&f)).unwrap().unwrap();
        assert_eq!(s.default_subnet.to_string(), "10.123.0.0/16");
        assert_eq!(s.pool.to_string(), "10.124.0.0/16");
        assert_eq!(s.pool_prefix, 26);
        assert_eq!(s.default_bridge, "br-test");
        // Nothing set: defaults apply.
        std::fs::write(&f, "{}").unwrap();
        assert!(NetworkFlags::default().resolve(Some(&f)).unwrap().is_none());
    }

    #[test]
    fn bad_values_name_the_key() {
        let flags = NetworkFlags {
            bip: Some("300.1.1.1/8".into()),
            ..Default::default()
        };
        let missing = Path::new("/nonexistent/daemon.json");
        assert!(flags.resolve(Some(missing)).unwrap_err().contains("bip"));
        let flags = NetworkFlags {
            default_address_pool: Some("base=10.0.0.0/16,size=8".into()),
            ..Default::default()
        };
        assert!(flags.resolve(Some(missing)).unwrap_err().contains("size"));
    }
}
