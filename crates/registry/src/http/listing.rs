//! Listings: tags (paginated), the catalog (paginated), referrers (filterable); and `/token`.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Method, StatusCode};

use super::blobs::parse_digest;
use super::body::read_limited;
use super::{blocking, body, json, query, Ctx, Response, State};
use crate::api_error::{ApiError, Code};
use berth_image::media::OCI_INDEX;

/// The page of `items` (sorted) after `last`, at most `n` long; and whether more follow.
fn paginate(
    items: Vec<String>,
    n: Option<&str>,
    last: Option<&str>,
) -> Result<(Vec<String>, bool), ApiError> {
    let n = match n {
        None => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(Code::PaginationNumberInvalid, format!("invalid n {s:?}"))
        })?),
    };
    let mut rest: Vec<String> = match last {
        Some(l) => items.into_iter().filter(|i| i.as_str() > l).collect(),
        None => items,
    };
    let more = n.is_some_and(|n| rest.len() > n);
    if let Some(n) = n {
        rest.truncate(n);
    }
    Ok((rest, more))
}

fn page_response(body: serde_json::Value, next: Option<String>) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    let mut resp = json(StatusCode::OK, bytes, false);
    if let Some(link) = next {
        let v = hyper::header::HeaderValue::from_str(&link).map_err(ApiError::internal)?;
        resp.headers_mut().insert(hyper::header::LINK, v);
    }
    Ok(resp)
}

fn next_link(path: &str, n: Option<&str>, page: &[String], more: bool) -> Option<String> {
    let (n, last) = (n?, page.last()?);
    more.then(|| format!("<{path}?n={n}&last={}>; rel=\"next\"", query::encode(last)))
}

pub(super) async fn tags(state: &Arc<State>, ctx: &Ctx, name: &str) -> Result<Response, ApiError> {
    let st = state.clone();
    let repo = name.to_string();
    let tags = blocking(move || {
        if !st.storage.repo_exists(&repo) {
            return Err(ApiError::new(
                Code::NameUnknown,
                format!("repository {repo} unknown"),
            ));
        }
        Ok(st.storage.tags(&repo)?)
    })
    .await?;
    let n = ctx.query("n");
    let (page, more) = paginate(tags, n, ctx.query("last"))?;
    let next = next_link(&format!("/v2/{name}/tags/list"), n, &page, more);
    page_response(serde_json::json!({"name": name, "tags": page}), next)
}

pub(super) async fn catalog(state: &Arc<State>, ctx: &Ctx) -> Result<Response, ApiError> {
    let st = state.clone();
    let repos = blocking(move || Ok(st.storage.repositories()?)).await?;
    let n = ctx.query("n");
    let (page, more) = paginate(repos, n, ctx.query("last"))?;
    let next = next_link("/v2/_catalog", n, &page, more);
    page_response(serde_json::json!({"repositories": page}), next)
}

pub(super) async fn referrers(
    state: &Arc<State>,
    ctx: &Ctx,
    name: &str,
    digest: &str,
) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let st = state.clone();
    let repo = name.to_string();
    let mut list = blocking(move || Ok(st.storage.referrers(&repo, &subject)?)).await?;
    let filter = ctx.query("artifactType").filter(|f| !f.is_empty());
    if let Some(f) = filter {
        list.retain(|d| d["artifactType"] == f);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": list,
    });
    let bytes = serde_json::to_vec(&index).map_err(ApiError::internal)?;
    let mut b = hyper::Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, OCI_INDEX)
        .header(CONTENT_LENGTH, bytes.len());
    if filter.is_some() {
        b = b.header("OCI-Filters-Applied", "artifactType");
    }
    b.body(body::full(bytes)).map_err(ApiError::internal)
}

/// `GET /token?service=..&scope=..` (Docker) or `POST /token` with an OAuth2 form.
pub(super) async fn token(
    state: &Arc<State>,
    method: &Method,
    headers: &HeaderMap,
    mut params: Vec<(String, String)>,
    body: Incoming,
) -> Result<Response, ApiError> {
    match *method {
        Method::GET => {}
        Method::POST => {
            let form = read_limited(body, 64 << 10).await.map_err(|_| {
                ApiError::new(Code::Unsupported, "bad token request body")
                    .with_status(StatusCode::BAD_REQUEST)
            })?;
            params.extend(query::parse(&String::from_utf8_lossy(&form)));
        }
        _ => return Err(ApiError::new(Code::Unsupported, "use GET or POST")),
    }
    let answer = state.auth.issue_token(headers, &params).await?;
    let bytes = serde_json::to_vec(&answer).map_err(ApiError::internal)?;
    Ok(json(StatusCode::OK, bytes, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pages() {
        let all = v(&["a", "b", "c", "d"]);
        let (p, more) = paginate(all.clone(), Some("2"), None).unwrap();
        assert_eq!((p, more), (v(&["a", "b"]), true));
        let (p, more) = paginate(all.clone(), Some("2"), Some("b")).unwrap();
        assert_eq!((p, more), (v(&["c", "d"]), false));
        let (p, more) = paginate(all.clone(), None, Some("c")).unwrap();
        assert_eq!((p, more), (v(&["d"]), false));
        let (p, _) = paginate(all.clone(), Some("0"), None).unwrap();
        assert!(p.is_empty());
        assert!(paginate(all, Some("x"), None).is_err());
        assert_eq!(
            next_link("/v2/x/tags/list", Some("2"), &v(&["a", "b"]), true).unwrap(),
            "</v2/x/tags/list?n=2&last=b>; rel=\"next\""
        );
    }
}
