//! The Docker Engine API client `berth` uses: HTTP/1.1 over the daemon's unix socket, typed
//! helpers for the calls the CLI makes, and hijacked streams for attach and exec.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
pub use hyper::Method;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::UnixStream;

use crate::query::percent_encode;
use crate::types::{
    ContainerSummary, CreateBody, CreateResponse, ErrorResponse, ExecConfig, IdResponse,
    ImageSummary, Version, WaitResponse,
};

mod archive;
mod events;
mod images;
mod registry;
pub use images::CommitRequest;
pub use registry::REGISTRY_AUTH_HEADER;

pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens: the message says how to start a daemon.
    #[error("cannot connect to the berth daemon at unix://{}: {source}\n\nIs berthd running? Start one with:\n    sudo berthd &\n(defaults: --data-root /var/lib/berth --exec-root /run/berth -H unix://{DEFAULT_SOCKET}),\nor point BERTH_HOST / -H at a running daemon, e.g. BERTH_HOST=unix:///path/to/berth.sock", socket.display())]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The daemon answered with an error document.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error("{0}")]
    Protocol(String),
}

pub type Result<T> = std::result::Result<T, ClientError>;

type ReqBody = BoxBody<Bytes, std::io::Error>;

fn proto(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(format!("{what}: {e}"))
}

/// A hijacked connection (attach, exec): raw bytes both ways.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

/// What the client does right after a create, so berthd may make it ahead (berth's extension
/// `prepare`; other daemons ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prepare {
    /// Nothing said (Docker's create).
    Nothing,
    /// It starts the container (`prepare=1`): berthd sets the process up meanwhile.
    Start,
    /// It attaches and then starts, with the attach's `start=1` (`prepare=start`): berthd may
    /// also start the process, its output held for that attach.
    AttachAndStart,
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

/// `unix:///path` or `/path` → the socket path.
pub fn parse_host(host: &str) -> Result<PathBuf> {
    match host.strip_prefix("unix://") {
        Some(p) => Ok(PathBuf::from(p)),
        None if host.starts_with('/') => Ok(PathBuf::from(host)),
        None => Err(ClientError::Protocol(format!(
            "unsupported host {host:?}: use unix:///path/to/berth.sock"
        ))),
    }
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    /// `-H` if given, else `BERTH_HOST`, else the default socket.
    pub fn from_host(host: Option<&str>) -> Result<Client> {
        let env = std::env::var("BERTH_HOST").ok();
        match host.or(env.as_deref()).filter(|h| !h.is_empty()) {
            Some(h) => Ok(Client::new(parse_host(h)?)),
            None => Ok(Client::new(DEFAULT_SOCKET)),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    async fn send(&self, req: Request<ReqBody>) -> Result<Response<Incoming>> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| proto("handshake", e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| proto("request", e))
    }

    fn build(method: Method, path: &str, body: ReqBody, json: bool) -> Result<Request<ReqBody>> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", crate::API_VERSION))
            .header("Host", "berth");
        if json {
            b = b.header("Content-Type", "application/json");
        }
        b.body(body).map_err(|e| proto("build request", e))
    }

    fn full(bytes: Vec<u8>) -> ReqBody {
        Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed()
    }

    /// Send; error statuses become `ClientError::Api`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>> {
        let json = body.is_some();
        let req = Self::build(method, path, Self::full(body.unwrap_or_default()), json)?;
        check(self.send(req).await?).await
    }

    pub async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes> {
        let resp = self.call(method, path, body).await?;
        Ok(resp
            .into_body()
            .collect()
            .await
            .map_err(|e| proto("read response", e))?
            .to_bytes())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let bytes = self.call_bytes(Method::GET, path, None).await?;
        serde_json::from_slice(&bytes).map_err(|e| proto(&format!("parse {path}"), e))
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let b = serde_json::to_vec(body).map_err(|e| proto("encode", e))?;
        let bytes = self.call_bytes(Method::POST, path, Some(b)).await?;
        serde_json::from_slice(&bytes).map_err(|e| proto(&format!("parse {path}"), e))
    }

    /// POST without a meaningful response body (204/304 are both fine).
    pub async fn post_empty(&self, path: &str) -> Result<()> {
        self.call_bytes(Method::POST, path, None).await.map(|_| ())
    }

    /// POST with a streamed body (e.g. an image archive).
    pub async fn post_stream(
        &self,
        path: &str,
        body: impl hyper::body::Body<Data = Bytes, Error = std::io::Error> + Send + Sync + 'static,
    ) -> Result<Response<Incoming>> {
        let mut req = Self::build(Method::POST, path, body.boxed(), false)?;
        req.headers_mut().insert(
            "Content-Type",
            hyper::header::HeaderValue::from_static("application/x-tar"),
        );
        check(self.send(req).await?).await
    }

    /// Upgrade to a raw stream (attach, exec start): 101 expected.
    pub async fn hijack(&self, path: &str, body: Option<Vec<u8>>) -> Result<Hijacked> {
        Ok(self.hijack_with_headers(path, body).await?.0)
    }

    /// The hijacked stream and the headers of the daemon's 101.
    async fn hijack_with_headers(
        &self,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(Hijacked, hyper::HeaderMap)> {
        let json = body.is_some();
        let mut req = Self::build(
            Method::POST,
            path,
            Self::full(body.unwrap_or_default()),
            json,
        )?;
        let h = req.headers_mut();
        h.insert(
            "Connection",
            hyper::header::HeaderValue::from_static("Upgrade"),
        );
        h.insert("Upgrade", hyper::header::HeaderValue::from_static("tcp"));
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            check(resp).await?;
            return Err(ClientError::Protocol(format!(
                "{path}: the daemon did not upgrade"
            )));
        }
        let headers = resp.headers().clone();
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| proto("upgrade", e))?;
        Ok((TokioIo::new(up), headers))
    }

    // --- typed calls ---

    pub async fn version(&self) -> Result<Version> {
        self.get("/version").await
    }

    pub async fn info(&self) -> Result<serde_json::Value> {
        self.get("/info").await
    }

    pub async fn containers(&self, all: bool) -> Result<Vec<ContainerSummary>> {
        self.get(&format!("/containers/json?all={}", u8::from(all)))
            .await
    }

    pub async fn images(&self) -> Result<Vec<ImageSummary>> {
        self.get("/images/json").await
    }

    pub async fn inspect_container(&self, id: &str) -> Result<serde_json::Value> {
        self.get(&format!("/containers/{}/json", percent_encode(id)))
            .await
    }

    pub async fn inspect_image(&self, name: &str) -> Result<serde_json::Value> {
        self.get(&format!("/images/{name}/json")).await
    }

    pub async fn create(&self, name: Option<&str>, body: &CreateBody) -> Result<CreateResponse> {
        self.create_for(name, None, body, Prepare::Nothing).await
    }

    /// `create` for a platform ("linux/amd64"): an image of another platform is not found.
    /// `prepare`: what berthd may do ahead for a start that follows at once (see [`Prepare`]).
    pub async fn create_for(
        &self,
        name: Option<&str>,
        platform: Option<&str>,
        body: &CreateBody,
        prepare: Prepare,
    ) -> Result<CreateResponse> {
        let mut q = Vec::new();
        match prepare {
            Prepare::Nothing => {}
            Prepare::Start => q.push("prepare=1".to_string()),
            Prepare::AttachAndStart => q.push("prepare=start".to_string()),
        }
        if let Some(n) = name {
            q.push(format!("name={}", percent_encode(n)));
        }
        if let Some(p) = platform.filter(|p| !p.is_empty()) {
            q.push(format!("platform={}", percent_encode(p)));
        }
        let q = if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        };
        self.post(&format!("/containers/create{q}"), body).await
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{}/start", percent_encode(id)))
            .await
    }

    pub async fn stop(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        self.post_empty(&format!("/containers/{}/stop{q}", percent_encode(id)))
            .await
    }

    pub async fn restart(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q = timeout.map(|t| format!("?t={t}")).unwrap_or_default();
        self.post_empty(&format!("/containers/{}/restart{q}", percent_encode(id)))
            .await
    }

    pub async fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.post_empty(&format!(
            "/containers/{}/kill?signal={}",
            percent_encode(id),
            percent_encode(signal)
        ))
        .await
    }

    pub async fn remove(&self, id: &str, force: bool) -> Result<()> {
        self.call_bytes(
            Method::DELETE,
            &format!(
                "/containers/{}?force={}",
                percent_encode(id),
                u8::from(force)
            ),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Register a wait (returns once the daemon answered with headers); await the result later.
    pub async fn wait(
        &self,
        id: &str,
        condition: &str,
    ) -> Result<impl std::future::Future<Output = Result<i64>>> {
        let resp = self
            .call(
                Method::POST,
                &format!(
                    "/containers/{}/wait?condition={condition}",
                    percent_encode(id)
                ),
                None,
            )
            .await?;
        Ok(async move {
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| proto("read wait", e))?
                .to_bytes();
            let w: WaitResponse =
                serde_json::from_slice(&bytes).map_err(|e| proto("parse wait", e))?;
            Ok(w.status_code)
        })
    }

    pub async fn attach(&self, id: &str, stdin: bool) -> Result<Hijacked> {
        self.hijack(
            &format!(
                "/containers/{}/attach?stream=1&stdout=1&stderr=1&stdin={}",
                percent_encode(id),
                u8::from(stdin)
            ),
            None,
        )
        .await
    }

    /// Attach, and have the daemon start the container once the stream is hooked up
    /// (`start=1`, berth's extension). False: the daemon did not start it (not berthd).
    pub async fn attach_and_start(&self, id: &str, stdin: bool) -> Result<(Hijacked, bool)> {
        let (conn, headers) = self
            .hijack_with_headers(
                &format!(
                    "/containers/{}/attach?stream=1&stdout=1&stderr=1&stdin={}&start=1",
                    percent_encode(id),
                    u8::from(stdin)
                ),
                None,
            )
            .await?;
        Ok((conn, headers.contains_key(crate::STARTED_HEADER)))
    }

    pub async fn resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.post_empty(&format!(
            "/containers/{}/resize?h={height}&w={width}",
            percent_encode(id)
        ))
        .await
    }

    pub async fn exec_create(&self, id: &str, cfg: &ExecConfig) -> Result<String> {
        let r: IdResponse = self
            .post(&format!("/containers/{}/exec", percent_encode(id)), cfg)
            .await?;
        Ok(r.id)
    }

    pub async fn exec_start(&self, exec_id: &str, tty: bool) -> Result<Hijacked> {
        let body = serde_json::to_vec(&serde_json::json!({"Detach": false, "Tty": tty}))
            .map_err(|e| proto("encode", e))?;
        self.hijack(&format!("/exec/{exec_id}/start"), Some(body))
            .await
    }

    pub async fn exec_start_detached(&self, exec_id: &str) -> Result<()> {
        let body = serde_json::to_vec(&serde_json::json!({"Detach": true, "Tty": false}))
            .map_err(|e| proto("encode", e))?;
        self.call_bytes(Method::POST, &format!("/exec/{exec_id}/start"), Some(body))
            .await
            .map(|_| ())
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<serde_json::Value> {
        self.get(&format!("/exec/{exec_id}/json")).await
    }

    pub async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        self.post_empty(&format!("/exec/{exec_id}/resize?h={height}&w={width}"))
            .await
    }

    /// POST /images/load with `archive` streamed; returns the progress lines.
    pub async fn load(&self, archive: std::fs::File) -> Result<Vec<crate::types::StreamLine>> {
        let resp = self
            .post_stream("/images/load", ChannelBody::from_file(archive))
            .await?;
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| proto("read load response", e))?
            .to_bytes();
        Ok(bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .filter_map(|l| serde_json::from_slice(l).ok())
            .collect())
    }

    /// GET /images/get: a `docker save` archive of `names`, streamed.
    pub async fn save(&self, names: &[String]) -> Result<BodyReader> {
        let q: Vec<String> = names
            .iter()
            .map(|n| format!("names={}", percent_encode(n)))
            .collect();
        Ok(BodyReader::new(
            self.call(Method::GET, &format!("/images/get?{}", q.join("&")), None)
                .await?
                .into_body(),
        ))
    }

    /// GET /containers/{id}/logs: the raw (multiplexed unless tty) body.
    pub async fn logs(&self, id: &str, query: &str) -> Result<BodyReader> {
        Ok(BodyReader::new(
            self.call(
                Method::GET,
                &format!("/containers/{}/logs?{query}", percent_encode(id)),
                None,
            )
            .await?
            .into_body(),
        ))
    }
}

/// Turn error statuses into `ClientError::Api` with the daemon's message.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>> {
    let status = resp.status();
    if status.is_success()
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::SWITCHING_PROTOCOLS
    {
        return Ok(resp);
    }
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let message = serde_json::from_slice::<ErrorResponse>(&bytes)
        .map(|e| e.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_string());
    Err(ClientError::Api {
        status: status.as_u16(),
        message,
    })
}

/// A request body fed chunk by chunk through a channel (a file read on a helper thread, a tar
/// built on another thread, stdin).
struct ChannelBody {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
}

impl ChannelBody {
    fn from_file(mut f: std::fs::File) -> ChannelBody {
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let r = match f.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => Ok(Bytes::copy_from_slice(&buf[..n])),
                    Err(e) => Err(e),
                };
                let stop = r.is_err();
                if tx.blocking_send(r).is_err() || stop {
                    return;
                }
            }
        });
        ChannelBody { rx }
    }
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<hyper::body::Frame<Bytes>, std::io::Error>>>
    {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// A response body as an `AsyncRead` (logs, streams).
pub struct BodyReader {
    body: Incoming,
    buf: Bytes,
}

impl BodyReader {
    fn new(body: Incoming) -> BodyReader {
        BodyReader {
            body,
            buf: Bytes::new(),
        }
    }
}

impl tokio::io::AsyncRead for BodyReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use hyper::body::Body;
        use std::task::Poll;
        loop {
            if !self.buf.is_empty() {
                let n = out.remaining().min(self.buf.len());
                out.put_slice(&self.buf[..n]);
                self.buf = self.buf.slice(n..);
                return Poll::Ready(Ok(()));
            }
            match std::pin::Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::other(e.to_string())))
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf = data;
                    }
                }
            }
        }
    }
}
