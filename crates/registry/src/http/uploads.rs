//! Blob uploads: POST (new session, monolithic with `?digest=`, cross-repo mount), PATCH
//! (chunks, in order), PUT (last chunk + digest), GET (status), DELETE (cancel).

use std::sync::Arc;

use berth_image::Digest;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, LOCATION};
use hyper::StatusCode;

use super::blobs::parse_digest;
use super::{blocking, body, Ctx, Response, State, DIGEST_HEADER};
use crate::api_error::{ApiError, Code};
use crate::auth::Need;
use crate::names::valid_repo_name;
use crate::storage::uploads::{Finished, Slot};

type Guard = tokio::sync::OwnedMutexGuard<Option<Upload>>;
use crate::storage::Upload;

const UUID_HEADER: &str = "Docker-Upload-UUID";

fn upload_unknown() -> ApiError {
    ApiError::new(Code::BlobUploadUnknown, "upload unknown")
}

/// `Range: 0-<last byte>` as distribution writes it (`0-0` for an empty upload).
fn range_value(offset: u64) -> String {
    format!("0-{}", offset.saturating_sub(1))
}

fn in_progress(
    status: StatusCode,
    name: &str,
    id: &str,
    offset: u64,
) -> Result<Response, ApiError> {
    hyper::Response::builder()
        .status(status)
        .header(LOCATION, format!("/v2/{name}/blobs/uploads/{id}"))
        .header("Range", range_value(offset))
        .header(UUID_HEADER, id)
        .header(CONTENT_LENGTH, 0)
        .body(body::empty())
        .map_err(ApiError::internal)
}

fn created(name: &str, d: &Digest) -> Result<Response, ApiError> {
    hyper::Response::builder()
        .status(StatusCode::CREATED)
        .header(LOCATION, format!("/v2/{name}/blobs/{d}"))
        .header(DIGEST_HEADER, d.to_string())
        .header(CONTENT_LENGTH, 0)
        .body(body::empty())
        .map_err(ApiError::internal)
}

pub(super) async fn start(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    body: Incoming,
) -> Result<Response, ApiError> {
    if let (Some(mount), Some(from)) = (ctx.query("mount"), ctx.query("from")) {
        let d = parse_digest(mount)?;
        if try_mount(state, ctx, name, from, &d).await? {
            return created(name, &d);
        }
        // Not mountable here: fall back to an ordinary upload session (202), as the spec allows.
    }
    let digest = match ctx.query("digest").map(parse_digest) {
        None => None,
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            body::drain(body).await;
            return Err(e);
        }
    };
    let st = state.clone();
    let repo = name.to_string();
    let (id, slot) = blocking(move || Ok(st.uploads.start(&repo)?)).await?;
    match digest {
        // Monolithic upload in the POST itself.
        Some(d) => {
            let mut guard = slot.lock().await;
            let upload = guard.take().ok_or_else(upload_unknown)?;
            let (upload, received) = body::receive(upload, body).await;
            state.uploads.forget(&id);
            let upload = upload.ok_or_else(upload_unknown)?;
            if let Err(e) = received {
                discard(upload).await;
                return Err(e);
            }
            complete(state, name, upload, &d).await
        }
        None => in_progress(StatusCode::ACCEPTED, name, &id, 0),
    }
}

/// Link `d` from `from` into `name` if the client may read `from` and it has the blob.
async fn try_mount(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    from: &str,
    d: &Digest,
) -> Result<bool, ApiError> {
    if !valid_repo_name(from) || !ctx.granted.allows(&Need::repo(from, "pull")) {
        return Ok(false);
    }
    let st = state.clone();
    let (name, from, d) = (name.to_string(), from.to_string(), d.clone());
    blocking(move || {
        if !st.storage.has_blob(&from, &d) {
            return Ok(false);
        }
        st.storage.link_blob(&name, &d)?;
        Ok(true)
    })
    .await
}

/// The session `id` of `name`, locked (until the guard drops), its upload taken out of the
/// slot. Put it back (`*guard = Some(upload)`) to keep the session open.
async fn take(state: &Arc<State>, name: &str, id: &str) -> Result<(Guard, Upload), ApiError> {
    let st = state.clone();
    let idc = id.to_string();
    let slot: Slot = blocking(move || Ok(st.uploads.get(&idc)?))
        .await?
        .ok_or_else(upload_unknown)?;
    let mut guard = slot.lock_owned().await;
    match guard.take() {
        Some(u) if u.repo == name => Ok((guard, u)),
        Some(u) => {
            *guard = Some(u);
            Err(upload_unknown())
        }
        None => Err(upload_unknown()),
    }
}

/// `Content-Range: <start>-<end>` (also accepting `bytes <start>-<end>/<total>`).
fn content_range(ctx: &Ctx) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = ctx.header("Content-Range") else {
        return Ok(None);
    };
    let bad = || ApiError::new(Code::BlobUploadInvalid, format!("bad Content-Range {v:?}"));
    let v2 = v.trim().trim_start_matches("bytes").trim();
    let v2 = v2.split('/').next().unwrap_or(v2);
    let (a, b) = v2.split_once('-').ok_or_else(bad)?;
    let start: u64 = a.trim().parse().map_err(|_| bad())?;
    let end: u64 = b.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

/// Check a chunk's declared range against the session: chunks must arrive in order.
fn check_chunk(ctx: &Ctx, name: &str, upload: &Upload) -> Result<(), ApiError> {
    let Some((start, end)) = content_range(ctx)? else {
        return Ok(());
    };
    if start != upload.offset() {
        return Err(ApiError::new(
            Code::RangeInvalid,
            format!(
                "chunk starts at {start}, but the upload has {} bytes",
                upload.offset()
            ),
        )
        .with_header(
            "Location",
            format!("/v2/{name}/blobs/uploads/{}", upload.id),
        )
        .with_header("Range", range_value(upload.offset()))
        .with_header(UUID_HEADER, upload.id.clone()));
    }
    let declared = ctx
        .header(CONTENT_LENGTH.as_str())
        .and_then(|l| l.parse::<u64>().ok());
    if let Some(len) = declared {
        if len != end - start + 1 {
            return Err(ApiError::new(
                Code::BlobUploadInvalid,
                format!("Content-Range {start}-{end} does not match Content-Length {len}"),
            )
            .with_status(StatusCode::RANGE_NOT_SATISFIABLE));
        }
    }
    Ok(())
}

pub(super) async fn patch(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    id: &str,
    body: Incoming,
) -> Result<Response, ApiError> {
    let (mut guard, upload) = take(state, name, id).await?;
    if let Err(e) = check_chunk(ctx, name, &upload) {
        *guard = Some(upload);
        drop(guard);
        body::drain(body).await;
        return Err(e);
    }
    let (upload, received) = body::receive(upload, body).await;
    let offset = upload.as_ref().map(Upload::offset).unwrap_or(0);
    *guard = upload;
    received?;
    in_progress(StatusCode::ACCEPTED, name, id, offset)
}

pub(super) async fn put(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    id: &str,
    body: Incoming,
) -> Result<Response, ApiError> {
    let (mut guard, upload) = take(state, name, id).await?;
    let digest = match ctx.query("digest").map(parse_digest) {
        Some(Ok(d)) => d,
        refused => {
            *guard = Some(upload);
            drop(guard);
            body::drain(body).await;
            return Err(match refused {
                Some(Err(e)) => e,
                _ => ApiError::new(Code::DigestInvalid, "digest parameter missing"),
            });
        }
    };
    if let Err(e) = check_chunk(ctx, name, &upload) {
        *guard = Some(upload);
        drop(guard);
        body::drain(body).await;
        return Err(e);
    }
    let (upload, received) = body::receive(upload, body).await;
    state.uploads.forget(id);
    let upload = upload.ok_or_else(upload_unknown)?;
    if let Err(e) = received {
        discard(upload).await;
        return Err(e);
    }
    drop(guard);
    complete(state, name, upload, &digest).await
}

/// Verify and store the upload's content as `d`, then link it into `name`.
async fn complete(
    state: &Arc<State>,
    name: &str,
    upload: Upload,
    d: &Digest,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let (repo, dd) = (name.to_string(), d.clone());
    let finished = blocking(move || {
        let finished = upload.finish(&dd, st.storage.content())?;
        if let Finished::Stored(_) = finished {
            st.storage.link_blob(&repo, &dd)?;
        }
        Ok(finished)
    })
    .await?;
    match finished {
        Finished::Stored(_) => created(name, d),
        Finished::Mismatch { actual } => Err(ApiError::new(
            Code::DigestInvalid,
            format!("content hashes to {actual}, not the given {d}"),
        )),
    }
}

async fn discard(upload: Upload) {
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || upload.discard()).await {
        tracing::warn!("discard upload: {e}");
    }
}

pub(super) async fn status(state: &Arc<State>, name: &str, id: &str) -> Result<Response, ApiError> {
    let (mut guard, upload) = take(state, name, id).await?;
    let offset = upload.offset();
    *guard = Some(upload);
    in_progress(StatusCode::NO_CONTENT, name, id, offset)
}

pub(super) async fn cancel(state: &Arc<State>, name: &str, id: &str) -> Result<Response, ApiError> {
    let (_guard, upload) = take(state, name, id).await?;
    state.uploads.forget(id);
    blocking(move || Ok(upload.discard()?)).await?;
    hyper::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(body::empty())
        .map_err(ApiError::internal)
}
