//! GET /events: Docker's event stream, one JSON message per line.

use hyper::Method;

use super::{BodyReader, Client, Result};

impl Client {
    /// The raw event stream for `query` (since, until, filters — already encoded).
    pub async fn events(&self, query: &str) -> Result<BodyReader> {
        let path = if query.is_empty() {
            "/events".to_string()
        } else {
            format!("/events?{query}")
        };
        let resp = self.call(Method::GET, &path, None).await?;
        Ok(BodyReader::new(resp.into_body()))
    }
}
