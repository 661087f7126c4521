//! pause, unpause, rename, top, stats: operations on a running container that need no shim
//! (the runtime's cgroup and state files are enough, and none of them fork).

use std::sync::Arc;

pub use berth_runtime::cgroups::stats::BlkioEntry;
pub use berth_runtime::cgroups::Stats;
use berth_runtime::container::Runtime;

use super::model::Status;
use crate::error::{Error, Result};
use crate::{ids, Engine};

/// `ps`-like rows for `top`.
#[derive(Debug, Clone)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

impl Engine {
    fn runtime(&self) -> Runtime {
        Runtime::new(self.runtime_root())
    }

    fn running(&self, key: &str) -> Result<super::model::ContainerRecord> {
        let rec = self.container(key)?;
        if !rec.state.running() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        Ok(rec)
    }

    pub async fn pause_container(self: &Arc<Self>, key: &str) -> Result<()> {
        let mut rec = self.running(key)?;
        if rec.state.status == Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is already paused",
                rec.id
            )));
        }
        let rt = self.runtime();
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || rt.pause(&id))
            .await
            .map_err(|e| Error::internal("pause", e))?
            .map_err(|e| Error::internal("pause", e))?;
        rec.state.status = Status::Paused;
        self.db().update_container(&rec)?;
        self.emit(&rec, "pause", &[]);
        Ok(())
    }

    pub async fn unpause_container(self: &Arc<Self>, key: &str) -> Result<()> {
        let mut rec = self.container(key)?;
        if rec.state.status != Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        let rt = self.runtime();
        let id = rec.id.clone();
        tokio::task::spawn_blocking(move || rt.resume(&id))
            .await
            .map_err(|e| Error::internal("unpause", e))?
            .map_err(|e| Error::internal("unpause", e))?;
        rec.state.status = Status::Running;
        self.db().update_container(&rec)?;
        self.emit(&rec, "unpause", &[]);
        Ok(())
    }

    pub fn rename_container(&self, key: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !ids::valid_name(new_name) {
            return Err(Error::InvalidParameter(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let mut rec = self.container(key)?;
        if let Some(other) = self.db().find_container(new_name)? {
            if other.id != rec.id {
                return Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                    other.id
                )));
            }
        }
        let old = std::mem::replace(&mut rec.name, new_name.to_string());
        self.db().update_container(&rec)?;
        self.emit(&rec, "rename", &[("oldName", &format!("/{old}"))]);
        Ok(())
    }

    pub fn top_container(&self, key: &str) -> Result<Top> {
        let rec = self.running(key)?;
        let pids = self
            .runtime()
            .pids(&rec.id)
            .map_err(|e| Error::internal("list processes", e))?;
        let mut processes = Vec::new();
        for pid in pids {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // Fields after the ")" that ends comm: state ppid …
            let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
            let ppid = after.split_whitespace().nth(1).unwrap_or("0").to_string();
            let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
                })
                .unwrap_or_default();
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| {
                    b.split(|c| *c == 0)
                        .filter(|a| !a.is_empty())
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            processes.push(vec![uid, pid.to_string(), ppid, cmd]);
        }
        Ok(Top {
            titles: ["UID", "PID", "PPID", "CMD"].map(String::from).to_vec(),
            processes,
        })
    }

    pub async fn stats_container(
        self: &Arc<Self>,
        key: &str,
    ) -> Result<(super::model::ContainerRecord, Stats)> {
        let rec = self.running(key)?;
        let rt = self.runtime();
        let id = rec.id.clone();
        let stats = tokio::task::spawn_blocking(move || rt.stats(&id))
            .await
            .map_err(|e| Error::internal("stats", e))?
            .map_err(|e| Error::internal("stats", e))?;
        Ok((rec, stats))
    }
}

impl Engine {
    /// `container prune`: remove every container that is not running; returns their ids.
    pub async fn prune_containers(self: &Arc<Self>) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for c in self.list_containers(true)? {
            if c.state.running() || c.state.status == Status::Restarting {
                continue;
            }
            if self.remove_container(&c.id, false).await.is_ok() {
                removed.push(c.id);
            }
        }
        Ok(removed)
    }
}

/// `docker update`: resource limits and the restart policy; None leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct Update {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<super::model::RestartPolicy>,
}

impl Engine {
    pub async fn update_container(self: &Arc<Self>, key: &str, u: Update) -> Result<()> {
        let mut rec = self.container(key)?;
        let h = &mut rec.spec.host;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = u.$f.clone() { h.$f = v; } )* };
        }
        set!(
            memory,
            memory_swap,
            memory_reservation,
            nano_cpus,
            cpu_shares,
            cpu_quota,
            cpu_period,
            cpuset_cpus
        );
        if let Some(p) = u.pids_limit {
            h.pids_limit = Some(p);
        }
        if let Some(p) = u.restart_policy.clone() {
            p.validate().map_err(Error::InvalidParameter)?;
            if h.auto_remove && !p.is_none() {
                return Err(Error::InvalidParameter(
                    "Restart policy cannot be updated because AutoRemove is enabled for the container".into(),
                ));
            }
            h.restart_policy = p;
        }
        if rec.state.running() {
            // Device rules stay as created (the spec's devices were added to them then).
            let mut json = super::spec::resources(&rec.spec.host);
            if let Some(m) = json.as_object_mut() {
                m.remove("devices");
            }
            let res: oci_spec::runtime::LinuxResources =
                serde_json::from_value(json).map_err(|e| Error::internal("resources", e))?;
            let rt = self.runtime();
            let id = rec.id.clone();
            tokio::task::spawn_blocking(move || rt.update(&id, &res))
                .await
                .map_err(|e| Error::internal("update", e))?
                .map_err(|e| Error::InvalidParameter(format!("update: {e}")))?;
        }
        self.db().update_container(&rec)?;
        self.emit(&rec, "update", &[]);
        Ok(())
    }
}
