//! version, info, and `system df|prune|info|events`.

use berth_api::client::{Client, ClientError};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::format;
use crate::manage::{confirm, prune_containers, prune_images};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCommand {
    /// Show disk usage (images, containers, volumes).
    Df(DfArgs),
    /// Remove unused data (stopped containers, unused networks, dangling images).
    Prune(SystemPruneArgs),
    /// Display system-wide information.
    Info(InfoArgs),
    /// Get real time events from the server.
    Events(crate::events::EventsArgs),
}

#[derive(Args, Debug, Default)]
pub struct InfoArgs {
    /// Format output using a template ('{{json .}}', '{{.ServerVersion}}').
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage.
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output using a template ('{{json .}}', 'table {{.Type}}\t{{.Size}}').
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Prune anonymous volumes.
    #[arg(long)]
    pub volumes: bool,
}

pub async fn system(c: &Client, cmd: SystemCommand) -> Result<i32, ClientError> {
    match cmd {
        SystemCommand::Df(a) => df(c, a).await,
        SystemCommand::Prune(a) => prune(c, a).await,
        SystemCommand::Info(a) => info(c, a).await,
        SystemCommand::Events(a) => crate::events::events(c, a).await,
    }
}

#[derive(Args, Debug, Default)]
pub struct VersionArgs {
    /// Format output using a template ('{{.Server.Version}}', '{{json .}}').
    #[arg(short, long)]
    pub format: Option<String>,
}

pub async fn version(c: &Client, a: VersionArgs) -> Result<i32, ClientError> {
    if let Some(f) = &a.format {
        // Docker's shape: {"Client": {...}, "Server": {...}}; the client part needs no daemon.
        let client = json!({"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": berth_api::API_VERSION,
                            "Os": "linux", "Arch": std::env::consts::ARCH});
        let server = serde_json::to_value(c.version().await?).unwrap_or(Value::Null);
        println!(
            "{}",
            format::render(f, &json!({"Client": client, "Server": server}))?
        );
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", berth_api::API_VERSION);
    println!(" OS/Arch:           linux/{}", std::env::consts::ARCH);
    println!();
    let v = c.version().await?;
    println!("Server: berth");
    println!(" Engine:");
    println!("  Version:          {}", v.version);
    println!(
        "  API version:      {} (minimum version {})",
        v.api_version, v.min_api_version
    );
    println!("  OS/Arch:          {}/{}", v.os, v.arch);
    println!("  Kernel:           {}", v.kernel_version);
    Ok(0)
}

pub async fn info(c: &Client, a: InfoArgs) -> Result<i32, ClientError> {
    let i = c.info().await?;
    if let Some(f) = &a.format {
        println!("{}", format::render(f, &i)?);
        return Ok(0);
    }
    let g = |k: &str| {
        i.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    println!("Server:");
    println!(" Containers: {}", g("Containers"));
    println!("  Running: {}", g("ContainersRunning"));
    println!("  Paused: {}", g("ContainersPaused"));
    println!("  Stopped: {}", g("ContainersStopped"));
    println!(" Images: {}", g("Images"));
    println!(" Server Version: {}", g("ServerVersion"));
    println!(" Storage Driver: {}", g("Driver"));
    println!(" Logging Driver: {}", g("LoggingDriver"));
    println!(" Cgroup Driver: {}", g("CgroupDriver"));
    println!(" Cgroup Version: {}", g("CgroupVersion"));
    println!(" Kernel Version: {}", g("KernelVersion"));
    println!(" CPUs: {}", g("NCPU"));
    println!(" Total Memory: {}", g("MemTotal"));
    println!(" Name: {}", g("Name"));
    println!(" Docker Root Dir: {}", g("DockerRootDir"));
    Ok(0)
}

fn percent(part: i64, total: i64) -> String {
    if total > 0 {
        format!("{} ({}%)", format::human_size(part), part * 100 / total)
    } else {
        format::human_size(part)
    }
}

/// One summary row of `system df`.
fn df_row(kind: &str, total: usize, active: usize, size: i64, reclaimable: String) -> Value {
    json!({"Type": kind, "TotalCount": total.to_string(), "Active": active.to_string(),
           "Size": format::human_size(size), "Reclaimable": reclaimable})
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

pub async fn df(c: &Client, a: DfArgs) -> Result<i32, ClientError> {
    let d: Value = c.get("/system/df").await?;
    let (images, containers, volumes) =
        (arr(&d["Images"]), arr(&d["Containers"]), arr(&d["Volumes"]));
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    let img_active = images.iter().filter(|i| n(i, "Containers") > 0).count();
    let img_size: i64 = images.iter().map(|i| n(i, "Size")).sum();
    let img_unused: i64 = images
        .iter()
        .filter(|i| n(i, "Containers") == 0)
        .map(|i| n(i, "Size"))
        .sum();
    let running = |ct: &Value| ct["State"] == "running";
    let ct_size: i64 = containers.iter().map(|ct| n(ct, "SizeRw")).sum();
    let ct_unused: i64 = containers
        .iter()
        .filter(|ct| !running(ct))
        .map(|ct| n(ct, "SizeRw"))
        .sum();
    let refs = |v: &Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    let vsize = |v: &Value| v["UsageData"]["Size"].as_i64().unwrap_or(0).max(0);
    let vol_size: i64 = volumes.iter().map(vsize).sum();
    let vol_unused: i64 = volumes.iter().filter(|v| refs(v) == 0).map(vsize).sum();
    let rows = vec![
        df_row(
            "Images",
            images.len(),
            img_active,
            img_size,
            percent(img_unused, img_size),
        ),
        df_row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| running(c)).count(),
            ct_size,
            percent(ct_unused, ct_size),
        ),
        df_row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|v| refs(v) > 0).count(),
            vol_size,
            percent(vol_unused, vol_size),
        ),
        df_row("Build Cache", 0, 0, 0, format::human_size(0)),
    ];
    if let Some(f) = &a.format {
        format::templated_with(
            f,
            &rows,
            &[("TotalCount", "TOTAL"), ("Reclaimable", "RECLAIMABLE")],
        )?;
        return Ok(0);
    }
    if !a.verbose {
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
                    .iter()
                    .map(|k| r[*k].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .collect();
        format::table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &cells);
        return Ok(0);
    }
    println!("Images space usage:\n");
    let mut cells = Vec::new();
    for i in images {
        let tags = strings(&i["RepoTags"]);
        let id = format::short_id(i["Id"].as_str().unwrap_or_default());
        let size = format::human_size(n(i, "Size"));
        let created = format::ago(n(i, "Created"));
        let count = n(i, "Containers").to_string();
        let names = if tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            tags
        };
        for t in names {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((&t, "<none>"));
            cells.push(vec![
                repo.to_string(),
                tag.to_string(),
                id.clone(),
                created.clone(),
                size.clone(),
                "0B".into(),
                size.clone(),
                count.clone(),
            ]);
        }
    }
    format::table(
        &[
            "REPOSITORY",
            "TAG",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &cells,
    );
    println!("\nContainers space usage:\n");
    let cells: Vec<Vec<String>> = containers
        .iter()
        .map(|ct| {
            vec![
                format::short_id(ct["Id"].as_str().unwrap_or_default()),
                ct["Image"].as_str().unwrap_or_default().to_string(),
                format!("\"{}\"", ct["Command"].as_str().unwrap_or_default()),
                arr(&ct["Mounts"])
                    .iter()
                    .filter(|m| m["Type"] == "volume")
                    .count()
                    .to_string(),
                format::human_size(n(ct, "SizeRw")),
                format::ago(n(ct, "Created")),
                ct["Status"].as_str().unwrap_or_default().to_string(),
                strings(&ct["Names"])
                    .iter()
                    .map(|s| s.trim_start_matches('/'))
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    format::table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "LOCAL VOLUMES",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &cells,
    );
    println!("\nLocal Volumes space usage:\n");
    let cells: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| {
            vec![
                v["Name"].as_str().unwrap_or_default().to_string(),
                refs(v).to_string(),
                format::human_size(vsize(v)),
            ]
        })
        .collect();
    format::table(&["VOLUME NAME", "LINKS", "SIZE"], &cells);
    println!("\nBuild cache usage: 0B");
    Ok(0)
}

fn strings(v: &Value) -> Vec<String> {
    arr(v)
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Containers, then networks, (volumes,) then images — the order in which each frees the next.
pub async fn prune(c: &Client, a: SystemPruneArgs) -> Result<i32, ClientError> {
    let mut what = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if a.volumes {
        what.push("all anonymous volumes not used by at least one container");
    }
    what.push(if a.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    let warning = format!(
        "This will remove:\n{}\n",
        what.iter()
            .map(|w| format!("  - {w}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    if !a.force && !confirm(&warning) {
        return Ok(0);
    }
    let mut freed = prune_containers(c).await?;
    let r: Value = c.post("/networks/prune", &json!({})).await?;
    let nets = strings(&r["NetworksDeleted"]);
    if !nets.is_empty() {
        println!("Deleted Networks:\n{}\n", nets.join("\n"));
    }
    if a.volumes {
        let r: Value = c.post("/volumes/prune", &json!({})).await?;
        let vols = strings(&r["VolumesDeleted"]);
        if !vols.is_empty() {
            println!("Deleted Volumes:\n{}\n", vols.join("\n"));
        }
        freed += r["SpaceReclaimed"].as_i64().unwrap_or(0);
    }
    freed += prune_images(c, a.all).await?;
    println!("Total reclaimed space: {}", format::human_size(freed));
    Ok(0)
}
