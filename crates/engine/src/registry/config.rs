//! The daemon's registry settings, as Docker names them in daemon.json and on dockerd's
//! command line: `insecure-registries`, `registry-mirrors`, `max-concurrent-downloads`,
//! `max-concurrent-uploads`. Loopback registries are insecure without being listed.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Docker's defaults.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;
pub const DEFAULT_MAX_CONCURRENT_UPLOADS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Registries reached over plain HTTP or unverified TLS: "host", "host:port" or a CIDR.
    pub insecure_registries: Vec<String>,
    /// Docker Hub pull-through mirrors ("https://mirror.example"), tried in order.
    pub registry_mirrors: Vec<String>,
    /// Layers downloaded at once across all pulls (None: 3).
    pub max_concurrent_downloads: Option<usize>,
    /// Blobs uploaded at once per push (None: 5).
    pub max_concurrent_uploads: Option<usize>,
}

/// The keys of daemon.json this module reads; every other key is left to its owner.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DaemonJson {
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    max_concurrent_downloads: Option<usize>,
    max_concurrent_uploads: Option<usize>,
}

impl RegistryConfig {
    /// The registry keys of a daemon.json document.
    pub fn from_daemon_json(text: &str, origin: &Path) -> Result<RegistryConfig> {
        if text.trim().is_empty() {
            return Ok(RegistryConfig::default());
        }
        let parsed: DaemonJson = serde_json::from_str(text)
            .map_err(|e| Error::InvalidParameter(format!("{}: {e}", origin.display())))?;
        let cfg = RegistryConfig {
            insecure_registries: parsed.insecure_registries,
            registry_mirrors: parsed.registry_mirrors,
            max_concurrent_downloads: parsed.max_concurrent_downloads,
            max_concurrent_uploads: parsed.max_concurrent_uploads,
        };
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Read `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistryConfig> {
        match std::fs::read_to_string(path) {
            Ok(text) => RegistryConfig::from_daemon_json(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryConfig::default()),
            Err(e) => Err(Error::internal(format!("read {}", path.display()), e)),
        }
    }

    /// Command-line values on top of the file's: lists are joined, numbers replaced.
    pub fn merge(mut self, flags: RegistryConfig) -> RegistryConfig {
        for r in flags.insecure_registries {
            if !self.insecure_registries.contains(&r) {
                self.insecure_registries.push(r);
            }
        }
        for m in flags.registry_mirrors {
            if !self.registry_mirrors.contains(&m) {
                self.registry_mirrors.push(m);
            }
        }
        self.max_concurrent_downloads = flags
            .max_concurrent_downloads
            .or(self.max_concurrent_downloads);
        self.max_concurrent_uploads = flags.max_concurrent_uploads.or(self.max_concurrent_uploads);
        self
    }

    fn validate(&self, origin: &Path) -> Result<()> {
        for m in &self.registry_mirrors {
            if !(m.starts_with("https://") || m.starts_with("http://")) {
                return Err(Error::InvalidParameter(format!(
                    "{}: registry-mirrors: {m:?} must start with http:// or https://",
                    origin.display()
                )));
            }
        }
        for (key, v) in [
            ("max-concurrent-downloads", self.max_concurrent_downloads),
            ("max-concurrent-uploads", self.max_concurrent_uploads),
        ] {
            if v == Some(0) {
                return Err(Error::InvalidParameter(format!(
                    "{}: {key} must be at least 1",
                    origin.display()
                )));
            }
        }
        Ok(())
    }

    pub fn downloads(&self) -> usize {
        self.max_concurrent_downloads
            .unwrap_or(DEFAULT_MAX_CONCURRENT_DOWNLOADS)
    }

    pub fn uploads(&self) -> usize {
        self.max_concurrent_uploads
            .unwrap_or(DEFAULT_MAX_CONCURRENT_UPLOADS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_registry_keys_of_daemon_json() {
        let origin = Path::new("/etc/berth/daemon.json");
        let cfg = RegistryConfig::from_daemon_json(
            r#"{"insecure-registries": ["myreg:5000", "10.0.0.0/8"],
                "registry-mirrors": ["https://mirror.example"],
                "max-concurrent-downloads": 6,
                "log-level": "debug"}"#,
            origin,
        )
        .unwrap();
        assert_eq!(cfg.insecure_registries, ["myreg:5000", "10.0.0.0/8"]);
        assert_eq!(cfg.registry_mirrors, ["https://mirror.example"]);
        assert_eq!(cfg.downloads(), 6);
        assert_eq!(cfg.uploads(), DEFAULT_MAX_CONCURRENT_UPLOADS);

        let merged = cfg.merge(RegistryConfig {
            insecure_registries: vec!["myreg:5000".into(), "other:443".into()],
            max_concurrent_downloads: Some(2),
            ..RegistryConfig::default()
        });
        assert_eq!(
            merged.insecure_registries,
            ["myreg:5000", "10.0.0.0/8", "other:443"]
        );
        assert_eq!(merged.downloads(), 2);
        assert_eq!(
            RegistryConfig::from_daemon_json("  ", origin).unwrap(),
            RegistryConfig::default()
        );
    }

    #[test]
    fn rejects_bad_values_naming_the_file() {
        let origin = Path::new("/tmp/d.json");
        let e = RegistryConfig::from_daemon_json(r#"{"registry-mirrors": ["mirror"]}"#, origin)
            .unwrap_err();
        assert!(e.to_string().contains("/tmp/d.json"), "{e}");
        assert!(e.to_string().contains("http"), "{e}");
        let e = RegistryConfig::from_daemon_json(r#"{"insecure-registries": "x"}"#, origin)
            .unwrap_err();
        assert!(e.to_string().contains("/tmp/d.json"), "{e}");
        let e = RegistryConfig::from_daemon_json(r#"{"max-concurrent-uploads": 0}"#, origin)
            .unwrap_err();
        assert!(e.to_string().contains("max-concurrent-uploads"), "{e}");
    }
}
