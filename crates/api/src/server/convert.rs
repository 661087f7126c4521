//! Docker's JSON ↔ the engine's types.

use berth_engine::containers::create::{CreateRequest, Prepare};
use berth_engine::containers::exec::ExecSpec;
use berth_engine::{
    ContainerRecord, ContainerSpec, DeviceMapping, HostSpec, MountKind, MountSpec, RestartPolicy,
    Ulimit,
};
use serde_json::{json, Value};

use crate::types::{ContainerSummary, CreateBody, ExecConfig};

pub fn create_request(name: Option<String>, b: CreateBody) -> CreateRequest {
    let c = b.config;
    let h = b.host_config;
    // Config.Volumes ("-v /path"): anonymous volumes.
    let mut mounts: Vec<MountSpec> = h
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(mount_spec)
        .collect();
    if let Some(vols) = c.volumes.as_ref().and_then(|v| v.as_object()) {
        for target in vols.keys() {
            mounts.push(MountSpec {
                kind: MountKind::Volume,
                target: target.clone(),
                ..MountSpec::default()
            });
        }
    }
    CreateRequest {
        name,
        entrypoint: c.entrypoint.map(|s| s.0),
        cmd: c.cmd.map(|s| s.0),
        publish_all_ports: false,
        healthcheck: c.healthcheck.clone(),
        platform: None,
        prepare: Prepare::Nothing,
        spec: ContainerSpec {
            image: c.image,
            hostname: c.hostname,
            domainname: c.domainname,
            user: c.user,
            env: c.env.unwrap_or_default(),
            cmd: Vec::new(),
            entrypoint: Vec::new(),
            working_dir: c.working_dir,
            labels: c.labels.unwrap_or_default(),
            tty: c.tty,
            open_stdin: c.open_stdin,
            stdin_once: c.stdin_once,
            attach_stdin: c.attach_stdin,
            attach_stdout: c.attach_stdout,
            attach_stderr: c.attach_stderr,
            stop_signal: c.stop_signal.filter(|s| !s.is_empty()),
            stop_timeout: c.stop_timeout,
            healthcheck: None,
            host: HostSpec {
                auto_remove: h.auto_remove,
                network_mode: h.network_mode,
                network: Default::default(),
                binds: h.binds.unwrap_or_default(),
                mounts,
                memory: h.memory,
                memory_swap: h.memory_swap,
                memory_reservation: h.memory_reservation,
                nano_cpus: h.nano_cpus,
                cpu_shares: h.cpu_shares,
                cpu_quota: h.cpu_quota,
                cpu_period: h.cpu_period,
                cpuset_cpus: h.cpuset_cpus,
                pids_limit: h.pids_limit,
                oom_kill_disable: h.oom_kill_disable.unwrap_or(false),
                privileged: h.privileged,
                readonly_rootfs: h.readonly_rootfs,
                cap_add: h.cap_add.unwrap_or_default(),
                cap_drop: h.cap_drop.unwrap_or_default(),
                init: h.init,
                restart_policy: RestartPolicy {
                    name: h.restart_policy.name,
                    maximum_retry_count: h.restart_policy.maximum_retry_count,
                },
                security_opt: h.security_opt.unwrap_or_default(),
                sysctls: h.sysctls.unwrap_or_default(),
                shm_size: h.shm_size,
                log_opts: log_opts(h.log_config.as_ref()),
                console_size: h.console_size.filter(|s| s[0] > 0 && s[1] > 0),
                ulimits: h
                    .ulimits
                    .unwrap_or_default()
                    .into_iter()
                    .map(|u| Ulimit {
                        name: u.name,
                        soft: u.soft,
                        hard: u.hard,
                    })
                    .collect(),
                devices: h
                    .devices
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| DeviceMapping {
                        path_on_host: d.path_on_host,
                        path_in_container: d.path_in_container,
                        cgroup_permissions: d.cgroup_permissions,
                    })
                    .collect(),
            },
        },
    }
}

/// LogConfig {"Type": "json-file", "Config": {"max-size": "10m"}} → its options.
fn log_opts(c: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    c.and_then(|c| c.get("Config"))
        .and_then(|c| c.as_object())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn mount_spec(m: crate::types::Mount) -> MountSpec {
    MountSpec {
        kind: match m.kind.as_str() {
            "volume" => MountKind::Volume,
            "tmpfs" => MountKind::Tmpfs,
            _ => MountKind::Bind,
        },
        source: m.source,
        target: m.target,
        read_only: m.read_only,
        tmpfs_size: m.tmpfs_options.map(|t| t.size_bytes).unwrap_or(0),
        anonymous: false,
    }
}

/// Inspect's "Mounts".
fn mounts_json(rec: &ContainerRecord, data_root: &str) -> Value {
    Value::Array(
        rec.spec
            .host
            .mounts
            .iter()
            .map(|m| {
                let (kind, source) = match m.kind {
                    MountKind::Bind => ("bind", m.source.clone()),
                    MountKind::Volume => {
                        ("volume", format!("{data_root}/volumes/{}/_data", m.source))
                    }
                    MountKind::Tmpfs => ("tmpfs", String::new()),
                };
                let mut j = json!({
                    "Type": kind,
                    "Source": source,
                    "Destination": m.target,
                    "Mode": if m.read_only { "ro" } else { "" },
                    "RW": !m.read_only,
                    "Propagation": if m.kind == MountKind::Bind { "rprivate" } else { "" },
                });
                if m.kind == MountKind::Volume {
                    j["Name"] = json!(m.source);
                    j["Driver"] = json!("local");
                }
                j
            })
            .collect(),
    )
}

pub fn exec_spec(c: ExecConfig) -> ExecSpec {
    ExecSpec {
        cmd: c.cmd.map(|s| s.0).unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        user: c.user,
        working_dir: c.working_dir,
        tty: c.tty,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        privileged: c.privileged,
        console_size: c.console_size.filter(|s| s[0] > 0 && s[1] > 0),
    }
}

fn unix_secs(rfc3339: &str) -> i64 {
    humantime_secs(rfc3339).map(|d| d as i64).unwrap_or(0)
}

fn humantime_secs(s: &str) -> Option<f64> {
    parse_rfc3339(s)
}

/// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.frac]Z".
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, dd) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let frac: f64 = format!("0.{}", frac.trim_end_matches(|c: char| !c.is_ascii_digit()))
        .parse()
        .unwrap_or(0.0);
    Some((days * 86400 + hh * 3600 + mm * 60 + ss) as f64 + frac)
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Docker's units.HumanDuration.
pub fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as i64;
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 3 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

/// For `ps --filter health=`: "starting", "healthy", "unhealthy" or "none".
pub fn health_status(rec: &ContainerRecord) -> &'static str {
    let checked = rec.spec.healthcheck.as_ref().is_some_and(|h| h.enabled());
    match &rec.state.health {
        Some(h) if checked => h.status.as_str(),
        _ => "none",
    }
}

pub fn status_text(rec: &ContainerRecord) -> String {
    use berth_engine::Status;
    let now = now_secs();
    match rec.state.status {
        Status::Running => {
            let up = human_duration(now - parse_rfc3339(&rec.state.started_at).unwrap_or(now));
            // Docker: "Up 3 seconds (healthy)", "(health: starting)".
            match health_status(rec) {
                "none" => format!("Up {up}"),
                "starting" => format!("Up {up} (health: starting)"),
                s => format!("Up {up} ({s})"),
            }
        }
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - parse_rfc3339(&rec.state.started_at).unwrap_or(now))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            rec.state.exit_code,
            human_duration(now - parse_rfc3339(&rec.state.finished_at).unwrap_or(now))
        ),
        Status::Created => "Created".into(),
        other => other.as_str().to_string(),
    }
}

fn command_string(rec: &ContainerRecord) -> String {
    rec.argv().join(" ")
}

pub fn summary(rec: &ContainerRecord) -> ContainerSummary {
    ContainerSummary {
        id: rec.id.clone(),
        names: vec![format!("/{}", rec.name)],
        image: rec.spec.image.clone(),
        image_id: rec.image_id.clone(),
        command: command_string(rec),
        created: unix_secs(&rec.created),
        state: rec.state.status.as_str().into(),
        status: status_text(rec),
        ports: Vec::new(),
        labels: rec.spec.labels.clone(),
        mounts: Vec::new(),
        host_config: json!({"NetworkMode": rec.spec.host.network_mode}),
        network_settings: json!({"Networks": {}}),
        size_rw: None,
        size_root_fs: None,
    }
}

/// State.Health in Docker's shape; null without a healthcheck.
fn health_json(rec: &ContainerRecord) -> Value {
    let Some(h) = rec
        .state
        .health
        .as_ref()
        .filter(|_| health_status(rec) != "none")
    else {
        return Value::Null;
    };
    json!({
        "Status": h.status.as_str(),
        "FailingStreak": h.failing_streak,
        "Log": h.log.iter().map(|r| json!({
            "Start": r.start,
            "End": r.end,
            "ExitCode": r.exit_code,
            "Output": r.output,
        })).collect::<Vec<_>>(),
    })
}

fn zero_time(s: &str) -> &str {
    if s.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        s
    }
}

/// GET /containers/{id}/json in Docker's shape.
pub fn inspect(rec: &ContainerRecord, data_root: &str) -> Value {
    let s = &rec.spec;
    let h = &s.host;
    let argv = rec.argv();
    let st = &rec.state;
    let dir = format!("{data_root}/containers/{}", rec.id);
    json!({
        "Id": rec.id,
        "Created": rec.created,
        "Path": argv.first().cloned().unwrap_or_default(),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": st.status.as_str(),
            "Running": st.running(),
            "Paused": st.status == berth_engine::Status::Paused,
            "Restarting": st.status == berth_engine::Status::Restarting,
            "OOMKilled": st.oom_killed,
            "Dead": st.status == berth_engine::Status::Dead,
            "Pid": if st.running() { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": zero_time(&st.started_at),
            "FinishedAt": zero_time(&st.finished_at),
            "Health": health_json(rec),
        },
        "Image": rec.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": rec.log_path,
        "Name": format!("/{}", rec.name),
        "RestartCount": rec.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "Binds": h.binds,
            "NetworkMode": h.network_mode,
            "RestartPolicy": {"Name": h.restart_policy.name, "MaximumRetryCount": h.restart_policy.maximum_retry_count},
            "AutoRemove": h.auto_remove,
            "CapAdd": h.cap_add,
            "CapDrop": h.cap_drop,
            "Privileged": h.privileged,
            "ReadonlyRootfs": h.readonly_rootfs,
            "SecurityOpt": h.security_opt,
            "Init": h.init,
            "Memory": h.memory,
            "MemorySwap": h.memory_swap,
            "MemoryReservation": h.memory_reservation,
            "NanoCpus": h.nano_cpus,
            "CpuShares": h.cpu_shares,
            "CpuQuota": h.cpu_quota,
            "CpuPeriod": h.cpu_period,
            "CpusetCpus": h.cpuset_cpus,
            "PidsLimit": h.pids_limit,
            "OomKillDisable": h.oom_kill_disable,
            "Sysctls": h.sysctls,
            "ShmSize": if h.shm_size > 0 { h.shm_size } else { 64 << 20 },
            "LogConfig": {"Type": "json-file", "Config": h.log_opts},
            "Ulimits": h.ulimits.iter().map(|u| json!({"Name": u.name, "Soft": u.soft, "Hard": u.hard})).collect::<Vec<_>>(),
            "Devices": h.devices.iter().map(|d| json!({
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.cgroup_permissions,
            })).collect::<Vec<_>>(),
        },
        "GraphDriver": {
            "Name": "overlay2",
            "Data": {"MergedDir": format!("{dir}/rootfs")},
        },
        "Mounts": mounts_json(rec, data_root),
        "Config": {
            "Hostname": if s.hostname.is_empty() { rec.id[..12].to_string() } else { s.hostname.clone() },
            "Domainname": s.domainname,
            "User": s.user,
            "AttachStdin": s.attach_stdin,
            "AttachStdout": s.attach_stdout,
            "AttachStderr": s.attach_stderr,
            "Tty": s.tty,
            "OpenStdin": s.open_stdin,
            "StdinOnce": s.stdin_once,
            "Env": s.env,
            "Cmd": s.cmd,
            "Image": s.image,
            "Volumes": null,
            "WorkingDir": s.working_dir,
            "Entrypoint": if s.entrypoint.is_empty() { Value::Null } else { json!(s.entrypoint) },
            "OnBuild": null,
            "Labels": s.labels,
            "StopSignal": s.stop_signal,
            "StopTimeout": s.stop_timeout,
            "Healthcheck": s.healthcheck,
        },
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": {},
            "IPAddress": "",
            "MacAddress": "",
            "Networks": {},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_to_unix() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2024-03-01T12:00:00Z"), Some(1709294400.0));
        let f = parse_rfc3339("2024-03-01T12:00:00.5Z").unwrap();
        assert!((f - 1709294400.5).abs() < 1e-6);
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(0.2), "Less than a second");
        assert_eq!(human_duration(5.0), "5 seconds");
        assert_eq!(human_duration(90.0), "About a minute");
        assert_eq!(human_duration(600.0), "10 minutes");
    }
}
