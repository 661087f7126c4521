//! run, create, start, exec: create → attach → wait → start → stream, like docker's CLI.

use berth_api::client::{Client, ClientError, Prepare};
use berth_api::types::{
    ContainerConfig, CreateBody, ExecConfig, HostConfig, Mount, RestartPolicy, StrSlice,
    TmpfsOptions,
};

use crate::args::{ExecArgs, RunArgs, StartArgs};
use crate::{stream, tty};

/// "256m", "1g", "512k", "1024" → bytes.
pub fn parse_bytes(s: &str) -> Result<i64, ClientError> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    num.parse::<f64>()
        .map(|n| (n * mult as f64) as i64)
        .map_err(|_| ClientError::Protocol(format!("invalid size: {s:?}")))
}

fn restart_policy(s: Option<&str>) -> RestartPolicy {
    match s {
        None => RestartPolicy::default(),
        Some(p) => match p.split_once(':') {
            Some((name, n)) => RestartPolicy {
                name: name.into(),
                maximum_retry_count: n.parse().unwrap_or(0),
            },
            None => RestartPolicy {
                name: p.into(),
                maximum_retry_count: 0,
            },
        },
    }
}

fn labels(l: &[String]) -> Option<std::collections::BTreeMap<String, String>> {
    (!l.is_empty()).then(|| {
        l.iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.clone(), String::new()),
            })
            .collect()
    })
}

/// `--mount type=volume,source=v,target=/data,readonly`.
pub fn parse_mount(spec: &str) -> Result<Mount, ClientError> {
    let mut m = Mount {
        kind: "volume".into(),
        ..Mount::default()
    };
    for part in spec.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, "true"));
        match k {
            "type" => m.kind = v.into(),
            "source" | "src" => m.source = v.into(),
            "target" | "destination" | "dst" => m.target = v.into(),
            "readonly" | "ro" => m.read_only = v != "false" && v != "0",
            "tmpfs-size" => {
                m.tmpfs_options = Some(TmpfsOptions {
                    size_bytes: parse_bytes(v)?,
                })
            }
            other => {
                return Err(ClientError::Protocol(format!(
                    "invalid field '{other}' in --mount {spec}"
                )))
            }
        }
    }
    if m.target.is_empty() {
        return Err(ClientError::Protocol(format!(
            "--mount {spec}: target is required"
        )));
    }
    Ok(m)
}

pub fn create_body(a: &RunArgs) -> Result<CreateBody, ClientError> {
    let mounts = a
        .mount
        .iter()
        .map(|m| parse_mount(m))
        .collect::<Result<Vec<_>, _>>()?;
    let log_opts: serde_json::Map<String, serde_json::Value> = a
        .log_opt
        .iter()
        .filter_map(|o| o.split_once('='))
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let attach = !a.detach;
    let mut body = CreateBody {
        config: ContainerConfig {
            hostname: a.hostname.clone().unwrap_or_default(),
            user: a.user.clone().unwrap_or_default(),
            attach_stdin: attach && a.interactive,
            attach_stdout: attach,
            attach_stderr: attach,
            tty: a.tty,
            open_stdin: a.interactive,
            stdin_once: a.interactive && attach,
            env: (!a.env.is_empty()).then(|| a.env.clone()),
            cmd: (!a.command.is_empty()).then(|| StrSlice(a.command.clone())),
            entrypoint: a.entrypoint.as_ref().map(|e| {
                StrSlice(if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                })
            }),
            image: a.image.clone(),
            working_dir: a.workdir.clone().unwrap_or_default(),
            labels: labels(&a.label),
            stop_signal: a.stop_signal.clone(),
            stop_timeout: a.stop_timeout,
            healthcheck: a.health.healthcheck()?,
            ..ContainerConfig::default()
        },
        host_config: HostConfig {
            binds: (!a.volume.is_empty()).then(|| a.volume.clone()),
            network_mode: a.network.clone().unwrap_or_default(),
            restart_policy: restart_policy(a.restart.as_deref()),
            auto_remove: a.rm,
            cap_add: (!a.cap_add.is_empty()).then(|| a.cap_add.clone()),
            cap_drop: (!a.cap_drop.is_empty()).then(|| a.cap_drop.clone()),
            privileged: a.privileged,
            readonly_rootfs: a.read_only,
            security_opt: (!a.security_opt.is_empty())
                .then(|| crate::security::security_opts(&a.security_opt))
                .transpose()?,
            init: a.init.then_some(true),
            memory: a
                .memory
                .as_deref()
                .map(parse_bytes)
                .transpose()?
                .unwrap_or(0),
            nano_cpus: a.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
            pids_limit: a.pids_limit,
            mounts: (!mounts.is_empty()).then_some(mounts),
            console_size: if a.tty {
                tty::size().map(|(h, w)| [h, w])
            } else {
                None
            },
            log_config: (!log_opts.is_empty())
                .then(|| serde_json::json!({"Type": "json-file", "Config": log_opts})),
            ..HostConfig::default()
        },
        networking_config: None,
    };
    crate::networks::apply(&a.net, &mut body)?;
    crate::runflags::apply(&a.more, &mut body)?;
    Ok(body)
}

/// `--cidfile`: refused when the file exists (another container may own it), as Docker does.
struct CidFile(Option<std::path::PathBuf>);

impl CidFile {
    fn claim(path: Option<&str>) -> Result<CidFile, ClientError> {
        let Some(p) = path.filter(|p| !p.is_empty()) else {
            return Ok(CidFile(None));
        };
        let path = std::path::PathBuf::from(p);
        if path.exists() {
            return Err(ClientError::Protocol(format!(
                "container ID file found, make sure the other container isn't running or delete {p}"
            )));
        }
        std::fs::File::create(&path).map_err(|e| {
            ClientError::Protocol(format!("failed to create the container ID file: {e}"))
        })?;
        Ok(CidFile(Some(path)))
    }

    fn write(&mut self, id: &str) -> Result<(), ClientError> {
        if let Some(p) = self.0.take() {
            std::fs::write(&p, id).map_err(|e| {
                ClientError::Protocol(format!("failed to write the container ID to the file: {e}"))
            })?;
        }
        Ok(())
    }
}

impl Drop for CidFile {
    /// Not written (the create failed): the empty file goes.
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Create the container (pulling per --pull, for --platform) and write --cidfile. `to_run`:
/// it is started at once (berthd sets its process up meanwhile).
async fn create_container(
    c: &Client,
    a: &RunArgs,
    prepare: Prepare,
) -> Result<berth_api::types::CreateResponse, ClientError> {
    let body = create_body(a)?;
    let mut cid = CidFile::claim(a.more.cidfile.as_deref())?;
    let r = crate::registry::create_pulling(
        c,
        a.name.as_deref(),
        a.more.platform.as_deref(),
        a.more.pull,
        &a.image,
        &body,
        prepare,
    )
    .await?;
    cid.write(&r.id)?;
    Ok(r)
}

pub async fn create_only(c: &Client, a: RunArgs) -> Result<i32, ClientError> {
    let r = create_container(c, &a, Prepare::Nothing).await?;
    for w in &r.warnings {
        eprintln!("WARNING: {w}");
    }
    println!("{}", r.id);
    Ok(0)
}

pub async fn run(c: &Client, a: RunArgs) -> Result<i32, ClientError> {
    // Detached: a start follows; attached: the attach (which starts it) follows.
    let prepare = if a.detach {
        Prepare::Start
    } else {
        Prepare::AttachAndStart
    };
    let created = match create_container(c, &a, prepare).await {
        Ok(r) => r,
        Err(e @ ClientError::Connect { .. }) => return Err(e),
        Err(e) => {
            eprintln!("berth: {e}");
            return Ok(125);
        }
    };
    for w in &created.warnings {
        eprintln!("WARNING: {w}");
    }
    let id = created.id;
    if a.detach {
        if let Err(e) = c.start(&id).await {
            eprintln!("berth: {e}");
            if a.rm {
                let _ = c.remove(&id, true).await;
            }
            return Ok(start_failure_code(&e));
        }
        println!("{id}");
        return Ok(0);
    }
    // The wait is registered first, so no exit is missed (berthd is setting the process up
    // meanwhile, and may have started it already, holding its output and exit for us); then
    // the attach, which berthd follows with the start once the stream is hooked up, so no
    // output is missed either. Another daemon leaves the start to us.
    let waiter = c
        .wait(&id, if a.rm { "removed" } else { "next-exit" })
        .await?;
    let started = match c.attach_and_start(&id, a.interactive).await {
        Ok((conn, true)) => Ok(conn),
        Ok((conn, false)) => c.start(&id).await.map(|()| conn),
        Err(e) => Err(e),
    };
    let conn = match started {
        Ok(conn) => conn,
        Err(e @ ClientError::Connect { .. }) => return Err(e),
        Err(e) => {
            eprintln!("berth: {e}");
            if a.rm {
                let _ = c.remove(&id, true).await;
            }
            return Ok(start_failure_code(&e));
        }
    };
    let _raw = (a.tty && tty::stdin_is_tty()).then(tty::RawMode::enter);
    if a.tty {
        if let Some((h, w)) = tty::size() {
            let _ = c.resize(&id, h, w).await;
        }
    }
    let _ = stream::pump(conn, a.tty, a.interactive).await;
    drop(_raw);
    let code = waiter.await?;
    Ok(code as i32)
}

/// Docker's exit codes for a container that could not start: 127 when the command was not
/// found, 126 when it could not be run, 125 for any other failure.
fn start_failure_code(e: &ClientError) -> i32 {
    let msg = e.to_string();
    if ["executable file not found", "no such file or directory"]
        .iter()
        .any(|s| msg.contains(s))
    {
        127
    } else if ["permission denied", "is a directory"]
        .iter()
        .any(|s| msg.contains(s))
    {
        126
    } else {
        125
    }
}

pub async fn start(c: &Client, a: StartArgs) -> Result<i32, ClientError> {
    if !a.attach {
        let mut code = 0;
        for n in &a.containers {
            match c.start(n).await {
                Ok(()) => println!("{n}"),
                Err(e @ ClientError::Connect { .. }) => return Err(e),
                Err(e) => {
                    eprintln!("{e}");
                    code = 1;
                }
            }
        }
        return Ok(code);
    }
    let name = &a.containers[0];
    let info = c.inspect_container(name).await?;
    let tty_mode = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let conn = c.attach(name, a.interactive).await?;
    let waiter = c.wait(name, "next-exit").await?;
    c.start(name).await?;
    let _raw = (tty_mode && tty::stdin_is_tty()).then(tty::RawMode::enter);
    let _ = stream::pump(conn, tty_mode, a.interactive).await;
    drop(_raw);
    Ok(waiter.await? as i32)
}

pub async fn exec(c: &Client, a: ExecArgs) -> Result<i32, ClientError> {
    let cfg = ExecConfig {
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        tty: a.tty,
        env: (!a.env.is_empty()).then(|| a.env.clone()),
        cmd: Some(StrSlice(a.command.clone())),
        privileged: a.privileged,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        detach_keys: String::new(),
        console_size: if a.tty {
            tty::size().map(|(h, w)| [h, w])
        } else {
            None
        },
    };
    let exec_id = c.exec_create(&a.container, &cfg).await?;
    if a.detach {
        c.exec_start_detached(&exec_id).await?;
        return Ok(0);
    }
    let conn = c.exec_start(&exec_id, a.tty).await?;
    let _raw = (a.tty && tty::stdin_is_tty()).then(tty::RawMode::enter);
    if a.tty {
        if let Some((h, w)) = tty::size() {
            let _ = c.exec_resize(&exec_id, h, w).await;
        }
    }
    let _ = stream::pump(conn, a.tty, a.interactive).await;
    drop(_raw);
    let info = c.exec_inspect(&exec_id).await?;
    Ok(info["ExitCode"].as_i64().unwrap_or(0) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("256m").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert!(parse_bytes("lots").is_err());
    }

    #[test]
    fn mounts_parse() {
        let m = parse_mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.read_only
            ),
            ("bind", "/a", "/b", true)
        );
        assert!(parse_mount("type=volume,source=v").is_err());
    }

    #[test]
    fn restart_policies_parse() {
        assert_eq!(restart_policy(Some("on-failure:3")).maximum_retry_count, 3);
        assert_eq!(restart_policy(Some("always")).name, "always");
    }
}
