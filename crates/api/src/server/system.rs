//! _ping, version, info.

use hyper::{Method, Response, StatusCode};
use serde_json::json;

use super::body::{self, Body};
use super::error;
use super::Ctx;
use crate::types::{Version, API_VERSION, MIN_API_VERSION};

pub fn ping(m: &Method) -> Response<Body> {
    let mut r = if m == Method::HEAD {
        body::empty(StatusCode::OK)
    } else {
        body::text(StatusCode::OK, "OK")
    };
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate"
            .parse()
            .unwrap_or_else(|_| hyper::header::HeaderValue::from_static("no-cache")),
    );
    h.insert(
        "Docker-Experimental",
        hyper::header::HeaderValue::from_static("false"),
    );
    h.insert(
        "Builder-Version",
        hyper::header::HeaderValue::from_static("1"),
    );
    r
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version() -> Response<Body> {
    let v = Version {
        version: env!("CARGO_PKG_VERSION").into(),
        api_version: API_VERSION.into(),
        min_api_version: MIN_API_VERSION.into(),
        git_commit: String::new(),
        go_version: "rust".into(),
        os: "linux".into(),
        arch: arch().into(),
        kernel_version: kernel(),
        build_time: String::new(),
        components: vec![json!({
            "Name": "Engine",
            "Version": env!("CARGO_PKG_VERSION"),
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux", "Arch": arch()},
        })],
        platform: json!({"Name": "berth"}),
    };
    body::json(StatusCode::OK, &v)
}

pub fn info(ctx: &Ctx) -> Response<Body> {
    let i = match ctx.engine.info() {
        Ok(i) => i,
        Err(e) => return error::response(&e),
    };
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|k| k.parse::<u64>().ok())
                })
        })
        .unwrap_or(0)
        * 1024;
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    body::json(
        StatusCode::OK,
        &json!({
            "ID": "berth",
            "Containers": i.containers,
            "ContainersRunning": i.running,
            "ContainersPaused": i.paused,
            "ContainersStopped": i.stopped,
            "Images": i.images,
            "Driver": i.storage_driver,
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": false,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": humantime_now(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "KernelVersion": kernel(),
            "OperatingSystem": "berth",
            "OSType": "linux",
            "OSVersion": "",
            "Architecture": std::env::consts::ARCH,
            "NCPU": ncpu,
            "MemTotal": mem,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": ctx.engine.registry_info(),
            "DockerRootDir": i.data_root,
            "Name": host,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth-runtime"}},
            "DefaultRuntime": "berth",
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": security_options(),
            "Warnings": [],
        }),
    )
}

/// Docker's list: seccomp with the built-in default profile when the kernel has seccomp (every
/// container gets it unless unconfined or privileged).
fn security_options() -> Vec<&'static str> {
    let seccomp = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Seccomp:")))
        .unwrap_or(false);
    if seccomp {
        vec!["name=seccomp,profile=builtin"]
    } else {
        Vec::new()
    }
}

fn humantime_now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// GET /system/df.
pub fn df(ctx: &Ctx) -> Response<Body> {
    let e = &ctx.engine;
    let (images, containers, volumes) =
        match (e.list_images(), e.list_containers(true), e.list_volumes()) {
            (Ok(i), Ok(c), Ok(v)) => (i, c, v),
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => return error::response(&err),
        };
    let images_json: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            let n = containers.iter().filter(|c| c.image_id == i.id).count();
            json!({"Id": i.id, "ParentId": "", "RepoTags": i.repo_tags, "RepoDigests": [],
                   "Created": i.created, "Size": i.size, "SharedSize": -1, "Labels": i.labels,
                   "Containers": n})
        })
        .collect();
    let containers_json: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            let mut s = serde_json::to_value(super::convert::summary(c)).unwrap_or_default();
            let (rw, _) = super::containers::sizes(e, c);
            s["SizeRw"] = json!(rw);
            s["SizeRootFs"] = json!(e.image_size(&c.image_id));
            s
        })
        .collect();
    let volumes_json: Vec<serde_json::Value> = volumes
        .iter()
        .map(|v| {
            let (size, refs) = e.volume_usage(&v.name).unwrap_or((0, 0));
            json!({"Name": v.name, "Driver": "local", "Mountpoint": v.mountpoint, "CreatedAt": v.created,
                   "Labels": v.labels, "Scope": "local", "Options": {},
                   "UsageData": {"Size": size, "RefCount": refs}})
        })
        .collect();
    let layers: i64 = images.iter().map(|i| i.size).sum();
    body::json(
        StatusCode::OK,
        &json!({"LayersSize": layers, "Images": images_json, "Containers": containers_json,
                "Volumes": volumes_json, "BuildCache": []}),
    )
}
