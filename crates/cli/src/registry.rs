//! pull, push, login, logout (through the daemon, credentials in docker's config.json) and
//! `registry serve|gc` (berth's own registry server, no daemon needed).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Read};
use std::time::Duration;

use base64::Engine as _;
use berth_api::client::{BodyReader, Client, ClientError, Prepare};
use berth_api::types::{CreateBody, CreateResponse};
use berth_distribution::auth::credentials::server_domain;
use berth_distribution::auth::credentials::DOCKER_HUB_KEY;
use berth_distribution::{Credential, DockerConfig, ProgressEvent, Reference};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::io::AsyncBufReadExt;

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Download all tagged images in the repository.
    #[arg(short, long)]
    pub all_tags: bool,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Push all tags of the repository.
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output.
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// The registry (default: Docker Hub).
    pub server: Option<String>,
}

pub use berth_registry::command::Command as RegistryCommand;

fn proto(e: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol(e.to_string())
}

/// Docker's X-Registry-Auth for `domain` from the stored login, if there is one.
fn registry_auth(domain: &str) -> Option<String> {
    let cred = match DockerConfig::default_location().get(domain) {
        Ok(c) => c?,
        Err(e) => {
            eprintln!("WARNING: {e}");
            return None;
        }
    };
    let json = serde_json::json!({
        "username": cred.username,
        "password": cred.password,
        "identitytoken": cred.identity_token.unwrap_or_default(),
        "serveraddress": domain,
    });
    Some(base64::engine::general_purpose::URL_SAFE.encode(json.to_string()))
}

/// Draws Docker's progress stream: one indicatif bar per layer on a terminal, plain
/// "id: status" lines otherwise.
struct Display {
    bars: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    quiet: bool,
    /// Inside `run`, stdout belongs to the container: progress goes to stderr, as docker does.
    to_stderr: bool,
}

impl Display {
    fn new(quiet: bool) -> Display {
        Display::with_target(quiet, false)
    }

    fn with_target(quiet: bool, to_stderr: bool) -> Display {
        let tty = !quiet
            && if to_stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            };
        let target = if to_stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        };
        Display {
            bars: tty.then(|| (MultiProgress::with_draw_target(target), HashMap::new())),
            quiet,
            to_stderr,
        }
    }

    fn line(&self, text: &str) {
        if self.to_stderr {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    fn show(&mut self, e: &ProgressEvent) {
        if self.quiet {
            return;
        }
        let Some((mp, bars)) = &mut self.bars else {
            // Byte counts are for bars only.
            if e.progress_detail.is_none() {
                match &e.id {
                    Some(id) => self.line(&format!("{id}: {}", e.status)),
                    None => self.line(&e.status),
                }
            }
            return;
        };
        let Some(id) = &e.id else {
            let _ = mp.println(&e.status);
            return;
        };
        let bar = bars.entry(id.clone()).or_insert_with(|| {
            let b = mp.add(ProgressBar::new(0));
            b.set_style(status_style());
            b
        });
        bar.set_message(format!("{id}: {}", e.status));
        match e.progress_detail {
            Some(p) if p.total.is_some_and(|t| t > 0) => {
                if bar.length() == Some(0) {
                    bar.set_style(bar_style());
                }
                bar.set_length(p.total.unwrap_or(0));
                bar.set_position(p.current);
            }
            _ => {
                if bar.length().unwrap_or(0) > 0 {
                    bar.set_style(status_style());
                }
                if is_final(&e.status) {
                    bar.finish();
                } else {
                    bar.tick();
                }
            }
        }
    }
}

fn is_final(status: &str) -> bool {
    matches!(
        status,
        "Pull complete" | "Already exists" | "Pushed" | "Layer already exists"
    ) || status.starts_with("Mounted from")
}

fn status_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg:<28} [{bar:40}] {bytes}/{total_bytes}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Show a progress stream; the error message if it ended with one.
async fn follow(body: BodyReader, display: &mut Display) -> Result<Option<String>, ClientError> {
    let mut lines = tokio::io::BufReader::new(body).lines();
    let mut failure = None;
    while let Some(l) = lines.next_line().await.map_err(proto)? {
        if l.trim().is_empty() {
            continue;
        }
        let e: ProgressEvent = match serde_json::from_str(&l) {
            Ok(e) => e,
            Err(_) => continue, // aux and other messages we do not draw
        };
        if let Some(msg) = e
            .error
            .clone()
            .or(e.error_detail.clone().map(|d| d.message))
        {
            failure = Some(msg);
            continue;
        }
        display.show(&e);
    }
    if let Some((mp, _)) = &display.bars {
        let _ = mp.clear();
    }
    Ok(failure)
}

fn reference(name: &str) -> Result<Reference, ClientError> {
    Reference::parse(name).map_err(|e| proto(format!("invalid reference format: {e}")))
}

/// Pull `name` through the daemon; Ok(false) when the stream reported a failure (printed).
async fn pull_image(
    c: &Client,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<bool, ClientError> {
    let r = reference(name)?;
    let tagged = r.clone().with_default_tag();
    let mut display = Display::with_target(quiet, to_stderr);
    if r.tag().is_none() && r.digest().is_none() && !quiet {
        display.line("Using default tag: latest");
    }
    let auth = registry_auth(r.domain());
    let tag = tagged
        .digest()
        .map(|d| d.to_string())
        .or_else(|| tagged.tag().map(str::to_owned));
    let body = c
        .pull(&r.name(), tag.as_deref(), platform, auth.as_deref())
        .await?;
    if let Some(msg) = follow(body, &mut display).await? {
        eprintln!("{msg}");
        return Ok(false);
    }
    Ok(true)
}

pub async fn pull(c: &Client, a: PullArgs) -> Result<i32, ClientError> {
    if a.all_tags {
        return pull_all_tags(c, a).await;
    }
    if !pull_image(c, &a.name, a.platform.as_deref(), a.quiet, false).await? {
        return Ok(1);
    }
    println!("{}", reference(&a.name)?.with_default_tag());
    Ok(0)
}

/// `pull --all-tags`: a name without a tag or digest; the daemon pulls every tag.
async fn pull_all_tags(c: &Client, a: PullArgs) -> Result<i32, ClientError> {
    let r = reference(&a.name)?;
    if r.tag().is_some() || r.digest().is_some() {
        return Err(proto("tag can't be used with --all-tags/-a"));
    }
    let mut display = Display::new(a.quiet);
    let auth = registry_auth(r.domain());
    let body = c
        .pull(&r.name(), None, a.platform.as_deref(), auth.as_deref())
        .await?;
    if let Some(msg) = follow(body, &mut display).await? {
        eprintln!("{msg}");
        return Ok(1);
    }
    println!("{}", r.name());
    Ok(0)
}

/// `run`/`create`'s `--pull`: when to pull the image before creating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull first, always.
    Always,
    /// Pull when the daemon does not have it (for the platform asked).
    #[default]
    Missing,
    /// Never pull: the image must be there.
    Never,
}

/// `create`, pulling the image as `pull` says (docker run's default: when it is missing).
pub async fn create_pulling(
    c: &Client,
    name: Option<&str>,
    platform: Option<&str>,
    pull: PullPolicy,
    image: &str,
    body: &CreateBody,
    prepare: Prepare,
) -> Result<CreateResponse, ClientError> {
    let shown = || {
        reference(image)
            .map(|r| r.with_default_tag().familiar())
            .unwrap_or_else(|_| image.to_string())
    };
    if pull == PullPolicy::Always && !image.is_empty() {
        if !pull_image(c, image, platform, false, true).await? {
            return Err(ClientError::Protocol(format!("pull {} failed", shown())));
        }
        return c.create_for(name, platform, body, prepare).await;
    }
    match c.create_for(name, platform, body, prepare).await {
        Err(ClientError::Api { status: 404, .. })
            if !image.is_empty() && pull == PullPolicy::Missing =>
        {
            eprintln!("Unable to find image '{}' locally", shown());
            if !pull_image(c, image, platform, false, true).await? {
                return Err(ClientError::Protocol(format!("pull {} failed", shown())));
            }
            c.create_for(name, platform, body, prepare).await
        }
        other => other,
    }
}

pub async fn push(c: &Client, a: PushArgs) -> Result<i32, ClientError> {
    let r = reference(&a.name)?;
    let auth = registry_auth(r.domain());
    // The daemon names images as docker does: "busybox" for docker.io/library/busybox.
    let familiar = reference(&r.name())?.familiar();
    if a.all_tags && r.tag().is_some() {
        return Err(proto("tag can't be used with --all-tags/-a"));
    }
    // Like docker: the tag given, "latest" without one, every tag with --all-tags.
    let tag = match (a.all_tags, r.tag()) {
        (true, _) => None,
        (false, Some(t)) => Some(t),
        (false, None) => Some("latest"),
    };
    let body = c.push(&familiar, tag, auth.as_deref()).await?;
    let mut display = Display::new(a.quiet);
    if let Some(msg) = follow(body, &mut display).await? {
        eprintln!("{msg}");
        return Ok(1);
    }
    if a.quiet {
        println!("{}", r.familiar());
    }
    Ok(0)
}

fn prompt(what: &str) -> Result<String, ClientError> {
    eprint!("{what}");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(proto)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Read a password from the terminal without echoing it.
fn prompt_password() -> Result<String, ClientError> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(old) = &saved {
        let mut quiet = old.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let answer = prompt("Password: ");
    if let Some(old) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, old);
        eprintln!();
    }
    answer
}

pub async fn login(c: &Client, a: LoginArgs) -> Result<i32, ClientError> {
    let server = a
        .server
        .clone()
        .unwrap_or_else(|| DOCKER_HUB_KEY.to_string());
    let domain = server_domain(&server);
    let config = DockerConfig::default_location();
    if a.password.is_some() && a.password_stdin {
        return Err(proto(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    if a.password_stdin && a.username.is_none() {
        return Err(proto("Must provide --username with --password-stdin"));
    }
    let stored = config.get(&domain).map_err(proto)?;
    let cred = match (&a.username, &a.password, a.password_stdin, stored) {
        // Plain `login` with a stored login: check that one again.
        (None, None, false, Some(c)) if !c.password.is_empty() => c,
        _ => {
            let username = match &a.username {
                Some(u) => u.clone(),
                None => prompt("Username: ")?,
            };
            let password = if a.password_stdin {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map_err(proto)?;
                s.trim_end_matches(['\r', '\n']).to_string()
            } else if let Some(p) = &a.password {
                eprintln!(
                    "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
                );
                p.clone()
            } else {
                prompt_password()?
            };
            if username.is_empty() || password.is_empty() {
                return Err(proto("Error: Non-null Username and Password Required"));
            }
            Credential::basic(username, password)
        }
    };
    c.registry_login(&cred.username, &cred.password, &server)
        .await?;
    config.store(&domain, &cred).map_err(proto)?;
    eprintln!(
        "WARNING! Your password will be stored unencrypted in {}.",
        config.path().display()
    );
    println!("Login Succeeded");
    Ok(0)
}

pub async fn logout(a: LogoutArgs) -> Result<i32, ClientError> {
    let server = a.server.unwrap_or_else(|| DOCKER_HUB_KEY.to_string());
    let domain = server_domain(&server);
    if DockerConfig::default_location()
        .erase(&domain)
        .map_err(proto)?
    {
        println!(
            "Removing login credentials for {}",
            berth_distribution::auth::config_key(&domain)
        );
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

pub async fn registry(cmd: RegistryCommand) -> Result<i32, ClientError> {
    match cmd {
        RegistryCommand::Serve(args) => {
            let config = args.into_config();
            let scheme = if config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            serve(config, scheme).await
        }
        RegistryCommand::Gc { root } => {
            let report = tokio::task::spawn_blocking(move || berth_registry::gc(&root))
                .await
                .map_err(proto)?
                .map_err(proto)?;
            println!("{}", berth_registry::command::gc_summary(&report));
            Ok(0)
        }
    }
}

async fn serve(config: berth_registry::Config, scheme: &str) -> Result<i32, ClientError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(proto)?;
    let mut int = signal(SignalKind::interrupt()).map_err(proto)?;
    let server = berth_registry::start(config).await.map_err(proto)?;
    // The one line scripts wait for (the port when --addr asked for port 0).
    println!("registry listening on {scheme}://{}", server.addr);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    // Let requests in flight finish writing.
    let _ = tokio::time::timeout(Duration::from_secs(5), server.stop()).await;
    Ok(0)
}
