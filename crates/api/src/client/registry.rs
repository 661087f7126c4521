//! Client calls for registries: pull and push (streams of Docker's JSON progress messages),
//! and the daemon-side login check. Credentials travel as Docker's `X-Registry-Auth` header.

use hyper::Method;

use super::{check, percent_encode, BodyReader, Client, Result};

/// Docker's header carrying a registry credential (base64url of an AuthConfig JSON).
pub const REGISTRY_AUTH_HEADER: &str = "X-Registry-Auth";

impl Client {
    /// Send with an optional `X-Registry-Auth`; error statuses become `ClientError::Api`.
    async fn call_with_auth(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        registry_auth: Option<&str>,
    ) -> Result<BodyReader> {
        let json = body.is_some();
        let mut req = Self::build(method, path, Self::full(body.unwrap_or_default()), json)?;
        if let Some(a) = registry_auth {
            let v = hyper::header::HeaderValue::from_str(a).map_err(|e| {
                super::ClientError::Protocol(format!("{REGISTRY_AUTH_HEADER}: {e}"))
            })?;
            req.headers_mut().insert(REGISTRY_AUTH_HEADER, v);
        }
        let resp = check(self.send(req).await?).await?;
        Ok(BodyReader::new(resp.into_body()))
    }

    /// `POST /images/create?fromImage=&tag=&platform=`: the progress stream.
    pub async fn pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<BodyReader> {
        let mut path = format!("/images/create?fromImage={}", percent_encode(from_image));
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", percent_encode(t)));
        }
        if let Some(p) = platform {
            path.push_str(&format!("&platform={}", percent_encode(p)));
        }
        self.call_with_auth(Method::POST, &path, None, registry_auth)
            .await
    }

    /// `POST /images/{name}/push?tag=`: the progress stream.
    pub async fn push(
        &self,
        name: &str,
        tag: Option<&str>,
        registry_auth: Option<&str>,
    ) -> Result<BodyReader> {
        let mut path = format!("/images/{name}/push");
        if let Some(t) = tag {
            path.push_str(&format!("?tag={}", percent_encode(t)));
        }
        self.call_with_auth(Method::POST, &path, None, registry_auth)
            .await
    }

    /// `POST /auth`: have the daemon check a login with the registry.
    pub async fn registry_login(
        &self,
        username: &str,
        password: &str,
        server_address: &str,
    ) -> Result<serde_json::Value> {
        let body = serde_json::json!({
            "username": username,
            "password": password,
            "serveraddress": server_address,
        });
        self.post("/auth", &body).await
    }
}
