//! One function per command; each returns the process exit code.

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use berth_runtime::container::{CreateOptions, ExecResult, Runtime};
use berth_runtime::error::{Error, Result};
use nix::sys::signal::Signal;
use oci_spec::runtime::{Capability, LinuxResources, Process};

use crate::cli::{Cli, Command, CreateArgs, ExecArgs};

pub fn dispatch(cli: &Cli) -> Result<i32> {
    let mut rt = Runtime::new(&cli.root);
    match &cli.command {
        Command::Create(a) => {
            rt.no_pivot = a.no_pivot;
            rt.create(&a.id, &a.bundle, &create_options(a))?;
            Ok(0)
        }
        Command::Start { id } => rt.start(id).map(|_| 0),
        Command::Run {
            create,
            detach,
            keep,
        } => {
            rt.no_pivot = create.no_pivot;
            let code = rt.run(&create.id, &create.bundle, &create_options(create), *detach)?;
            let _ = keep; // foreground run always deletes, as runc; --keep is accepted for compatibility
            Ok(code)
        }
        Command::State { id } => print_json(&rt.state(id)?),
        Command::Kill { all, id, signal } => rt.kill(id, parse_signal(signal)?, *all).map(|_| 0),
        Command::Delete { force, id } => match rt.delete(id, *force) {
            // runc: deleting a container that is already gone with --force is not an error.
            Err(Error::NotFound(_)) if *force => Ok(0),
            r => r.map(|_| 0),
        },
        Command::Exec(a) => exec(&rt, a),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, id, format, ps_args),
        Command::Pause { id } => rt.pause(id).map(|_| 0),
        Command::Resume { id } => rt.resume(id).map(|_| 0),
        Command::List { format, quiet } => list(&rt, format, *quiet),
        Command::Spec { bundle } => spec(bundle, cli.rootless.as_deref() == Some("true")),
        Command::Features => print_json(&features()),
        Command::Update {
            resources,
            memory,
            pids_limit,
            cpu_shares,
            cpu_quota,
            cpu_period,
            id,
        } => {
            let res = match resources {
                Some(path) => read_resources(path)?,
                None => resources_from_flags(
                    *memory,
                    *pids_limit,
                    *cpu_shares,
                    *cpu_quota,
                    *cpu_period,
                )?,
            };
            rt.update(id, &res).map(|_| 0)
        }
        Command::Events {
            stats,
            interval,
            id,
        } => events(&rt, id, *stats, interval),
    }
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ..CreateOptions::default()
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<i32> {
    let text = serde_json::to_string_pretty(v).map_err(|e| Error::Other(e.to_string()))?;
    println!("{text}");
    Ok(0)
}

/// "KILL", "SIGKILL" or "9".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| Error::Other(format!("unknown signal {s:?}")));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| Error::Other(format!("unknown signal {s:?}")))
}

fn exec(rt: &Runtime, a: &ExecArgs) -> Result<i32> {
    let process = match &a.process {
        Some(path) => read_process(path)?,
        None => process_from_flags(rt, a)?,
    };
    let opts = CreateOptions {
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ..CreateOptions::default()
    };
    match rt.exec(&a.id, &process, &opts, a.detach)? {
        ExecResult::Started(_) => Ok(0),
        ExecResult::Exited(code) => Ok(code),
    }
}

fn read_json_input(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read stdin", e))?;
    } else {
        buf = std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    }
    Ok(buf)
}

fn parse_json_at<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| Error::InvalidConfig {
        path: format!("{what}:{}", e.path()),
        reason: e.into_inner().to_string(),
    })
}

fn read_process(path: &Path) -> Result<Process> {
    let p: Process = parse_json_at(&read_json_input(path)?, "process")?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(Error::config("process.args", "must name a program to run"));
    }
    Ok(p)
}

/// `exec ID CMD...`: the container's own process settings, changed by the flags.
fn process_from_flags(rt: &Runtime, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        return Err(Error::Other("exec needs a command (or --process)".into()));
    }
    let c = rt.load(&a.id)?;
    let mut p = c
        .state
        .spec
        .process()
        .clone()
        .ok_or_else(|| Error::config("process", "missing in the container's spec"))?;
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if !a.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &a.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let mut user = p.user().clone();
        user.set_uid(
            uid.parse()
                .map_err(|_| Error::Other(format!("--user {u:?}: expected uid[:gid]")))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| Error::Other(format!("--user {u:?}: expected uid[:gid]")))?,
            );
        }
        p.set_user(user);
    }
    if !a.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(user);
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap = Capability::from_str(name)
                .map_err(|_| Error::Other(format!("--cap {name:?}: unknown capability")))?;
            let add = |s: Option<oci_spec::runtime::Capabilities>| {
                let mut s = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            let b = add(caps.bounding().clone());
            let e = add(caps.effective().clone());
            let pm = add(caps.permitted().clone());
            caps.set_bounding(b);
            caps.set_effective(e);
            caps.set_permitted(pm);
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

fn read_resources(path: &Path) -> Result<LinuxResources> {
    parse_json_at(&read_json_input(path)?, "resources")
}

fn resources_from_flags(
    memory: Option<i64>,
    pids: Option<i64>,
    shares: Option<u64>,
    quota: Option<i64>,
    period: Option<u64>,
) -> Result<LinuxResources> {
    let v = serde_json::json!({
        "memory": memory.map(|m| serde_json::json!({"limit": m})),
        "pids": pids.map(|p| serde_json::json!({"limit": p})),
        "cpu": {"shares": shares, "quota": quota, "period": period},
    });
    let bytes = serde_json::to_vec(&strip_nulls(v)).map_err(|e| Error::Other(e.to_string()))?;
    parse_json_at(&bytes, "resources")
}

fn strip_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

fn ps(rt: &Runtime, id: &str, format: &str, ps_args: &[String]) -> Result<i32> {
    let pids = rt.pids(id)?;
    if format == "json" {
        return print_json(&pids);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Error::io("run ps", e))?;
    if !out.status.success() {
        return Err(Error::Other(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Other("ps output has no PID column".into()))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for line in lines {
        let pid: Option<i32> = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{line}");
        }
    }
    Ok(0)
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> Result<i32> {
    let all = rt.list()?;
    if quiet {
        for c in &all {
            println!("{}", c.id);
        }
        return Ok(0);
    }
    if format == "json" {
        return print_json(&all);
    }
    let mut rows = vec![[
        "ID".to_string(),
        "PID".into(),
        "STATUS".into(),
        "BUNDLE".into(),
        "CREATED".into(),
        "OWNER".into(),
    ]];
    for c in &all {
        rows.push([
            c.id.clone(),
            c.pid.to_string(),
            c.status.to_string(),
            c.bundle.display().to_string(),
            c.created.clone(),
            c.owner.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(0)
}

fn spec(bundle: &Path, rootless: bool) -> Result<i32> {
    let path = bundle.join("config.json");
    if path.exists() {
        return Err(Error::Other(format!(
            "{} already exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&berth_runtime::spec::default_spec(rootless))
        .map_err(|e| Error::Other(e.to_string()))?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
    Ok(0)
}

fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> Result<i32> {
    let every = humantime::parse_duration(interval)
        .map_err(|e| Error::Other(format!("--interval {interval:?}: {e}")))?;
    loop {
        let stats = rt.stats(id)?;
        let line = serde_json::json!({"type": "stats", "id": id, "data": stats});
        println!("{line}");
        if once {
            return Ok(0);
        }
        std::thread::sleep(every);
    }
}

/// runtime-spec features.md: what this runtime build supports.
fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
            "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime", "rnodev",
            "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro",
            "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
            "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
            "symfollow", "sync", "tmpcopyup", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": all_capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": [
                    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"
                ],
                "operators": [
                    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
                ],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "io.berth.init": "run a tini-like init as PID 1 (\"group\": signal the whole process group)"
        }
    })
}

fn all_capabilities() -> Vec<String> {
    caps::all()
        .into_iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
