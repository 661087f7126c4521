//! images, load.

use berth_api::client::{Client, ClientError};

use crate::args::{ImagesArgs, LoadArgs, RmiArgs, SaveArgs, TagArgs};
use crate::format;

fn split_tag(t: &str) -> (String, String) {
    match t.rfind(':') {
        Some(i) if !t[i..].contains('/') => (t[..i].to_string(), t[i + 1..].to_string()),
        _ => (t.to_string(), "latest".to_string()),
    }
}

pub async fn list(c: &Client, a: ImagesArgs) -> Result<i32, ClientError> {
    let images: Vec<berth_api::types::ImageSummary> = match crate::events::filters_json(&a.filter)?
    {
        Some(f) => {
            c.get(&format!(
                "/images/json?filters={}",
                berth_api::query::percent_encode(&f)
            ))
            .await?
        }
        None => c.images().await?,
    };
    let mut rows = Vec::new();
    for i in &images {
        let id = if a.no_trunc {
            i.id.clone()
        } else {
            format::short_id(&i.id)
        };
        let tags = if i.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            i.repo_tags.clone()
        };
        for t in tags {
            let (repo, tag) = split_tag(&t);
            rows.push(serde_json::json!({
                "Repository": repo, "Tag": tag, "ID": id,
                "CreatedSince": format::ago(i.created), "Size": format::human_size(i.size),
            }));
        }
    }
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
    } else if let Some(f) = &a.format {
        format::templated_with(f, &rows, &[("ID", "IMAGE ID"), ("CreatedSince", "CREATED")])?;
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["Repository", "Tag", "ID", "CreatedSince", "Size"]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        format::table(
            &["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
            &cells,
        );
    }
    Ok(0)
}

pub async fn load(c: &Client, a: LoadArgs) -> Result<i32, ClientError> {
    let f = match &a.input {
        Some(p) => {
            std::fs::File::open(p).map_err(|e| ClientError::Protocol(format!("open {p}: {e}")))?
        }
        None => {
            // SAFETY: fd 0 stays open for the life of the process; we own this duplicate.
            let fd = unsafe { libc::dup(0) };
            if fd < 0 {
                return Err(ClientError::Protocol("read stdin".into()));
            }
            use std::os::fd::FromRawFd;
            // SAFETY: fd is a fresh descriptor from dup.
            unsafe { std::fs::File::from_raw_fd(fd) }
        }
    };
    let mut failed = false;
    for l in c.load(f).await? {
        if let Some(s) = l.stream {
            if !a.quiet {
                print!("{s}");
            }
        }
        if let Some(e) = l.error {
            eprintln!("{e}");
            failed = true;
        }
    }
    Ok(i32::from(failed))
}

pub async fn tag(c: &Client, a: TagArgs) -> Result<i32, ClientError> {
    let (repo, tag) = split_tag(&a.target);
    c.post_empty(&format!(
        "/images/{}/tag?repo={}&tag={}",
        a.source,
        berth_api::query::percent_encode(&repo),
        berth_api::query::percent_encode(&tag)
    ))
    .await?;
    Ok(0)
}

pub async fn rmi(c: &Client, a: RmiArgs) -> Result<i32, ClientError> {
    let mut code = 0;
    for i in &a.images {
        let r = c
            .call_bytes(
                berth_api::client::Method::DELETE,
                &format!("/images/{i}?force={}", u8::from(a.force)),
                None,
            )
            .await;
        match r {
            Ok(bytes) => {
                let lines: Vec<std::collections::BTreeMap<String, String>> =
                    serde_json::from_slice(&bytes).unwrap_or_default();
                for l in lines {
                    for (k, v) in l {
                        println!("{k}: {v}");
                    }
                }
            }
            Err(e @ ClientError::Connect { .. }) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn save(c: &Client, a: SaveArgs) -> Result<i32, ClientError> {
    let body = c.save(&a.images).await?;
    crate::stream::write_out(body, a.output.as_deref(), "archive").await?;
    Ok(0)
}
