//! GET/HEAD, PUT and DELETE of manifests, by tag or digest.

use std::sync::Arc;

use berth_image::digest::Algorithm;
use berth_image::Digest;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG, LOCATION};
use hyper::{Method, StatusCode};

use super::blobs::parse_digest;
use super::body::{read_limited, ReadError};
use super::{blocking, body, Ctx, Response, State, DIGEST_HEADER};
use crate::api_error::{ApiError, Code};
use crate::manifest::{self, referrer_descriptor, MAX_MANIFEST_SIZE};
use crate::names::valid_tag;
use crate::storage::ManifestLink;

/// A reference in a manifest URL.
enum Reference {
    Tag(String),
    Digest(Digest),
}

fn reference(r: &str) -> Result<Reference, ApiError> {
    if r.contains(':') {
        return Ok(Reference::Digest(parse_digest(r)?));
    }
    if !valid_tag(r) {
        return Err(ApiError::new(
            Code::TagInvalid,
            format!("invalid tag {:?}", super::truncate(r)),
        ));
    }
    Ok(Reference::Tag(r.to_string()))
}

fn manifest_unknown(r: &str) -> ApiError {
    ApiError::new(
        Code::ManifestUnknown,
        format!("manifest {:?} unknown", super::truncate(r)),
    )
}

pub(super) async fn get(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    r: &str,
) -> Result<Response, ApiError> {
    let reference = match reference(r) {
        Ok(reference) => reference,
        Err(e) if e.code == Code::TagInvalid => return Err(manifest_unknown(r)),
        Err(e) => return Err(e),
    };
    let head = ctx.method == Method::HEAD;
    let st = state.clone();
    let (name, rs) = (name.to_string(), r.to_string());
    let (d, link, bytes) = blocking(move || {
        let d = match reference {
            Reference::Digest(d) => d,
            Reference::Tag(t) => st
                .storage
                .resolve_tag(&name, &t)?
                .ok_or_else(|| manifest_unknown(&rs))?,
        };
        let link = st
            .storage
            .manifest(&name, &d)?
            .ok_or_else(|| manifest_unknown(&rs))?;
        let bytes = st
            .storage
            .content()
            .read_bounded(&d, MAX_MANIFEST_SIZE as u64)?;
        Ok((d, link, bytes))
    })
    .await?;
    hyper::Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, link.media_type)
        .header(DIGEST_HEADER, d.to_string())
        .header(ETAG, format!("\"{d}\""))
        .header(CONTENT_LENGTH, bytes.len())
        .body(if head {
            body::empty()
        } else {
            body::full(bytes)
        })
        .map_err(ApiError::internal)
}

pub(super) async fn put(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    r: &str,
    body: Incoming,
) -> Result<Response, ApiError> {
    let reference = reference(r)?;
    let declared_len = ctx
        .header(CONTENT_LENGTH.as_str())
        .and_then(|l| l.parse::<u64>().ok());
    // Far too large: answer at once. Otherwise read (and past the limit, drop) the body first,
    // so the client, still sending, gets the answer rather than a reset connection.
    if let Some(len) = declared_len.filter(|&l| l > body::DRAIN_LIMIT) {
        return Err(manifest::too_large(len));
    }
    let bytes = match read_limited(body, MAX_MANIFEST_SIZE).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return Err(manifest::too_large(MAX_MANIFEST_SIZE as u64 + 1)),
        Err(ReadError::Io(e)) => {
            return Err(ApiError::new(
                Code::ManifestInvalid,
                format!("reading manifest: {e}"),
            ))
        }
    };
    let parsed = manifest::parse(&bytes, ctx.header(CONTENT_TYPE.as_str()))?;
    let digest = match &reference {
        Reference::Digest(want) => {
            let mut h = want.algorithm().hasher();
            h.update(&bytes);
            let actual = h.finish();
            if &actual != want {
                return Err(ApiError::new(
                    Code::DigestInvalid,
                    format!("manifest hashes to {actual}, not {want}"),
                ));
            }
            actual
        }
        Reference::Tag(_) => {
            let mut h = Algorithm::Sha256.hasher();
            h.update(&bytes);
            h.finish()
        }
    };

    let st = state.clone();
    let (repo, d) = (name.to_string(), digest.clone());
    let subject = parsed.subject.clone();
    blocking(move || {
        let storage = &st.storage;
        for b in &parsed.blobs {
            if !storage.has_blob(&repo, b) {
                return Err(ApiError::new(
                    Code::ManifestBlobUnknown,
                    format!("blob {b} is not in repository {repo}"),
                ));
            }
        }
        for c in &parsed.children {
            if storage.manifest(&repo, c)?.is_none() {
                return Err(ApiError::new(
                    Code::ManifestBlobUnknown,
                    format!("manifest {c} is not in repository {repo}"),
                ));
            }
        }
        let size = bytes.len() as u64;
        storage.content().ingest(&bytes[..], Some(&d), Some(size))?;
        storage.link_manifest(
            &repo,
            &d,
            &ManifestLink {
                media_type: parsed.media_type.clone(),
                subject: parsed.subject.clone(),
            },
        )?;
        if let Some(s) = &parsed.subject {
            storage.add_referrer(&repo, s, &d, &referrer_descriptor(&parsed, &d, size))?;
        }
        if let Reference::Tag(t) = &reference {
            storage.set_tag(&repo, t, &d)?;
        }
        Ok(())
    })
    .await?;

    let mut b = hyper::Response::builder()
        .status(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/manifests/{digest}"))
        .header(DIGEST_HEADER, digest.to_string())
        .header(CONTENT_LENGTH, 0);
    if let Some(s) = subject {
        b = b.header("OCI-Subject", s.to_string());
    }
    b.body(body::empty()).map_err(ApiError::internal)
}

pub(super) async fn delete(state: &Arc<State>, name: &str, r: &str) -> Result<Response, ApiError> {
    let reference = reference(r)?;
    let st = state.clone();
    let (repo, rs) = (name.to_string(), r.to_string());
    blocking(move || {
        let removed = match reference {
            Reference::Tag(t) => st.storage.delete_tag(&repo, &t)?,
            Reference::Digest(d) => st.storage.delete_manifest(&repo, &d)?,
        };
        if removed {
            Ok(())
        } else {
            Err(manifest_unknown(&rs))
        }
    })
    .await?;
    hyper::Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(CONTENT_LENGTH, 0)
        .body(body::empty())
        .map_err(ApiError::internal)
}
