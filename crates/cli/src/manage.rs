//! Docker's management commands: `container …` and `image …` name the same operations as the
//! top-level commands (`container ls` = `ps`, `image rm` = `rmi`), plus their `prune`s and `port`.

use berth_api::client::{Client, ClientError};
use berth_api::query::percent_encode;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::args::{
    ImagesArgs, InspectArgs, KillArgs, LoadArgs, LogsArgs, NamesArgs, PsArgs, RenameArgs, RmArgs,
    RmiArgs, RunArgs, SaveArgs, StartArgs, StatsArgs, StopArgs, TagArgs, TopArgs,
};
use crate::{containers, cp, format, images, registry, run, update};

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create and run a new container from an image.
    Run(Box<RunArgs>),
    /// Create a new container.
    Create(Box<RunArgs>),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Kill one or more running containers.
    Kill(KillArgs),
    /// Remove one or more containers.
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(NamesArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Display detailed information on one or more containers.
    Inspect(InspectArgs),
    /// Execute a command in a running container.
    Exec(crate::args::ExecArgs),
    /// Pause all processes within one or more containers.
    Pause(NamesArgs),
    /// Unpause all processes within one or more containers.
    Unpause(NamesArgs),
    /// Rename a container.
    Rename(RenameArgs),
    /// Display the running processes of a container.
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(StatsArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Update configuration of one or more containers.
    Update(update::UpdateArgs),
    /// List port mappings or a specific mapping for the container.
    Port(PortArgs),
    /// Remove all stopped containers.
    Prune(PruneArgs),
}

#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Download an image from a registry.
    Pull(registry::PullArgs),
    /// Upload an image to a registry.
    Push(registry::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Load images from a tar archive (docker save or OCI layout).
    Load(LoadArgs),
    /// Remove unused images.
    Prune(ImagePruneArgs),
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub async fn container(c: &Client, cmd: ContainerCommand) -> Result<i32, ClientError> {
    use ContainerCommand as C;
    match cmd {
        C::Ls(a) => containers::ps(c, a).await,
        C::Run(a) => run::run(c, *a).await,
        C::Create(a) => run::create_only(c, *a).await,
        C::Start(a) => run::start(c, a).await,
        C::Stop(a) => containers::stop(c, a).await,
        C::Restart(a) => containers::restart(c, a).await,
        C::Kill(a) => containers::kill(c, a).await,
        C::Rm(a) => containers::rm(c, a).await,
        C::Wait(a) => containers::wait(c, a).await,
        C::Logs(a) => containers::logs(c, a).await,
        C::Inspect(mut a) => {
            a.kind = Some("container".into());
            containers::inspect(c, a).await
        }
        C::Exec(a) => run::exec(c, a).await,
        C::Pause(a) => containers::pause(c, a, true).await,
        C::Unpause(a) => containers::pause(c, a, false).await,
        C::Rename(a) => containers::rename(c, a).await,
        C::Top(a) => containers::top(c, a).await,
        C::Stats(a) => containers::stats(c, a).await,
        C::Cp(a) => cp::cp(c, a).await,
        C::Update(a) => update::update(c, a).await,
        C::Port(a) => port(c, a).await,
        C::Prune(a) => {
            if !a.force && !confirm("This will remove all stopped containers.") {
                return Ok(0);
            }
            prune_containers(c).await?;
            println!("Total reclaimed space: 0B");
            Ok(0)
        }
    }
}

pub async fn image(c: &Client, cmd: ImageCommand) -> Result<i32, ClientError> {
    use ImageCommand as I;
    match cmd {
        I::Ls(a) => images::list(c, a).await,
        I::Rm(a) => images::rmi(c, a).await,
        I::Pull(a) => registry::pull(c, a).await,
        I::Push(a) => registry::push(c, a).await,
        I::Tag(a) => images::tag(c, a).await,
        I::Inspect(mut a) => {
            a.kind = Some("image".into());
            containers::inspect(c, a).await
        }
        I::Save(a) => images::save(c, a).await,
        I::Load(a) => images::load(c, a).await,
        I::Prune(a) => {
            let what = if a.all {
                "This will remove all images without at least one container associated to them."
            } else {
                "This will remove all dangling images."
            };
            if !a.force && !confirm(what) {
                return Ok(0);
            }
            let freed = prune_images(c, a.all).await?;
            println!("Total reclaimed space: {}", format::human_size(freed));
            Ok(0)
        }
    }
}

/// Docker's prompt; anything but y/yes (or a closed stdin) declines.
pub fn confirm(warning: &str) -> bool {
    use std::io::Write;
    eprint!("WARNING! {warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn print_list(title: &str, items: &[String]) {
    if !items.is_empty() {
        println!("{title}:");
        for i in items {
            println!("{i}");
        }
        println!();
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// POST /containers/prune; prints what went, returns the space freed.
pub async fn prune_containers(c: &Client) -> Result<i64, ClientError> {
    let r: Value = c.post("/containers/prune", &json!({})).await?;
    print_list("Deleted Containers", &strings(&r["ContainersDeleted"]));
    Ok(r["SpaceReclaimed"].as_i64().unwrap_or(0))
}

/// POST /images/prune (all: not only dangling images).
pub async fn prune_images(c: &Client, all: bool) -> Result<i64, ClientError> {
    let mut path = "/images/prune".to_string();
    if all {
        path.push_str(&format!(
            "?filters={}",
            percent_encode(r#"{"dangling":["false"]}"#)
        ));
    }
    let r: Value = c.post(&path, &json!({})).await?;
    let deleted: Vec<String> = r["ImagesDeleted"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            d["Deleted"]
                .as_str()
                .map(|s| format!("deleted: {s}"))
                .or_else(|| d["Untagged"].as_str().map(|s| format!("untagged: {s}")))
        })
        .collect();
    print_list("Deleted Images", &deleted);
    Ok(r["SpaceReclaimed"].as_i64().unwrap_or(0))
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`: `80/tcp -> 0.0.0.0:8080`.
pub async fn port(c: &Client, a: PortArgs) -> Result<i32, ClientError> {
    let info = c.inspect_container(&a.container).await?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for (private, bindings) in &ports {
        if want.as_ref().is_some_and(|w| w != private) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            let host = b["HostPort"].as_str().unwrap_or_default();
            let addr = if ip.contains(':') {
                format!("[{ip}]:{host}")
            } else {
                format!("{ip}:{host}")
            };
            found = true;
            if want.is_some() {
                println!("{addr}");
            } else {
                println!("{private} -> {addr}");
            }
        }
    }
    match want {
        Some(w) if !found => Err(ClientError::Protocol(format!(
            "No public port '{w}' published for {}",
            a.container
        ))),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap's own checks over every command: no flag clashes (e.g. two `-c`s in `run`).
    #[test]
    fn command_line_is_consistent() {
        crate::args::Cli::command().debug_assert();
    }

    #[test]
    fn management_aliases_parse() {
        use clap::Parser;
        for argv in [
            &["berth", "container", "ls", "-a"][..],
            &["berth", "container", "ps"][..],
            &["berth", "image", "ls"][..],
            &["berth", "image", "prune", "-a", "-f"][..],
            &["berth", "system", "prune", "-a", "-f", "--volumes"][..],
            &["berth", "system", "df", "-v"][..],
            &["berth", "system", "info"][..],
            &["berth", "system", "events", "--since", "1m"][..],
            &["berth", "cp", "-aL", "c:/x", "-"][..],
            &["berth", "update", "-m", "1g", "--cpus", "2", "c"][..],
            &[
                "berth",
                "run",
                "-c",
                "512",
                "--env-file",
                "f",
                "--tmpfs",
                "/t",
                "busybox",
            ][..],
        ] {
            if let Err(e) = crate::args::Cli::try_parse_from(argv) {
                panic!("{argv:?}: {e}");
            }
        }
    }
}
