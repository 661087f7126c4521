//! ps, stop, restart, kill, rm, wait, logs, inspect.

use berth_api::client::{Client, ClientError};
use berth_api::query::percent_encode;

use crate::args::{InspectArgs, KillArgs, LogsArgs, NamesArgs, PsArgs, RmArgs, StopArgs};
use crate::{format, stream};

pub async fn ps(c: &Client, a: PsArgs) -> Result<i32, ClientError> {
    let list = c.containers(a.all).await?;
    if a.quiet {
        for x in &list {
            println!(
                "{}",
                if a.no_trunc {
                    x.id.clone()
                } else {
                    format::short_id(&x.id)
                }
            );
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|x| {
            let mut cmd = x.command.clone();
            if !a.no_trunc && cmd.chars().count() > 20 {
                cmd = cmd.chars().take(19).collect::<String>() + "…";
            }
            serde_json::json!({
                "ID": if a.no_trunc { x.id.clone() } else { format::short_id(&x.id) },
                "Image": x.image,
                "Command": format!("\"{cmd}\""),
                "CreatedAt": x.created,
                "RunningFor": format::ago(x.created),
                "Status": x.status,
                "State": x.state,
                "Ports": "",
                "Names": x.names.iter().map(|n| n.trim_start_matches('/')).collect::<Vec<_>>().join(","),
                "Labels": x.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            })
        })
        .collect();
    if let Some(f) = &a.format {
        format::templated(f, &rows);
        return Ok(0);
    }
    let cols = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|k| r[*k].as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    format::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ],
        &cells,
    );
    Ok(0)
}

/// Run `f` on each name, printing the name on success and the error otherwise (docker's way).
async fn each<F, Fut>(names: &[String], f: F) -> Result<i32, ClientError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e @ ClientError::Connect { .. }) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn stop(c: &Client, a: StopArgs) -> Result<i32, ClientError> {
    each(&a.containers, |n| async move { c.stop(&n, a.time).await }).await
}

pub async fn restart(c: &Client, a: StopArgs) -> Result<i32, ClientError> {
    each(
        &a.containers,
        |n| async move { c.restart(&n, a.time).await },
    )
    .await
}

pub async fn kill(c: &Client, a: KillArgs) -> Result<i32, ClientError> {
    let sig = a.signal.clone();
    each(&a.containers, |n| {
        let sig = sig.clone();
        async move { c.kill(&n, &sig).await }
    })
    .await
}

pub async fn rm(c: &Client, a: RmArgs) -> Result<i32, ClientError> {
    each(
        &a.containers,
        |n| async move { c.remove(&n, a.force).await },
    )
    .await
}

pub async fn wait(c: &Client, a: NamesArgs) -> Result<i32, ClientError> {
    let mut code = 0;
    for n in &a.containers {
        match c.wait(n, "not-running").await {
            Ok(f) => println!("{}", f.await?),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub async fn logs(c: &Client, a: LogsArgs) -> Result<i32, ClientError> {
    let info = c.inspect_container(&a.container).await?;
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let mut q = format!(
        "stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
        u8::from(a.follow),
        u8::from(a.timestamps),
        percent_encode(&a.tail)
    );
    if let Some(s) = &a.since {
        q.push_str(&format!("&since={}", percent_encode(s)));
    }
    if let Some(u) = &a.until {
        q.push_str(&format!("&until={}", percent_encode(u)));
    }
    let body = c.logs(&a.container, &q).await?;
    stream::demux(body, tty)
        .await
        .map_err(|e| ClientError::Protocol(format!("read logs: {e}")))?;
    Ok(0)
}

pub async fn inspect(c: &Client, a: InspectArgs) -> Result<i32, ClientError> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in &a.names {
        let r = match a.kind.as_deref() {
            Some("image") => c.inspect_image(n).await,
            Some("container") => c.inspect_container(n).await,
            _ => match c.inspect_container(n).await {
                Err(ClientError::Api { status: 404, .. }) => {
                    c.inspect_image(n).await.map_err(|_| ClientError::Api {
                        status: 404,
                        message: format!("No such object: {n}"),
                    })
                }
                r => r,
            },
        };
        match r {
            Ok(v) => out.push(v),
            Err(e @ ClientError::Connect { .. }) => return Err(e),
            Err(e) => {
                eprintln!("{e}");
                code = 1;
            }
        }
    }
    match &a.format {
        Some(f) => {
            for v in &out {
                println!("{}", format::render(f, v));
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
        ),
    }
    Ok(code)
}
