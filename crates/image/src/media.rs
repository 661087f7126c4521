//! OCI and Docker schema2 documents: media types treated as equivalents, platform selection from
//! an index, and resolving a manifest or index in the store to one image (manifest + config).

use std::fmt;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::content::ContentStore;
use crate::digest::Digest;
use crate::error::{Error, Result};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What a media type denotes, OCI and Docker spellings folded together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Index,
    Config,
    Layer(Compression),
    Other,
}

pub fn classify(media_type: &str) -> Kind {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        OCI_LAYER | DOCKER_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Kind::Layer(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_FOREIGN_LAYER_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
            Kind::Layer(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Kind::Layer(Compression::Zstd)
        }
        _ => Kind::Other,
    }
}

pub fn kind_of(media_type: &MediaType) -> Kind {
    classify(media_type.as_ref())
}

/// Which kind of document a JSON blob is, from its own `mediaType` or, when absent (allowed by
/// OCI), from its shape.
pub fn sniff_document(bytes: &[u8]) -> Kind {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
        layers: Option<serde_json::Value>,
    }
    let Ok(p) = serde_json::from_slice::<Probe>(bytes) else {
        return Kind::Other;
    };
    match p.media_type.as_deref().map(classify) {
        Some(k @ (Kind::Manifest | Kind::Index)) => k,
        _ if p.manifests.is_some() => Kind::Index,
        _ if p.config.is_some() && p.layers.is_some() => Kind::Manifest,
        _ => Kind::Other,
    }
}

/// The platform to pick from a multi-platform index: `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// linux on this machine's architecture (linux/amd64 here), as docker picks by default.
    pub fn host() -> PlatformSpec {
        PlatformSpec {
            os: "linux".into(),
            architecture: normalize_arch(&oci_spec::image::Arch::default().to_string()).into(),
            variant: None,
        }
    }

    /// Parse "os/arch" or "os/arch/variant" ("linux/arm64/v8").
    pub fn parse(s: &str) -> Result<PlatformSpec> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || Error::Archive(format!("invalid platform {s:?}: want os/arch[/variant]"));
        if parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [os, arch] => Ok(PlatformSpec {
                os: os.to_lowercase(),
                architecture: normalize_arch(&arch.to_lowercase()).into(),
                variant: None,
            }),
            [os, arch, variant] => Ok(PlatformSpec {
                os: os.to_lowercase(),
                architecture: normalize_arch(&arch.to_lowercase()).into(),
                variant: Some(variant.to_lowercase()),
            }),
            _ => Err(bad()),
        }
    }

    /// How well `p` fits: None = unusable, higher = better.
    fn score(&self, p: &oci_spec::image::Platform) -> Option<u8> {
        if p.os().to_string() != self.os
            || normalize_arch(&p.architecture().to_string()) != self.architecture
        {
            return None;
        }
        let theirs = normalize_variant(&self.architecture, p.variant().as_deref());
        let ours = normalize_variant(&self.architecture, self.variant.as_deref());
        match (ours, theirs) {
            (Some(a), Some(b)) if a == b => Some(3),
            (Some(_), Some(_)) => None,
            (None, None) => Some(3),
            (Some(_), None) => Some(1),
            (None, Some(_)) => Some(2),
        }
    }
}

impl Default for PlatformSpec {
    fn default() -> Self {
        PlatformSpec::host()
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" => "386",
        other => other,
    }
}

/// arm64 without a variant means v8; other defaults are left as given.
fn normalize_variant<'a>(arch: &str, variant: Option<&'a str>) -> Option<&'a str> {
    match (arch, variant) {
        ("arm64", Some("v8")) => None,
        (_, v) => v,
    }
}

/// Pick the manifest for `want` from an index (OCI index or Docker manifest list).
pub fn select_manifest(index: &ImageIndex, want: &PlatformSpec) -> Result<Descriptor> {
    let mut best: Option<(u8, &Descriptor)> = None;
    for d in index.manifests() {
        if !matches!(kind_of(d.media_type()), Kind::Manifest | Kind::Index) {
            continue;
        }
        let Some(p) = d.platform() else { continue };
        if let Some(score) = want.score(p) {
            if best.is_none_or(|(s, _)| score > s) {
                best = Some((score, d));
            }
        }
    }
    best.map(|(_, d)| d.clone()).ok_or_else(|| {
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|d| d.platform().as_ref())
            .map(|p| match p.variant() {
                Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
                None => format!("{}/{}", p.os(), p.architecture()),
            })
            .collect();
        Error::NoMatchingPlatform {
            wanted: want.to_string(),
            available: available.join(", "),
        }
    })
}

/// One runnable image: its manifest and config, parsed.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
}

impl ResolvedImage {
    /// The layers' uncompressed digests, bottom first (from the config's rootfs).
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| Digest::parse(d))
            .collect()
    }

    /// Layer descriptors, bottom first, checked against the diff_ids count.
    pub fn layers(&self) -> Result<Vec<(Descriptor, Digest)>> {
        let diff_ids = self.diff_ids()?;
        let layers = self.manifest.layers();
        if layers.len() != diff_ids.len() {
            return Err(Error::Archive(format!(
                "manifest {} has {} layers but its config lists {} diff_ids",
                self.manifest_digest,
                layers.len(),
                diff_ids.len()
            )));
        }
        Ok(layers.iter().cloned().zip(diff_ids).collect())
    }
}

/// Follow `digest` (a manifest, or an index to select from) to one image in the store.
pub fn resolve_image(
    store: &ContentStore,
    digest: &Digest,
    platform: &PlatformSpec,
) -> Result<ResolvedImage> {
    let mut digest = digest.clone();
    // Nested indexes are legal; a bounded depth keeps a cyclic or hostile store from looping.
    for _ in 0..4 {
        let bytes = store.read_bounded(&digest, crate::content::MAX_JSON_BLOB)?;
        match sniff_document(&bytes) {
            Kind::Index => {
                let index: ImageIndex = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::json(format!("parse index {digest}"), e))?;
                let chosen = select_manifest(&index, platform)?;
                digest = Digest::from_oci(chosen.digest())?;
            }
            Kind::Manifest => {
                let manifest: ImageManifest = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::json(format!("parse manifest {digest}"), e))?;
                let config_digest = Digest::from_oci(manifest.config().digest())?;
                let config: ImageConfiguration = store.read_json(&config_digest)?;
                return Ok(ResolvedImage {
                    manifest_digest: digest,
                    manifest,
                    config_digest,
                    config,
                });
            }
            _ => {
                let schema1 = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .is_ok_and(|v| v["schemaVersion"] == 1);
                return Err(Error::UnsupportedMediaType {
                    media_type: if schema1 {
                        "Docker schema 1 manifest (deprecated, not supported)".into()
                    } else {
                        "neither a manifest nor an index".into()
                    },
                    what: digest.to_string(),
                });
            }
        }
    }
    Err(Error::Archive(format!(
        "index nesting too deep at {digest}"
    )))
}

/// Store `config` and an OCI manifest for it and `layers` (whose blobs must be in the store);
/// returns the manifest's descriptor. JSON is written compactly and deterministically, so the
/// same inputs always give the same digests.
pub fn store_image(
    store: &ContentStore,
    config: &ImageConfiguration,
    layers: Vec<Descriptor>,
) -> Result<Descriptor> {
    let config_bytes =
        serde_json::to_vec(config).map_err(|e| Error::json("serialize image config", e))?;
    let config_info = store.put_bytes(&config_bytes)?;
    let config_desc = Descriptor::new(
        MediaType::ImageConfig,
        config_info.size,
        config_info.digest.to_oci(),
    );
    store_manifest(store, config_desc, layers)
}

/// Store an OCI manifest for a config blob and layer blobs already in the store.
pub fn store_manifest(
    store: &ContentStore,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> Result<Descriptor> {
    for d in std::iter::once(&config).chain(&layers) {
        let d = Digest::from_oci(d.digest())?;
        if !store.has(&d) {
            return Err(Error::BlobNotFound(d));
        }
    }
    let manifest = oci_spec::image::ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layers)
        .build()
        .map_err(|e| Error::Archive(format!("build manifest: {e}")))?;
    let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::json("serialize manifest", e))?;
    let info = store.put_bytes(&bytes)?;
    Ok(Descriptor::new(
        MediaType::ImageManifest,
        info.size,
        info.digest.to_oci(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_and_oci_media_types_are_equivalent() {
        assert_eq!(classify(DOCKER_MANIFEST), classify(OCI_MANIFEST));
        assert_eq!(classify(DOCKER_MANIFEST_LIST), Kind::Index);
        assert_eq!(classify(DOCKER_CONFIG), Kind::Config);
        assert_eq!(classify(DOCKER_LAYER_GZIP), Kind::Layer(Compression::Gzip));
        assert_eq!(classify(OCI_LAYER_ZSTD), Kind::Layer(Compression::Zstd));
        assert_eq!(classify(OCI_LAYER), Kind::Layer(Compression::None));
        assert_eq!(classify("text/plain"), Kind::Other);
        assert_eq!(kind_of(&MediaType::ImageManifest), Kind::Manifest);
    }

    const LIST: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
         "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
         "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
         "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
         "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1,
         "digest": "sha256:4444444444444444444444444444444444444444444444444444444444444444",
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
         "digest": "sha256:5555555555555555555555555555555555555555555555555555555555555555",
         "platform": {"architecture": "unknown", "os": "unknown"}}
      ]}"#;

    fn pick(want: &str) -> Result<String> {
        let index: ImageIndex = serde_json::from_str(LIST).unwrap();
        let d = select_manifest(&index, &PlatformSpec::parse(want)?)?;
        Ok(d.digest().digest()[..1].to_string())
    }

    #[test]
    fn selects_platform_with_variants() {
        assert_eq!(pick("linux/amd64").unwrap(), "3");
        assert_eq!(pick("linux/x86_64").unwrap(), "3");
        assert_eq!(pick("linux/arm/v7").unwrap(), "2");
        assert_eq!(pick("linux/arm/v6").unwrap(), "1");
        assert_eq!(pick("linux/arm64").unwrap(), "4");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "4");
        let err = pick("linux/s390x").unwrap_err();
        assert!(matches!(err, Error::NoMatchingPlatform { .. }));
        assert!(err.to_string().contains("linux/amd64"), "{err}");
        assert!(pick("linux/arm/v5").is_err());
        assert!(PlatformSpec::parse("linux").is_err());
        assert_eq!(PlatformSpec::host().os, "linux");
    }

    #[test]
    fn sniffs_documents_without_media_type() {
        assert_eq!(sniff_document(LIST.as_bytes()), Kind::Index);
        assert_eq!(
            sniff_document(br#"{"schemaVersion":2,"config":{},"layers":[]}"#),
            Kind::Manifest
        );
        assert_eq!(sniff_document(b"not json"), Kind::Other);
    }
}
