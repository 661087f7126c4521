//! Client calls for `cp`: HEAD/GET/PUT /containers/{id}/archive. A tar travels in the body; the
//! path's stat travels base64-encoded in `X-Docker-Container-Path-Stat`.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;

use super::{check, percent_encode, BodyReader, ChannelBody, Client, ClientError, Result};

pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn archive_path(id: &str, path: &str) -> String {
    format!(
        "/containers/{}/archive?path={}",
        percent_encode(id),
        percent_encode(path)
    )
}

fn stat_header(resp: &hyper::Response<hyper::body::Incoming>) -> Option<String> {
    resp.headers()
        .get(PATH_STAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    /// HEAD: the raw (base64 JSON) stat of `path` in the container.
    pub async fn archive_stat(&self, id: &str, path: &str) -> Result<String> {
        let resp = self
            .call(Method::HEAD, &archive_path(id, path), None)
            .await?;
        stat_header(&resp)
            .ok_or_else(|| ClientError::Protocol(format!("{path}: the daemon sent no path stat")))
    }

    /// GET: a tar of `path` (rooted at its last component) and the raw stat header.
    pub async fn archive_get(&self, id: &str, path: &str) -> Result<(Option<String>, BodyReader)> {
        let resp = self
            .call(Method::GET, &archive_path(id, path), None)
            .await?;
        let stat = stat_header(&resp);
        Ok((stat, BodyReader::new(resp.into_body())))
    }

    /// PUT: extract the tar read from `chunks` into the container directory `dir`.
    pub async fn archive_put(
        &self,
        id: &str,
        dir: &str,
        copy_uid_gid: bool,
        chunks: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    ) -> Result<()> {
        let mut path = archive_path(id, dir);
        if copy_uid_gid {
            path.push_str("&copyUIDGID=1");
        }
        let body = ChannelBody { rx: chunks };
        let mut req = Self::build(Method::PUT, &path, body.boxed(), false)?;
        req.headers_mut().insert(
            "Content-Type",
            hyper::header::HeaderValue::from_static("application/x-tar"),
        );
        check(self.send(req).await?).await.map(|_| ())
    }
}
