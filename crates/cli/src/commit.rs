//! Images from containers and tarballs: commit, import, export, diff, history.

use berth_api::client::{Client, ClientError, CommitRequest};
use clap::Args;

use crate::format;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long, default_value = "")]
    pub author: String,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message.
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, require_equals = true, num_args = 0..=1, default_missing_value = "true")]
    pub pause: bool,
    pub container: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long, default_value = "")]
    pub message: String,
    /// A tarball file, or "-" for STDIN.
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    pub output: Option<String>,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub container: String,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format (`--human=false` for raw numbers; no -H,
    /// which names the daemon here).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, require_equals = true, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a Go-like template ({{.ID}}, {{.CreatedBy}}, {{.Comment}}, …).
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

pub async fn commit(c: &Client, a: CommitArgs) -> Result<i32, ClientError> {
    let id = c
        .commit(&CommitRequest {
            container: a.container,
            reference: a.reference,
            comment: a.message,
            author: a.author,
            pause: a.pause,
            changes: a.change,
        })
        .await?;
    println!("{id}");
    Ok(0)
}

pub async fn import(c: &Client, a: ImportArgs) -> Result<i32, ClientError> {
    let io = |e: std::io::Error| ClientError::Protocol(format!("open {}: {e}", a.file));
    let source = if a.file == "-" {
        use std::os::fd::AsFd;
        let fd = std::io::stdin().as_fd().try_clone_to_owned().map_err(io)?;
        std::fs::File::from(fd)
    } else if a.file.contains("://") {
        return Err(ClientError::Protocol(format!(
            "{}: importing from a URL is not supported; download it and import the file",
            a.file
        )));
    } else {
        std::fs::File::open(&a.file).map_err(io)?
    };
    let lines = c
        .import(source, a.reference.as_deref(), &a.message, &a.change)
        .await?;
    for l in lines {
        if let Some(e) = l["error"].as_str() {
            eprintln!("{e}");
            return Ok(1);
        }
        if let Some(s) = l["status"].as_str() {
            println!("{s}");
        }
    }
    Ok(0)
}

pub async fn export(c: &Client, a: ExportArgs) -> Result<i32, ClientError> {
    let body = c.export(&a.container).await?;
    crate::stream::write_out(body, a.output.as_deref(), "export").await?;
    Ok(0)
}

pub async fn diff(c: &Client, a: DiffArgs) -> Result<i32, ClientError> {
    for ch in c.changes(&a.container).await? {
        let kind = match ch.kind {
            0 => "C",
            1 => "A",
            _ => "D",
        };
        println!("{kind} {}", ch.path);
    }
    Ok(0)
}

/// Docker truncates CREATED BY to 45 characters ("…" included) unless --no-trunc.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

pub async fn history(c: &Client, a: HistoryArgs) -> Result<i32, ClientError> {
    let entries = c.history(&a.image).await?;
    let rows: Vec<serde_json::Value> = entries
        .iter()
        .map(|h| {
            let id = if a.no_trunc || h.id == "<missing>" {
                h.id.clone()
            } else {
                format::short_id(&h.id)
            };
            let created_by = if a.no_trunc {
                h.created_by.clone()
            } else {
                truncate(&h.created_by, 45)
            };
            let (created, size) = if a.human {
                (format::ago(h.created), format::human_size(h.size))
            } else {
                (h.created.to_string(), h.size.to_string())
            };
            serde_json::json!({
                "ID": id, "CreatedSince": created, "CreatedAt": created,
                "CreatedBy": created_by, "Size": size, "Comment": h.comment,
            })
        })
        .collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
    } else if let Some(f) = &a.format {
        format::templated_with(
            f,
            &rows,
            &[
                ("ID", "IMAGE"),
                ("CreatedSince", "CREATED"),
                ("CreatedAt", "CREATED AT"),
                ("CreatedBy", "CREATED BY"),
            ],
        )?;
    } else {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .collect();
        format::table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &cells,
        );
    }
    Ok(0)
}
