//! Validation of pushed manifests: size bound, JSON shape, media type agreement, and the
//! facts the registry needs (what it references, its subject, its artifact type).

use berth_image::media::{self, Kind};
use berth_image::Digest;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::api_error::{ApiError, Code};

/// Largest manifest accepted (the same bound the image crate applies to JSON documents).
pub const MAX_MANIFEST_SIZE: usize = berth_image::content::MAX_JSON_BLOB as usize;

#[derive(Debug, Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    urls: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct RawDocument {
    #[serde(rename = "schemaVersion")]
    schema_version: Option<i64>,
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Map<String, Value>>,
}

/// A manifest or index that passed validation.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub media_type: String,
    pub kind: Kind,
    /// Blobs (config and layers) the repository must have; foreign layers (with `urls`) excluded.
    pub blobs: Vec<Digest>,
    /// Manifests an index lists; the repository must have them.
    pub children: Vec<Digest>,
    pub subject: Option<Digest>,
    /// `artifactType`, or for an image manifest without one, its config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(Code::ManifestInvalid, msg)
}

fn descriptor_digest(d: &RawDescriptor, what: &str) -> Result<Digest, ApiError> {
    if d.size < 0 {
        return Err(invalid(format!("{what}: negative size")));
    }
    Digest::parse(&d.digest).map_err(|e| invalid(format!("{what}: {e}")))
}

/// The media type a client declared in Content-Type, if it is a specific one.
fn declared(content_type: Option<&str>) -> Option<&str> {
    let ct = content_type?.split(';').next()?.trim();
    match ct {
        "" | "application/json" | "application/octet-stream" => None,
        other => Some(other),
    }
}

/// Parse and check `bytes`, pushed with `content_type`.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Parsed, ApiError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    let doc: RawDocument = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
    if doc.schema_version != Some(2) {
        return Err(invalid("unsupported schemaVersion (want 2)"));
    }
    let declared = declared(content_type);
    if let (Some(h), Some(d)) = (declared, doc.media_type.as_deref()) {
        if h != d {
            return Err(invalid(format!(
                "Content-Type {h:?} does not match the manifest's mediaType {d:?}"
            )));
        }
    }
    let media_type = match declared.or(doc.media_type.as_deref()) {
        Some(mt) => mt.to_string(),
        // OCI allows omitting mediaType: decide by shape.
        None => match media::sniff_document(bytes) {
            Kind::Index => media::OCI_INDEX.to_string(),
            Kind::Manifest => media::OCI_MANIFEST.to_string(),
            _ => return Err(invalid("cannot tell the manifest's media type")),
        },
    };
    let kind = media::classify(&media_type);
    let mut parsed = Parsed {
        media_type,
        kind,
        blobs: Vec::new(),
        children: Vec::new(),
        subject: None,
        artifact_type: doc.artifact_type.clone(),
        annotations: doc.annotations.clone(),
    };
    match kind {
        Kind::Manifest => {
            let config = doc
                .config
                .as_ref()
                .ok_or_else(|| invalid("image manifest without config"))?;
            parsed.blobs.push(descriptor_digest(config, "config")?);
            if parsed.artifact_type.is_none() {
                parsed.artifact_type = Some(config.media_type.clone());
            }
            let layers = doc
                .layers
                .as_ref()
                .ok_or_else(|| invalid("image manifest without layers"))?;
            for (i, l) in layers.iter().enumerate() {
                let d = descriptor_digest(l, &format!("layer {i}"))?;
                match &l.urls {
                    Some(urls) if !urls.is_empty() => {}
                    _ => parsed.blobs.push(d),
                }
            }
            if doc.manifests.is_some() {
                return Err(invalid("image manifest with a manifests list"));
            }
        }
        Kind::Index => {
            let manifests = doc
                .manifests
                .as_ref()
                .ok_or_else(|| invalid("index without manifests"))?;
            for (i, m) in manifests.iter().enumerate() {
                parsed
                    .children
                    .push(descriptor_digest(m, &format!("manifests[{i}]"))?);
            }
            if doc.config.is_some() || doc.layers.is_some() {
                return Err(invalid("index with config or layers"));
            }
        }
        _ => {
            return Err(invalid(format!(
                "unsupported manifest media type {:?}",
                parsed.media_type
            )))
        }
    }
    if let Some(s) = &doc.subject {
        parsed.subject = Some(descriptor_digest(s, "subject")?);
    }
    Ok(parsed)
}

pub fn too_large(size: u64) -> ApiError {
    ApiError::new(
        Code::ManifestInvalid,
        format!("manifest is {size} bytes, more than the {MAX_MANIFEST_SIZE}-byte limit"),
    )
    .with_status(hyper::StatusCode::PAYLOAD_TOO_LARGE)
}

/// The descriptor a referrers list shows for a manifest.
pub fn referrer_descriptor(parsed: &Parsed, digest: &Digest, size: u64) -> Value {
    let mut d = serde_json::json!({
        "mediaType": parsed.media_type,
        "digest": digest.to_string(),
        "size": size,
    });
    if let Some(at) = &parsed.artifact_type {
        d["artifactType"] = Value::String(at.clone());
    }
    if let Some(a) = &parsed.annotations {
        d["annotations"] = Value::Object(a.clone());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const L1: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn manifest(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{CFG}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{L1}","size":3}}]{extra}}}"#,
            media::OCI_MANIFEST
        )
    }

    #[test]
    fn parses_image_manifest_references() {
        let p = parse(manifest("").as_bytes(), Some(media::OCI_MANIFEST)).unwrap();
        assert_eq!(p.kind, Kind::Manifest);
        assert_eq!(p.blobs.len(), 2);
        assert_eq!(p.blobs[0].to_string(), CFG);
        assert_eq!(
            p.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
        assert!(p.subject.is_none());
    }

    #[test]
    fn rejects_bad_documents() {
        let m = manifest("");
        let err = parse(m.as_bytes(), Some(media::DOCKER_MANIFEST)).unwrap_err();
        assert_eq!(err.code, Code::ManifestInvalid);
        assert!(parse(b"not json", None).is_err());
        assert!(parse(br#"{"schemaVersion":1}"#, None).is_err());
        let bad_digest = m.replace(L1, "sha256:zz");
        assert!(parse(bad_digest.as_bytes(), None).is_err());
        let big = vec![b' '; MAX_MANIFEST_SIZE + 1];
        let err = parse(&big, None).unwrap_err();
        assert_eq!(err.status, hyper::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn subject_and_artifact_type_are_read() {
        let m = manifest(&format!(
            r#","artifactType":"application/x-sig","subject":{{"mediaType":"{}","digest":"{L1}","size":9}}"#,
            media::OCI_MANIFEST
        ));
        let p = parse(m.as_bytes(), None).unwrap();
        assert_eq!(p.subject.unwrap().to_string(), L1);
        assert_eq!(p.artifact_type.as_deref(), Some("application/x-sig"));
    }
}
