//! The HTTP server: hyper on a unix socket, Docker's routes mapped onto the engine.

mod body;
mod commit;
mod containers;
mod convert;
mod distribution;
mod error;
mod events;
mod exec;
mod hijack;
mod images;
mod networks;
mod stats;
mod system;
mod volumes;

use std::convert::Infallible;
use std::sync::Arc;

use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::query::Query;
use body::Body;

/// Quiet time after which berthd gives back the pages its last requests touched.
const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serve the Docker Engine API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: UnixListener,
    engine: Arc<Engine>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    // After a few quiet seconds, give back the code pages the last requests faulted in
    // (berth_shim::footprint): an idle berthd stays small however busy it was.
    let mut settle = true;
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(IDLE_RELEASE), if settle => {
                settle = false;
                let _ = tokio::task::spawn_blocking(berth_shim::footprint::release_startup_pages).await;
                continue;
            }
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    continue;
                }
            },
        };
        settle = true;
        let engine = engine.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let engine = engine.clone();
                async move { Ok::<_, Infallible>(route(engine, req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await
            {
                tracing::debug!("connection: {e}");
            }
        });
    }
}

/// "/v1.47/containers/json" → "/containers/json".
fn strip_version(path: &str) -> &str {
    if let Some(rest) = path.strip_prefix("/v") {
        if let Some(i) = rest.find('/') {
            let v = &rest[..i];
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return &rest[i..];
            }
        }
    }
    path
}

/// What a handler gets.
pub(crate) struct Ctx {
    pub engine: Arc<Engine>,
    pub query: Query,
    pub req: Request<Incoming>,
}

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = strip_version(req.uri().path()).to_string();
    let query = Query::parse(req.uri().query());
    tracing::debug!("{method} {path}");
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(crate::query::percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let mut ctx = Ctx { engine, query, req };
    let m = &method;
    let resp = match (m, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => system::ping(m),
        (&Method::GET, ["version"]) => system::version(),
        (&Method::GET, ["info"]) => system::info(&ctx),
        (&Method::GET, ["events"]) => events::events(&ctx),
        (&Method::GET, ["system", "df"]) => system::df(&ctx),
        (&Method::POST, ["containers", "prune"]) => containers::prune(&ctx).await,
        (&Method::POST, ["images", "prune"]) => images::prune(&ctx),
        // No build cache exists yet: nothing to prune.
        (&Method::POST, ["build", "prune"]) => body::json(
            StatusCode::OK,
            &serde_json::json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
        ),

        (&Method::POST, ["images", "load"]) => images::load(ctx).await,
        (&Method::POST, ["images", "create"]) => distribution::create(ctx).await,
        (&Method::POST, ["images", name @ .., "push"]) if !name.is_empty() => {
            distribution::push(ctx, &name.join("/")).await
        }
        (&Method::POST, ["auth"]) => distribution::auth(ctx).await,
        (&Method::GET, ["distribution", name @ .., "json"]) if !name.is_empty() => {
            distribution::inspect(ctx, &name.join("/")).await
        }
        (&Method::GET, ["images", "json"]) => images::list(&ctx),
        (&Method::GET, ["images", "get"]) => images::save(&ctx, ctx.query.all("names")),
        (&Method::GET, ["images", name @ .., "get"]) if !name.is_empty() => {
            images::save(&ctx, vec![name.join("/")])
        }
        (&Method::GET, ["images", name @ .., "history"]) if !name.is_empty() => {
            commit::history(&ctx, &name.join("/"))
        }
        (&Method::POST, ["commit"]) => commit::commit(ctx).await,
        (&Method::GET, ["containers", id, "changes"]) => commit::changes(&ctx, id).await,
        (&Method::GET, ["containers", id, "export"]) => commit::export(&ctx, id).await,
        (&Method::GET, ["images", name @ .., "json"]) if !name.is_empty() => {
            images::inspect(&ctx, &name.join("/"))
        }
        (&Method::POST, ["images", name @ .., "tag"]) if !name.is_empty() => {
            images::tag(&ctx, &name.join("/"))
        }
        (&Method::DELETE, ["images", name @ ..]) if !name.is_empty() => {
            images::remove(&ctx, &name.join("/"))
        }

        (&Method::POST, ["containers", "create"]) => containers::create(ctx).await,
        (&Method::GET, ["containers", "json"]) => containers::list(&ctx),
        (&Method::GET, ["containers", id, "json"]) => containers::inspect(&ctx, id),
        (&Method::POST, ["containers", id, "start"]) => containers::start(&ctx, id).await,
        (&Method::POST, ["containers", id, "stop"]) => containers::stop(&ctx, id).await,
        (&Method::POST, ["containers", id, "restart"]) => containers::restart(&ctx, id).await,
        (&Method::POST, ["containers", id, "kill"]) => containers::kill(&ctx, id).await,
        (&Method::POST, ["containers", id, "wait"]) => containers::wait(&ctx, id),
        (&Method::POST, ["containers", id, "attach"]) => containers::attach(&mut ctx, id).await,
        (&Method::POST, ["containers", id, "resize"]) => containers::resize(&ctx, id).await,
        (&Method::GET, ["containers", id, "logs"]) => containers::logs(&ctx, id),
        (&Method::DELETE, ["containers", id]) => containers::remove(&ctx, id).await,
        (&Method::POST, ["containers", id, "exec"]) => exec::create(ctx, id).await,
        (&Method::POST, ["containers", id, "pause"]) => containers::pause(&ctx, id).await,
        (&Method::POST, ["containers", id, "unpause"]) => containers::unpause(&ctx, id).await,
        (&Method::POST, ["containers", id, "rename"]) => containers::rename(&ctx, id),
        (&Method::POST, ["containers", id, "update"]) => containers::update(ctx, id).await,
        (&Method::GET, ["containers", id, "top"]) => containers::top(&ctx, id),
        (&Method::GET, ["containers", id, "stats"]) => stats::stats(&ctx, id).await,
        (&Method::HEAD, ["containers", id, "archive"]) => containers::archive_head(&ctx, id).await,
        (&Method::GET, ["containers", id, "archive"]) => containers::archive_get(&ctx, id).await,
        (&Method::PUT, ["containers", id, "archive"]) => containers::archive_put(ctx, id).await,

        (&Method::POST, ["volumes", "create"]) => volumes::create(ctx).await,
        (&Method::POST, ["volumes", "prune"]) => volumes::prune(&ctx),
        (&Method::GET, ["volumes"]) => volumes::list(&ctx),
        (&Method::GET, ["volumes", name]) => volumes::inspect(&ctx, name),
        (&Method::DELETE, ["volumes", name]) => volumes::remove(&ctx, name),

        (&Method::GET, ["networks"]) => networks::list(&ctx),
        (&Method::POST, ["networks", "create"]) => networks::create(ctx).await,
        (&Method::POST, ["networks", "prune"]) => networks::prune(&ctx).await,
        (&Method::GET, ["networks", id]) => networks::inspect(&ctx, id),
        (&Method::DELETE, ["networks", id]) => networks::remove(&ctx, id).await,
        (&Method::POST, ["networks", id, "connect"]) => networks::connect(ctx, id).await,
        (&Method::POST, ["networks", id, "disconnect"]) => networks::disconnect(ctx, id).await,

        (&Method::POST, ["exec", id, "start"]) => exec::start(ctx, id).await,
        (&Method::POST, ["exec", id, "resize"]) => exec::resize(&ctx, id).await,
        (&Method::GET, ["exec", id, "json"]) => exec::inspect(&ctx, id),

        _ => body::error(
            StatusCode::NOT_FOUND,
            format!("page not found: {method} {path}"),
        ),
    };
    with_common_headers(resp)
}

fn with_common_headers(mut r: Response<Body>) -> Response<Body> {
    let h = r.headers_mut();
    h.insert(
        "Api-Version",
        hyper::header::HeaderValue::from_static(crate::API_VERSION),
    );
    h.insert("Server", hyper::header::HeaderValue::from_static("berth"));
    h.insert("Ostype", hyper::header::HeaderValue::from_static("linux"));
    r
}

/// Read a JSON request body; 400 naming the field that does not fit.
pub(crate) async fn json_body<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
    use http_body_util::BodyExt;
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| body::error(StatusCode::BAD_REQUEST, format!("read body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        body::error(
            StatusCode::BAD_REQUEST,
            format!("invalid JSON at {path}: {}", e.inner()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::strip_version;

    #[test]
    fn strips_any_api_version() {
        assert_eq!(strip_version("/v1.47/containers/json"), "/containers/json");
        assert_eq!(strip_version("/v1.24/_ping"), "/_ping");
        assert_eq!(strip_version("/_ping"), "/_ping");
        assert_eq!(strip_version("/volumes"), "/volumes");
    }
}
