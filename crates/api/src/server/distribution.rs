//! Registries: `POST /images/create` (pull), `POST /images/{name}/push`, `POST /auth`,
//! `GET /distribution/{name}/json`.
//!
//! Pull and push stream Docker's JSON messages, one per line, which the docker CLI draws as
//! progress bars. Like Docker, a pull that fails before it got anywhere (unknown image or
//! tag, bad name, refused credentials) answers with an error status instead (404 for an
//! unknown image, which `docker run` relies on); later failures end the stream with an
//! `{"errorDetail":…,"error":…}` message.

use std::sync::Arc;

use berth_engine::registry::{
    pull_reference, Credential, LoginError, ProgressEvent, Pulled, Pushed, Reference,
};
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio::task::JoinHandle;

use super::body::{self, Body};
use super::{error, json_body, Ctx};

/// Docker's header carrying the registry credential (base64url JSON).
const REGISTRY_AUTH: &str = "X-Registry-Auth";

/// The request's `X-Registry-Auth` credential; Err is the 400 message.
fn registry_auth(ctx: &Ctx) -> Result<Option<Credential>, String> {
    let Some(v) = ctx.req.headers().get(REGISTRY_AUTH) else {
        return Ok(None);
    };
    let text = v
        .to_str()
        .map_err(|_| format!("{REGISTRY_AUTH} is not text"))?;
    Credential::from_registry_auth_header(text).map_err(|e| e.to_string())
}

fn line(v: &impl serde::Serialize) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// The streamed answer: `first` events, then those still arriving on `events`, then what
/// `work` returns as its final messages once it ends.
fn stream(
    first: Vec<ProgressEvent>,
    mut events: UnboundedReceiver<ProgressEvent>,
    work: JoinHandle<Vec<serde_json::Value>>,
) -> Response<Body> {
    let (tx, out) = body::channel();
    tokio::spawn(async move {
        for e in &first {
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        tokio::pin!(work);
        let last = loop {
            tokio::select! {
                biased;
                e = events.recv() => match e {
                    Some(e) => {
                        // A client that went away does not stop the work; it finishes for
                        // the next caller.
                        let _ = tx.send(line(&e)).await;
                    }
                    None => break (&mut work).await,
                },
                r = &mut work => break r,
            }
        };
        while let Ok(e) = events.try_recv() {
            let _ = tx.send(line(&e)).await;
        }
        let last = last.unwrap_or_else(|e| vec![json!(ProgressEvent::error(e.to_string()))]);
        for v in last {
            let _ = tx.send(line(&v)).await;
        }
    });
    let mut r = Response::new(out);
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST /images/create?fromImage=&tag=&platform=`; with `fromSrc`, an import (`commit::import`).
pub async fn create(ctx: Ctx) -> Response<Body> {
    if ctx.query.get("fromSrc").is_some_and(|s| !s.is_empty()) {
        return super::commit::import(ctx).await;
    }
    let Some(from) = ctx.query.get("fromImage").filter(|f| !f.is_empty()) else {
        return body::error(StatusCode::BAD_REQUEST, "fromImage is required");
    };
    // Docker's API: no tag anywhere means every tag (`docker pull --all-tags`); the docker
    // CLI and docker-py send "latest" themselves otherwise.
    let all_tags = ctx.query.get("tag").is_none_or(|t| t.trim().is_empty())
        && Reference::parse(from).is_ok_and(|r| r.tag().is_none() && r.digest().is_none());
    let reference = match pull_reference(from, ctx.query.get("tag")) {
        Ok(r) if all_tags => match Reference::parse(&r.name()) {
            Ok(name) => name,
            Err(e) => return body::error(StatusCode::BAD_REQUEST, e.to_string()),
        },
        Ok(r) => r,
        Err(e) => return error::response(&e),
    };
    let auth = match registry_auth(&ctx) {
        Ok(a) => a,
        Err(msg) => return body::error(StatusCode::BAD_REQUEST, msg),
    };
    let platform = ctx.query.get("platform").map(str::to_owned);
    let (tx, mut events) = mpsc::unbounded_channel::<ProgressEvent>();
    let engine = ctx.engine.clone();
    let mut task = tokio::spawn(async move {
        if all_tags {
            engine
                .pull_all_tags(&reference, platform.as_deref(), auth, Arc::new(tx))
                .await
        } else {
            engine
                .pull_image(&reference, platform.as_deref(), auth, Arc::new(tx))
                .await
        }
    });
    // "Pulling from" comes before the manifest; whatever follows it means the registry had the
    // image. Until then an error is still an HTTP status.
    let mut first = Vec::new();
    let early: Option<Result<Pulled, berth_engine::Error>> = loop {
        tokio::select! {
            biased;
            e = events.recv() => match e {
                Some(e) => {
                    first.push(e);
                    if first.len() >= 2 {
                        break None;
                    }
                }
                None => break Some(join(&mut task).await),
            },
            r = &mut task => break Some(r.unwrap_or_else(|e| Err(berth_engine::Error::internal("pull", e)))),
        }
    };
    let work =
        match early {
            Some(Err(e)) => return error::response(&e),
            Some(Ok(pulled)) => tokio::spawn(async move {
                vec![json!(ProgressEvent::status(None, pulled.status_line()))]
            }),
            None => tokio::spawn(async move {
                match join(&mut task).await {
                    Ok(pulled) => vec![json!(ProgressEvent::status(None, pulled.status_line()))],
                    Err(e) => vec![json!(ProgressEvent::error(e.to_string()))],
                }
            }),
        };
    stream(first, events, work)
}

async fn join<T>(
    task: &mut JoinHandle<Result<T, berth_engine::Error>>,
) -> Result<T, berth_engine::Error> {
    task.await
        .unwrap_or_else(|e| Err(berth_engine::Error::internal("registry task", e)))
}

/// `POST /images/{name}/push?tag=`: that tag, or every tag of the repository.
pub async fn push(ctx: Ctx, name: &str) -> Response<Body> {
    let targets = match ctx.engine.push_targets(name, ctx.query.get("tag")) {
        Ok(t) => t,
        Err(e) => return error::response(&e),
    };
    let auth = match registry_auth(&ctx) {
        Ok(a) => a,
        Err(msg) => return body::error(StatusCode::BAD_REQUEST, msg),
    };
    let (tx, events) = mpsc::unbounded_channel::<ProgressEvent>();
    let progress: berth_engine::registry::Progress = Arc::new(tx);
    let engine = ctx.engine.clone();
    let work = tokio::spawn(async move {
        let mut last = Vec::new();
        for target in &targets {
            match engine
                .push_image(target, auth.clone(), progress.clone())
                .await
            {
                Ok(p) => last.push(aux(&p)),
                Err(e) => {
                    last.push(json!(ProgressEvent::error(e.to_string())));
                    break;
                }
            }
        }
        last
    });
    stream(Vec::new(), events, work)
}

/// Docker's closing message of each pushed tag (the CLI's content trust reads it).
fn aux(p: &Pushed) -> serde_json::Value {
    json!({
        "progressDetail": {},
        "aux": {"Tag": p.tag, "Digest": p.digest.to_string(), "Size": p.size},
    })
}

#[derive(Debug, Default, serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
    #[serde(default)]
    identitytoken: String,
}

/// `POST /auth`: check a login with the registry.
pub async fn auth(ctx: Ctx) -> Response<Body> {
    let engine = ctx.engine.clone();
    let cfg: AuthConfig = match json_body(ctx.req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let cred = Credential {
        username: cfg.username,
        password: cfg.password,
        identity_token: Some(cfg.identitytoken).filter(|t| !t.is_empty()),
    };
    match engine.registry_login(&cfg.serveraddress, cred).await {
        Ok(()) => body::json(
            StatusCode::OK,
            &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        ),
        Err(e @ LoginError::Unauthorized(_)) => {
            body::error(StatusCode::UNAUTHORIZED, e.to_string())
        }
        Err(e) => body::error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// `GET /distribution/{name}/json`.
pub async fn inspect(ctx: Ctx, name: &str) -> Response<Body> {
    let auth = match registry_auth(&ctx) {
        Ok(a) => a,
        Err(msg) => return body::error(StatusCode::BAD_REQUEST, msg),
    };
    match ctx.engine.distribution_inspect(name, auth).await {
        Ok(d) => body::json(StatusCode::OK, &d),
        Err(e) => error::response(&e),
    }
}
