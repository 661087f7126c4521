//! /images/…

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::{error, Ctx};
use crate::types::{ImageSummary, StreamLine};

pub async fn load(ctx: Ctx) -> Response<Body> {
    let reader = body::reader(ctx.req.into_body());
    let lines = match ctx.engine.load_images(Box::new(reader)).await {
        Ok(l) => l,
        Err(e) => {
            // Docker reports load failures in the stream with status 200 only after it began;
            // nothing was sent yet, so a plain error status is clearer.
            return error::response(&e);
        }
    };
    let mut out = Vec::new();
    for l in lines {
        let line = StreamLine {
            stream: Some(format!("{l}\n")),
            ..StreamLine::default()
        };
        out.extend_from_slice(&serde_json::to_vec(&line).unwrap_or_default());
        out.push(b'\n');
    }
    let mut r = Response::new(http_body_util::Full::new(Bytes::from(out)).boxed());
    r.headers_mut().insert(
        "Content-Type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

pub fn list(ctx: &Ctx) -> Response<Body> {
    let filters = match super::containers::Filters::parse_for(
        ctx.query.get("filters"),
        &["dangling", "reference", "label", "before", "since"],
    ) {
        Ok(f) => f,
        Err(m) => return body::error(StatusCode::BAD_REQUEST, m),
    };
    let v = match ctx.engine.list_images() {
        Ok(v) => v,
        Err(e) => return error::response(&e),
    };
    let filter = match ImageFilter::new(&filters, |name| {
        ctx.engine.inspect_image(name).map(|d| d.summary.created)
    }) {
        Ok(f) => f,
        Err(e) => return error::response(&e),
    };
    let out: Vec<ImageSummary> = v
        .into_iter()
        .filter_map(|i| filter.apply(i))
        .map(|i| ImageSummary {
            repo_digests: ctx.engine.repo_digests(&i.id),
            id: i.id,
            parent_id: String::new(),
            repo_tags: i.repo_tags,
            created: i.created,
            size: i.size,
            shared_size: -1,
            labels: i.labels,
            containers: -1,
        })
        .collect();
    body::json(StatusCode::OK, &out)
}

/// GET /images/json's filters: dangling, reference (globs), label, before and since.
struct ImageFilter<'a> {
    dangling: Option<bool>,
    references: &'a [String],
    labels: &'a [String],
    before: Option<i64>,
    since: Option<i64>,
}

impl<'a> ImageFilter<'a> {
    fn new(
        f: &'a super::containers::Filters,
        created_of: impl Fn(&str) -> berth_engine::Result<i64>,
    ) -> berth_engine::Result<ImageFilter<'a>> {
        let dangling = match f.get("dangling") {
            [] => None,
            [v, ..] => match v.as_str() {
                "true" | "1" => Some(true),
                "false" | "0" => Some(false),
                _ => {
                    return Err(berth_engine::Error::InvalidParameter(format!(
                        "Invalid filter 'dangling={v}'"
                    )))
                }
            },
        };
        let time = |key: &str| -> berth_engine::Result<Option<i64>> {
            f.get(key).first().map(|name| created_of(name)).transpose()
        };
        Ok(ImageFilter {
            dangling,
            references: f.get("reference"),
            labels: f.get("label"),
            before: time("before")?,
            since: time("since")?,
        })
    }

    /// The image if it passes, its RepoTags cut to those a reference filter matched.
    fn apply(
        &self,
        mut i: berth_engine::images::ImageSummary,
    ) -> Option<berth_engine::images::ImageSummary> {
        let dangling = i.repo_tags.is_empty();
        if self.dangling.is_some_and(|d| d != dangling) {
            return None;
        }
        if self.before.is_some_and(|t| i.created >= t) || self.since.is_some_and(|t| i.created <= t)
        {
            return None;
        }
        let labelled = self.labels.iter().all(|l| match l.split_once('=') {
            Some((k, v)) => i.labels.get(k).is_some_and(|x| x == v),
            None => i.labels.contains_key(l.as_str()),
        });
        if !labelled {
            return None;
        }
        if !self.references.is_empty() {
            i.repo_tags
                .retain(|t| self.references.iter().any(|p| reference_matches(p, t)));
            if i.repo_tags.is_empty() {
                return None;
            }
        }
        Some(i)
    }
}

/// Docker's reference filter: the glob against "name:tag", or against the name alone.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    let name = match tag.rfind(':') {
        Some(i) if !tag[i..].contains('/') => &tag[..i],
        _ => tag,
    };
    glob(pattern.as_bytes(), tag.as_bytes()) || glob(pattern.as_bytes(), name.as_bytes())
}

/// path.Match's globs: `*` and `?` stop at '/', `[a-z]` classes, `\\` escapes.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len())
            .take_while(|&n| n == 0 || s[n - 1] != b'/')
            .any(|n| glob(rest, &s[n..])),
        Some((b'?', rest)) => s.first().is_some_and(|c| *c != b'/') && glob(rest, &s[1..]),
        Some((b'[', rest)) => {
            let Some(end) = rest.iter().position(|c| *c == b']') else {
                return false;
            };
            let (class, rest) = (&rest[..end], &rest[end + 1..]);
            let (negate, class) = match class.split_first() {
                Some((b'^', c)) => (true, c),
                _ => (false, class),
            };
            let Some(c) = s.first() else {
                return false;
            };
            let mut hit = false;
            let mut k = 0;
            while k < class.len() {
                if k + 2 < class.len() && class[k + 1] == b'-' {
                    hit |= class[k] <= *c && *c <= class[k + 2];
                    k += 3;
                } else {
                    hit |= class[k] == *c;
                    k += 1;
                }
            }
            hit != negate && glob(rest, &s[1..])
        }
        Some((b'\\', rest)) if !rest.is_empty() => {
            s.first() == Some(&rest[0]) && glob(&rest[1..], &s[1..])
        }
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

pub fn inspect(ctx: &Ctx, name: &str) -> Response<Body> {
    let d = match ctx.engine.inspect_image(name) {
        Ok(d) => d,
        Err(e) => return error::response(&e),
    };
    let c = d.config.config().clone().unwrap_or_default();
    body::json(
        StatusCode::OK,
        &json!({
            "Id": d.summary.id,
            "RepoTags": d.summary.repo_tags,
            "RepoDigests": ctx.engine.repo_digests(&d.summary.id),
            "Parent": "",
            "Comment": "",
            "Created": d.created,
            "DockerVersion": "",
            "Author": d.config.author(),
            "Config": {
                "User": c.user().clone().unwrap_or_default(),
                "Env": c.env(),
                "Cmd": c.cmd(),
                "Entrypoint": c.entrypoint(),
                "WorkingDir": c.working_dir().clone().unwrap_or_default(),
                "Labels": c.labels(),
                "StopSignal": c.stop_signal(),
                "ExposedPorts": c.exposed_ports(),
                "Volumes": c.volumes(),
            },
            "Architecture": d.config.architecture().to_string(),
            "Os": d.config.os().to_string(),
            "Size": d.summary.size,
            "GraphDriver": {"Name": "overlay2", "Data": {}},
            "RootFS": {"Type": "layers", "Layers": d.diff_ids},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
            "Descriptor": {"digest": d.manifest_digest},
        }),
    )
}

pub fn tag(ctx: &Ctx, name: &str) -> Response<Body> {
    let Some(repo) = ctx.query.get("repo").filter(|r| !r.is_empty()) else {
        return body::error(StatusCode::BAD_REQUEST, "repo is required");
    };
    let target = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    match ctx.engine.tag_image(name, &target) {
        Ok(()) => body::empty(StatusCode::CREATED),
        Err(e) => error::response(&e),
    }
}

pub fn remove(ctx: &Ctx, name: &str) -> Response<Body> {
    match ctx
        .engine
        .remove_image(name, ctx.query.flag("force", false))
    {
        Ok(report) => {
            let out: Vec<serde_json::Value> =
                report.into_iter().map(|(k, v)| json!({ k: v })).collect();
            body::json(StatusCode::OK, &out)
        }
        Err(e) => error::response(&e),
    }
}

/// GET /images/get?names=a&names=b and GET /images/{name}/get.
pub fn save(ctx: &Ctx, names: Vec<String>) -> Response<Body> {
    if names.is_empty() {
        return body::error(StatusCode::BAD_REQUEST, "no image names given");
    }
    let (tx, b) = body::channel();
    let writer = body::ChannelWriter::new(tx);
    let oci = ctx.query.get("format") == Some("oci");
    match ctx.engine.save_images(&names, oci, Box::new(writer)) {
        Ok(job) => {
            tokio::spawn(async move {
                if let Ok(Err(e)) = job.await {
                    tracing::warn!("{e}");
                }
            });
            let mut r = Response::new(b);
            r.headers_mut().insert(
                "Content-Type",
                hyper::header::HeaderValue::from_static("application/x-tar"),
            );
            r
        }
        Err(e) => error::response(&e),
    }
}

/// POST /images/prune?filters={"dangling":["false"]}: false means every unused image.
pub fn prune(ctx: &Ctx) -> Response<Body> {
    let all = ctx
        .query
        .get("filters")
        .and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok())
        .map(|v| {
            let d = &v["dangling"];
            d.as_array()
                .is_some_and(|a| a.iter().any(|x| x == "false" || x == "0"))
                || d.get("false").is_some()
                || d.get("0").is_some()
        })
        .unwrap_or(false);
    match ctx.engine.prune_images(all) {
        Ok((ids, freed)) => body::json(
            StatusCode::OK,
            &json!({
                "ImagesDeleted": ids.iter().map(|i| json!({"Deleted": i})).collect::<Vec<_>>(),
                "SpaceReclaimed": freed,
            }),
        ),
        Err(e) => error::response(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_match_like_docker() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busybox:latest", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:1.36"));
        assert!(reference_matches("*:1.*", "busybox:1.36"));
        assert!(!reference_matches("busybox:1.35", "busybox:1.36"));
        assert!(!reference_matches("*", "team/app:1"), "* stops at /");
        assert!(reference_matches("*/*", "team/app:1"));
        assert!(reference_matches("team/ap[a-p]", "team/app:1"));
        assert!(reference_matches(
            "localhost:5000/app",
            "localhost:5000/app:v1"
        ));
        assert!(!reference_matches("app", "localhost:5000/app:v1"));
    }
}
