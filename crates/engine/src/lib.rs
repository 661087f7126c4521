//! berth's engine: the daemon's services and the only owner of state.
//!
//! - `images`: local images (load, list, inspect) over `berth_image`'s content store and
//!   overlay snapshots, named in the state database.
//! - `containers`: create/start/stop/kill/wait/remove/logs/exec; every container process is
//!   held by its own `berth-shim`, which outlives berthd; the engine re-adopts shims on start.
//! - `commit`, `history`, `image_config`: images made from containers (commit) and root
//!   filesystem tarballs (import), their configs and history; `containers::changes`: diff and
//!   export.
//! - `db`: the SQLite state database (WAL).
//! - `networks`: container networking over `berth_network` (bridge by default, user networks,
//!   ports, embedded DNS), its state persisted in the database and reconciled at start.
//!
//! The engine speaks no HTTP: the API crate maps Docker's JSON onto these calls.

pub mod commit;
pub mod containers;
pub mod db;
pub mod error;
pub mod events;
pub mod history;
pub mod ids;
pub mod image_config;
pub mod images;
pub mod networks;
pub mod registry;
pub mod system;
mod trash;
pub mod volumes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use berth_image::snapshot::Snapshotter;
use berth_image::ContentStore;

pub use containers::model::{
    ContainerRecord, ContainerSpec, DeviceMapping, HostSpec, MountKind, MountSpec, RestartPolicy,
    State, Status, Ulimit,
};
pub use error::{Error, Result};

/// Where the engine keeps things.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state: database, blobs, snapshots, containers (default /var/lib/berth).
    pub data_root: PathBuf,
    /// Runtime state: shim sockets, exit files, runtime state (default /run/berth).
    pub exec_root: PathBuf,
    /// The `berth-shim` binary; None: next to the running executable, then $PATH.
    pub shim_binary: Option<PathBuf>,
    /// Insecure registries, mirrors, download/upload limits.
    pub registry: registry::RegistryConfig,
    /// Default bridge, its subnet and the pool for user networks (daemon.json `bip`, `bridge`,
    /// `default-address-pools`); None: berth's defaults. Used when the network state is first made.
    pub network: Option<berth_network::Settings>,
}

pub struct Engine {
    cfg: Config,
    shim_binary: PathBuf,
    db: Mutex<db::Db>,
    content: ContentStore,
    snapshots: Snapshotter,
    containers: containers::Registry,
    net: networks::Networking,
    distribution: registry::Distribution,
    /// Held by image loads, container creation and garbage collection: a collection must not
    /// see blobs or snapshots that are written but not yet recorded.
    store_lock: Mutex<()>,
    trash: trash::Trash,
    /// A shim started ahead of time, so a start does not wait for one to exec.
    spares: Arc<containers::shim::Spares>,
    /// The last run's shape and the spare made warm for it (see `containers::warm`).
    warmth: Mutex<containers::warm::Warmth>,
    /// Container directories made ahead of time (see `containers::spare_dirs`).
    spare_dirs: containers::spare_dirs::SpareDirs,
    /// A refill of `spare_dirs` and the snapshotter's spares is under way.
    filling_dirs: std::sync::atomic::AtomicBool,
    /// Parsed manifests and configs by manifest digest (see `resolve_row`).
    resolved: Mutex<HashMap<String, Arc<berth_image::media::ResolvedImage>>>,
    /// Image configs' Healthcheck by config digest (see `image_healthcheck`).
    healthchecks: Mutex<HashMap<String, Option<containers::health::HealthConfig>>>,
    pub events: events::Events,
    started: std::time::Instant,
}

impl Engine {
    /// Open the state under the configured roots and re-adopt the shims of running containers.
    /// Must be called inside a tokio runtime (monitors are spawned).
    pub async fn open(cfg: Config) -> Result<Arc<Engine>> {
        check_exec_root(&cfg.exec_root)?;
        for d in [
            cfg.data_root.clone(),
            cfg.data_root.join("containers"),
            cfg.data_root.join("volumes"),
            cfg.exec_root.join("shims"),
            cfg.exec_root.join("runtime"),
        ] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::internal(format!("create {}", d.display()), e))?;
        }
        // Containers' directories come and go like snapshots: spread them over ext4's block
        // groups too (best effort; see berth_image::snapshot::mark_top_directory).
        if let Err(e) = berth_image::snapshot::mark_top_directory(&cfg.data_root.join("containers"))
        {
            tracing::debug!("mark containers/ as a top directory: {e}");
        }
        let db = db::Db::open(&cfg.data_root.join("berth.db"))?;
        let content = ContentStore::open(&cfg.data_root)?;
        let snapshots = Snapshotter::open(cfg.data_root.join("snapshots"), None)?;
        let shim_binary = find_shim(cfg.shim_binary.as_deref())?;
        let net = networks::Networking::open(&cfg.data_root.join("berth.db"), cfg.network.clone())?;
        let distribution = registry::Distribution::open(
            &cfg.data_root,
            cfg.registry.clone(),
            content.clone(),
            snapshots.clone(),
        )?;
        let trash = trash::Trash::open(&cfg.data_root)
            .map_err(|e| Error::internal("open the trash directory", e))?;
        let spares = Arc::new(containers::shim::Spares::new(shim_binary.clone()));
        let spare_dirs = containers::spare_dirs::SpareDirs::open(&cfg.data_root.join("containers"));
        let engine = Arc::new(Engine {
            cfg,
            shim_binary,
            spares,
            warmth: Mutex::new(Default::default()),
            spare_dirs,
            filling_dirs: Default::default(),
            resolved: Mutex::new(HashMap::new()),
            healthchecks: Mutex::new(HashMap::new()),
            db: Mutex::new(db),
            content,
            snapshots,
            containers: containers::Registry::default(),
            net,
            distribution,
            store_lock: Mutex::new(()),
            trash,
            events: events::Events::default(),
            started: std::time::Instant::now(),
        });
        engine.recover().await?;
        engine.collect_orphans()?;
        engine.net_recover()?;
        // A new spare may be the next warm one (see `containers::warm`).
        let weak = Arc::downgrade(&engine);
        engine.spares.on_ready(Box::new(move || {
            if let Some(engine) = weak.upgrade() {
                engine.warm_next();
            }
        }));
        engine.spares.refill();
        engine.refill_spare_dirs();
        Ok(engine)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn db(&self) -> MutexGuard<'_, db::Db> {
        // A panic while holding the lock poisons it; the database itself is still consistent.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    /// Named by the id's first 16 hex digits: a unix socket path must fit in 108 bytes, and a
    /// 64-digit id under a long --exec-root would not.
    fn shim_socket(&self, id: &str) -> PathBuf {
        shim_socket_in(&self.cfg.exec_root, id)
    }

    fn exit_file(&self, id: &str) -> PathBuf {
        // (A regular file: no length limit, the full id is fine.)
        self.cfg.exec_root.join("shims").join(format!("{id}.exit"))
    }

    fn runtime_root(&self) -> PathBuf {
        self.cfg.exec_root.join("runtime")
    }
}

fn find_shim(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    if let Ok(p) = std::env::var("BERTH_SHIM") {
        return Ok(PathBuf::from(p));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = dir.join("berth-shim");
        if p.exists() {
            return Ok(p);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("berth-shim");
        if p.exists() {
            return Ok(p);
        }
    }
    Err(Error::Internal(
        "berth-shim not found (next to berthd, in $PATH, or $BERTH_SHIM)".into(),
    ))
}

/// Shared by the registries of containers and execs.
pub(crate) type Map<T> = Mutex<HashMap<String, T>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Longest socket path the kernel accepts (sun_path holds 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

fn shim_socket_in(exec_root: &std::path::Path, id: &str) -> PathBuf {
    let short = &id[..id.len().min(16)];
    exec_root.join("shims").join(format!("{short}.sock"))
}

/// Refuse an --exec-root whose shim sockets could not be bound, with a clear message.
fn check_exec_root(exec_root: &std::path::Path) -> Result<()> {
    let probe = shim_socket_in(exec_root, &"0".repeat(64));
    let len = probe.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::InvalidParameter(format!(
            "--exec-root {} is too long: shim sockets like {} would be {len} bytes, over the \
             kernel's {MAX_SOCKET_PATH}-byte limit for unix sockets",
            exec_root.display(),
            probe.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod socket_path_tests {
    use super::*;

    #[test]
    fn shim_sockets_fit_and_long_exec_roots_are_refused() {
        let ok = std::path::Path::new("/tmp/berth-bench.AbCdEf/berth-run");
        check_exec_root(ok).unwrap();
        let id = "a".repeat(64);
        assert!(shim_socket_in(ok, &id).as_os_str().len() <= MAX_SOCKET_PATH);
        let long = std::path::PathBuf::from(format!("/tmp/{}", "x".repeat(90)));
        let err = check_exec_root(&long).unwrap_err().to_string();
        assert!(
            err.contains("--exec-root") && err.contains("too long"),
            "{err}"
        );
    }
}
