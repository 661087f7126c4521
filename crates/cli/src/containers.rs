//! ps, stop, restart, kill, rm, wait, logs, inspect.

use berth_api::client::{Client, ClientError};
use berth_api::query::percent_encode;

use crate::args::{
    InspectArgs, KillArgs, LogsArgs, NamesArgs, PsArgs, RenameArgs, RmArgs, StatsArgs, StopArgs,
    TopArgs,
};
use crate::{format, stream};

/// Docker's `ps --format 'table …'` headers.
const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Size", "SIZE"),
    ("RunningFor", "CREATED"),
    ("Names", "NAMES"),
];

pub async fn ps(c: &Client, a: PsArgs) -> Result<i32, ClientError> {
    let mut path = format!("/containers/json?all={}", u8::from(a.all));
    // Docker: --latest is --last 1; either shows stopped containers too.
    let limit = if a.latest { Some(1) } else { a.last };
    if let Some(n) = limit.filter(|n| *n > 0) {
        path.push_str(&format!("&limit={n}"));
    }
    // Sizes cost a walk of every writable layer: only for -s or a template showing .Size.
    let size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    if size {
        path.push_str("&size=1");
    }
    if let Some(f) = crate::events::filters_json(&a.filter)? {
        path.push_str(&format!("&filters={}", percent_encode(&f)));
    }
    let list: Vec<berth_api::types::ContainerSummary> = c.get(&path).await?;
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
                "Ports": ports_column(&x.ports),
                "Names": x.names.iter().map(|n| n.trim_start_matches('/')).collect::<Vec<_>>().join(","),
                "Labels": x.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Size": size_column(x.size_rw, x.size_root_fs),
            })
        })
        .collect();
    if let Some(f) = &a.format {
        format::templated_with(f, &rows, PS_HEADERS)?;
        return Ok(0);
    }
    let mut cols = vec![
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let mut headers = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if size {
        cols.push("Size");
        headers.push("SIZE");
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|k| r[*k].as_str().unwrap_or("").to_string())
                .collect()
        })
        .collect();
    format::table(&headers, &cells);
    Ok(0)
}

/// docker ps's SIZE: "12.3kB (virtual 4.5MB)".
fn size_column(rw: Option<i64>, root: Option<i64>) -> String {
    match (rw, root) {
        (Some(rw), Some(root)) if root > 0 => format!(
            "{} (virtual {})",
            format::human_size(rw),
            format::human_size(root)
        ),
        (Some(rw), _) => format::human_size(rw),
        _ => String::new(),
    }
}

/// `0.0.0.0:8080->80/tcp, 443/tcp` like docker ps.
fn ports_column(ports: &[serde_json::Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let private = format!(
                "{}/{}",
                p["PrivatePort"],
                p["Type"].as_str().unwrap_or("tcp")
            );
            match p["PublicPort"].as_u64() {
                Some(public) => {
                    let ip = p["IP"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("0.0.0.0");
                    format!("{ip}:{public}->{private}")
                }
                None => private,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    each(&a.containers, |n| async move {
        c.call_bytes(
            berth_api::client::Method::DELETE,
            &format!(
                "/containers/{}?force={}&v={}",
                percent_encode(&n),
                u8::from(a.force),
                u8::from(a.volumes)
            ),
            None,
        )
        .await
        .map(|_| ())
    })
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
        "stdout=1&stderr=1&follow={}&timestamps={}&details={}&tail={}",
        u8::from(a.follow),
        u8::from(a.timestamps),
        u8::from(a.details),
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
                println!("{}", format::render(f, v)?);
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
        ),
    }
    Ok(code)
}

pub async fn pause(c: &Client, a: NamesArgs, pause: bool) -> Result<i32, ClientError> {
    let verb = if pause { "pause" } else { "unpause" };
    each(&a.containers, |n| async move {
        c.post_empty(&format!("/containers/{}/{verb}", percent_encode(&n)))
            .await
    })
    .await
}

pub async fn rename(c: &Client, a: RenameArgs) -> Result<i32, ClientError> {
    c.post_empty(&format!(
        "/containers/{}/rename?name={}",
        percent_encode(&a.container),
        percent_encode(&a.new_name)
    ))
    .await?;
    Ok(0)
}

pub async fn top(c: &Client, a: TopArgs) -> Result<i32, ClientError> {
    let t: serde_json::Value = c
        .get(&format!("/containers/{}/top", percent_encode(&a.container)))
        .await?;
    let titles: Vec<&str> = t["Titles"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = t["Processes"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    p.as_array()
                        .map(|cells| {
                            cells
                                .iter()
                                .map(|c| c.as_str().unwrap_or("").to_string())
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    format::table(&titles, &rows);
    Ok(0)
}

fn stats_row(name: &str, s: &serde_json::Value) -> Vec<String> {
    let cpu = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let ncpu = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    let cpu_pct = if sys > 0.0 && cpu > 0.0 {
        cpu / sys * ncpu * 100.0
    } else {
        0.0
    };
    let usage = s["memory_stats"]["usage"].as_i64().unwrap_or(0)
        - s["memory_stats"]["stats"]["total_inactive_file"]
            .as_i64()
            .unwrap_or(0);
    let limit = s["memory_stats"]["limit"].as_i64().unwrap_or(0);
    vec![
        format::short_id(s["id"].as_str().unwrap_or("")),
        name.to_string(),
        format!("{cpu_pct:.2}%"),
        format!(
            "{} / {}",
            format::human_binary(usage),
            format::human_binary(limit)
        ),
        format!(
            "{:.2}%",
            if limit > 0 {
                usage as f64 / limit as f64 * 100.0
            } else {
                0.0
            }
        ),
        s["pids_stats"]["current"].to_string(),
    ]
}

pub async fn stats(c: &Client, a: StatsArgs) -> Result<i32, ClientError> {
    let names: Vec<String> = if a.containers.is_empty() {
        c.containers(a.all)
            .await?
            .into_iter()
            .filter_map(|x| {
                x.names
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
            })
            .collect()
    } else {
        a.containers.clone()
    };
    loop {
        let mut rows = Vec::new();
        for n in &names {
            let s: serde_json::Value = c
                .get(&format!("/containers/{}/stats?stream=0", percent_encode(n)))
                .await?;
            rows.push(stats_row(n, &s));
        }
        if let Some(f) = &a.format {
            let rows: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    let cell = |i: usize| r.get(i).cloned().unwrap_or_default();
                    serde_json::json!({"ID": cell(0), "Container": cell(1), "Name": cell(1),
                        "CPUPerc": cell(2), "MemUsage": cell(3), "MemPerc": cell(4), "PIDs": cell(5)})
                })
                .collect();
            format::templated_with(
                f,
                &rows,
                &[
                    ("ID", "CONTAINER ID"),
                    ("CPUPerc", "CPU %"),
                    ("MemUsage", "MEM USAGE / LIMIT"),
                    ("MemPerc", "MEM %"),
                    ("PIDs", "PIDS"),
                ],
            )?;
        } else {
            format::table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "CPU %",
                    "MEM USAGE / LIMIT",
                    "MEM %",
                    "PIDS",
                ],
                &rows,
            );
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}
