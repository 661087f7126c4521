//! dockerd's registry flags, merged over daemon.json's registry keys.

use std::path::Path;

use berth_engine::registry::RegistryConfig;

/// Where daemon.json is read from when `--config-file` is not given (if it exists).
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";

#[derive(clap::Args, Debug, Default)]
pub struct RegistryFlags {
    /// A registry reached over plain HTTP or unverified TLS (host, host:port or CIDR);
    /// repeatable. Loopback registries always are.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
    /// A Docker Hub pull-through mirror (https://…); repeatable, tried in order.
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// Layers downloaded at once across all pulls (default 3).
    #[arg(long)]
    max_concurrent_downloads: Option<usize>,
    /// Blobs uploaded at once per push (default 5).
    #[arg(long)]
    max_concurrent_uploads: Option<usize>,
}

impl RegistryFlags {
    /// The file's settings (the default file only if it exists) with these flags on top.
    pub fn resolve(&self, config_file: Option<&Path>) -> Result<RegistryConfig, String> {
        let from_file = match config_file {
            Some(p) if !p.exists() => {
                return Err(format!("--config-file {}: no such file", p.display()))
            }
            Some(p) => RegistryConfig::load(p),
            None => RegistryConfig::load(Path::new(DEFAULT_CONFIG_FILE)),
        }
        .map_err(|e| e.to_string())?;
        for (flag, v) in [
            ("--max-concurrent-downloads", self.max_concurrent_downloads),
            ("--max-concurrent-uploads", self.max_concurrent_uploads),
        ] {
            if v == Some(0) {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        Ok(from_file.merge(RegistryConfig {
            insecure_registries: self.insecure_registries.clone(),
            registry_mirrors: self.registry_mirrors.clone(),
            max_concurrent_downloads: self.max_concurrent_downloads,
            max_concurrent_uploads: self.max_concurrent_uploads,
        }))
    }
}
