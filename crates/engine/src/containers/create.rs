//! `create`: merge the request with the image config, prepare the writable snapshot, record.

use std::sync::Arc;

use super::health::HealthConfig;
use super::model::{ContainerRecord, ContainerSpec, State};
use crate::error::{Error, Result};
use crate::{ids, Engine};

/// A create request; `entrypoint`/`cmd` None means "the image's".
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub spec: ContainerSpec,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// `-P`: publish every exposed port on a host port of the kernel's choosing.
    pub publish_all_ports: bool,
    /// Config.Healthcheck as the client sent it (Docker's JSON); None: the image's.
    pub healthcheck: Option<serde_json::Value>,
    /// `?platform=os/arch[/variant]`: the image must be for it (else not found, as Docker).
    pub platform: Option<String>,
    /// What to make ahead for a start that follows at once (berth's `run`).
    pub prepare: Prepare,
}

/// What a create makes ahead for a start that follows at once (berth's `run`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Prepare {
    /// Nothing: Docker's create.
    #[default]
    Nothing,
    /// The bundle here, and the process, created but not started, in the background (see
    /// `Engine::prepare_task_ahead`).
    Process,
    /// As `Process`, and the process starts as soon as it is made, its output held for the
    /// attach that follows (the shim's `--start-held`): the attach then just hooks up. Where
    /// that cannot hold (a tty, a network joined after the process exists) it is `Process`.
    StartForAttach,
}

#[derive(Debug, Clone)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// `KEY=v` entries of `over` replace those of `base` with the same key.
fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = base.to_vec();
    for e in over {
        let k = key(e);
        match out.iter_mut().find(|b| key(b) == k) {
            Some(b) => *b = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

impl Engine {
    /// The request's healthcheck over the image's (Docker's field-by-field merge).
    fn merged_healthcheck(
        &self,
        image: &berth_image::media::ResolvedImage,
        requested: Option<serde_json::Value>,
    ) -> Result<Option<HealthConfig>> {
        let requested = requested
            .filter(|v| !v.is_null())
            .map(serde_json::from_value::<HealthConfig>)
            .transpose()
            .map_err(|e| Error::InvalidParameter(format!("Config.Healthcheck: {e}")))?;
        let from_image = self.image_healthcheck(image);
        let merged = match requested {
            Some(r) => Some(r.inherit(from_image.as_ref())),
            None => from_image,
        };
        if let Some(h) = &merged {
            h.validate().map_err(Error::InvalidParameter)?;
        }
        Ok(merged)
    }

    /// The image config's Healthcheck. Image configs are Docker's JSON and the OCI types have
    /// no Healthcheck: it is read raw, once per config (kept like `resolve_row`'s).
    fn image_healthcheck(&self, image: &berth_image::media::ResolvedImage) -> Option<HealthConfig> {
        let key = image.config_digest.to_string();
        if let Some(known) = crate::lock(&self.healthchecks).get(&key) {
            return known.clone();
        }
        let read = self
            .content
            .read_json::<serde_json::Value>(&image.config_digest)
            .ok()
            .and_then(|c| c.pointer("/config/Healthcheck").cloned())
            .and_then(|h| serde_json::from_value::<HealthConfig>(h).ok());
        let mut kept = crate::lock(&self.healthchecks);
        if kept.len() >= crate::images::RESOLVED_CACHE {
            kept.clear();
        }
        kept.insert(key, read.clone());
        read
    }

    /// Container `id`'s writable snapshot on `image` (thrown away with it when `scratch`).
    /// The caller holds `store_lock`.
    pub(crate) fn prepare_snapshot(
        &self,
        id: &str,
        image: &berth_image::media::ResolvedImage,
        scratch: bool,
    ) -> Result<()> {
        let top = self.image_top_snapshot(image)?;
        if scratch {
            self.snapshots.prepare_scratch(id, top.as_ref())?;
        } else {
            self.snapshots.prepare(id, top.as_ref())?;
        }
        Ok(())
    }

    /// A container's directory: a spare one renamed into place, else made.
    pub(crate) fn make_container_dir(&self, dir: &std::path::Path, log_name: &str) -> Result<()> {
        if self.spare_dirs.take_into(dir, log_name) {
            return Ok(());
        }
        std::fs::create_dir_all(dir.join("rootfs"))
            .map_err(|e| Error::internal(format!("create {}", dir.display()), e))
    }

    pub async fn create_container(self: &Arc<Self>, req: CreateRequest) -> Result<Created> {
        let prepare = req.prepare;
        let engine = self.clone();
        let created = tokio::task::spawn_blocking(move || engine.create_blocking(req))
            .await
            .map_err(|e| Error::internal("create container", e))?;
        // (Not when the bundle could not be made: the start meets that again and reports it.)
        if let (true, Ok(c)) = (prepare != Prepare::Nothing, &created) {
            if self.containers.bundle_is_ready(&c.id) {
                self.prepare_task_ahead(&c.id, prepare == Prepare::StartForAttach);
            }
        }
        self.refill_spare_dirs();
        created
    }

    /// Top up the directories made ahead of time for the next creates (a spare snapshot and a
    /// spare container directory, see `spare_dirs`), in the background and in SCHED_IDLE: only
    /// with CPU time nothing else wants.
    pub(crate) fn refill_spare_dirs(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        /// Enough for a burst of two creates (`compose up`); more are made as usual.
        const KEEP: usize = 2;
        if self.snapshots.spares() >= KEEP && self.spare_dirs.len() >= KEEP {
            return;
        }
        if self.filling_dirs.swap(true, Ordering::AcqRel) {
            return;
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            let _idle = super::shim::IdleThread::enter();
            while engine.snapshots.spares() < KEEP {
                if let Err(e) = engine.snapshots.add_spare() {
                    tracing::debug!("spare snapshot: {e}");
                    break;
                }
            }
            while engine.spare_dirs.len() < KEEP {
                if let Err(e) = engine.spare_dirs.add() {
                    tracing::debug!("spare container directory: {e}");
                    break;
                }
            }
            engine.filling_dirs.store(false, Ordering::Release);
        });
    }

    fn create_blocking(self: &Arc<Self>, req: CreateRequest) -> Result<Created> {
        let mut reserved = None;
        let created = self.create_reserving(req, &mut reserved);
        if let (Err(_), Some(id)) = (&created, &reserved) {
            self.spares.release(id);
        }
        created
    }

    /// The create. A container whose process is made right away takes a spare shim's id (put
    /// in `reserved`), so that process is made in the cgroups the spare made for it (see
    /// `shim::Spare::id`), or in the sandbox a warm spare made for a run of the same shape
    /// (see `warm`).
    fn create_reserving(
        self: &Arc<Self>,
        req: CreateRequest,
        reserved: &mut Option<String>,
    ) -> Result<Created> {
        let prepare = req.prepare;
        let mut spec = req.spec;
        if spec.image.is_empty() {
            return Err(Error::InvalidParameter(
                "config.Image: no image given".into(),
            ));
        }
        let row = self.find_image(&spec.image)?;
        let image = self.resolve_row(&row)?;
        if let Some(p) = req
            .platform
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let want = berth_image::media::PlatformSpec::parse(p)
                .map_err(|e| Error::InvalidParameter(e.to_string()))?;
            let (os, arch) = (
                image.config.os().to_string(),
                image.config.architecture().to_string(),
            );
            if os != want.os || arch != want.architecture {
                return Err(Error::NotFound(format!(
                    "image with reference {} was found but does not match the specified platform: wanted {want}, actual: {os}/{arch}",
                    spec.image
                )));
            }
        }
        let ic = image.config.config().clone().unwrap_or_default();

        spec.env = merge_env(ic.env().as_deref().unwrap_or(&[]), &spec.env);
        match req.entrypoint {
            Some(ep) => {
                // Docker: an explicit entrypoint drops the image's cmd.
                spec.entrypoint = ep;
                spec.cmd = req.cmd.unwrap_or_default();
            }
            None => {
                spec.entrypoint = ic.entrypoint().clone().unwrap_or_default();
                spec.cmd = match req.cmd {
                    Some(c) if !c.is_empty() => c,
                    _ => ic.cmd().clone().unwrap_or_default(),
                };
            }
        }
        if spec.entrypoint.is_empty() && spec.cmd.is_empty() {
            return Err(Error::InvalidParameter("no command specified".into()));
        }
        if spec.working_dir.is_empty() {
            spec.working_dir = ic.working_dir().clone().unwrap_or_default();
        }
        if spec.user.is_empty() {
            spec.user = ic.user().clone().unwrap_or_default();
        }
        if spec.stop_signal.is_none() {
            spec.stop_signal = ic.stop_signal().clone();
        }
        spec.healthcheck = self.merged_healthcheck(&image, req.healthcheck)?;
        let mut labels: std::collections::BTreeMap<String, String> = ic
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        labels.extend(std::mem::take(&mut spec.labels));
        spec.labels = labels;
        spec.host
            .restart_policy
            .validate()
            .map_err(Error::InvalidParameter)?;
        spec.host.log_rotation().map_err(Error::InvalidParameter)?;
        for u in &spec.host.ulimits {
            u.rlimit_type().map_err(Error::InvalidParameter)?;
        }
        for d in &spec.host.devices {
            super::spec::device_entries(d).map_err(Error::InvalidParameter)?;
        }
        let caps = super::spec::capabilities_for(&spec.host);
        super::seccomp::validate(&spec.host.security_opt, &caps)
            .map_err(|e| Error::InvalidParameter(e.to_string()))?;
        if spec.host.auto_remove && !spec.host.restart_policy.is_none() {
            return Err(Error::InvalidParameter(
                "can't create 'AutoRemove' container with restart policy".into(),
            ));
        }
        let exposed: Vec<String> = ic
            .exposed_ports()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        self.net_validate_create(&mut spec, &exposed, req.publish_all_ports)?;
        let mut warnings = Vec::new();
        if spec.host.oom_kill_disable {
            // Docker's behaviour: v2 has no switch, so the setting is dropped, with a warning.
            if berth_runtime::cgroups::host_version() == berth_runtime::cgroups::Version::V2 {
                spec.host.oom_kill_disable = false;
                warnings.push(
                    "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
                );
            } else if spec.host.memory <= 0 {
                warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
            }
        }

        // -v strings join the structured mounts; volumes are created, anonymous ones named.
        for b in &spec.host.binds.clone() {
            let m = super::model::MountSpec::parse_bind(b).map_err(Error::InvalidParameter)?;
            spec.host.mounts.push(m);
        }
        // The image's VOLUMEs not covered by a mount get anonymous volumes.
        let image_volumes: Vec<String> = ic
            .volumes()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        for target in image_volumes {
            if !spec.host.mounts.iter().any(|m| m.target == target) {
                spec.host.mounts.push(super::model::MountSpec {
                    kind: super::model::MountKind::Volume,
                    target,
                    ..Default::default()
                });
            }
        }
        // A later mount on the same target wins (-v over Config.Volumes).
        let mut seen = std::collections::HashSet::new();
        let mut deduped: Vec<super::model::MountSpec> = Vec::new();
        for m in spec.host.mounts.drain(..).rev() {
            if seen.insert(m.target.clone()) {
                deduped.push(m);
            }
        }
        deduped.reverse();
        spec.host.mounts = deduped;
        for m in spec.host.mounts.iter_mut() {
            match m.kind {
                super::model::MountKind::Volume => {
                    if m.source.is_empty() {
                        m.source = ids::random_hex(32);
                        m.anonymous = true;
                    }
                    self.create_volume(&m.source, Default::default())?;
                }
                super::model::MountKind::Bind => {
                    if !m.source.starts_with('/') {
                        return Err(Error::InvalidParameter(format!(
                            "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                            m.source
                        )));
                    }
                    // Docker's -v creates a missing host directory.
                    if !std::path::Path::new(&m.source).exists() {
                        std::fs::create_dir_all(&m.source).map_err(|e| {
                            Error::InvalidParameter(format!("create bind source {}: {e}", m.source))
                        })?;
                    }
                }
                super::model::MountKind::Tmpfs => {}
            }
            if !m.target.starts_with('/') {
                return Err(Error::InvalidParameter(format!(
                    "invalid mount config: the container path {:?} must be absolute",
                    m.target
                )));
            }
        }
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.strip_prefix('/').unwrap_or(&n).to_string();
                if !ids::valid_name(&n) {
                    return Err(Error::InvalidParameter(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n
            }
            None => ids::random_name(),
        };
        // As `prepare_task_ahead` decides for the shapes made ahead (no network to join).
        let start_held = prepare == Prepare::StartForAttach && !spec.tty;
        let key = (prepare != Prepare::Nothing)
            .then(|| super::warm::key(&row.id, &spec, start_held))
            .flatten();
        let (id, warm) = match (prepare != Prepare::Nothing)
            .then(|| self.reserve_spare(key.as_deref()))
            .flatten()
        {
            Some((id, warm)) => {
                *reserved = Some(id.clone());
                (id, warm)
            }
            None => (ids::new_id(), false),
        };
        let _store = crate::lock(&self.store_lock);
        // A warm spare's container has its snapshot and directory already.
        if !warm {
            self.prepare_snapshot(&id, &image, spec.host.auto_remove)?;
        }
        let dir = self.container_dir(&id);
        let log_name = format!("{id}-json.log");
        let made = if warm {
            Ok(())
        } else {
            self.make_container_dir(&dir, &log_name)
        };
        let rec = ContainerRecord {
            id: id.clone(),
            name: name.clone(),
            created: ids::now_rfc3339(),
            image_id: row.id.clone(),
            spec,
            state: State::default(),
            restart_count: 0,
            log_path: dir.join(&log_name).display().to_string(),
        };
        let inserted = made.and_then(|_| self.db().insert_container(&rec));
        match inserted {
            Ok(true) => {
                self.events.emit(
                    "container",
                    "create",
                    &id,
                    &[("name", &name), ("image", &rec.spec.image)],
                );
                // Here, on this thread, while the client reads the answer (a failure is met
                // again, and reported, by the start).
                if prepare != Prepare::Nothing && self.prepare_bundle_with(&rec, warm).is_ok() {
                    self.containers.mark_bundle_ready(&id);
                }
                if prepare != Prepare::Nothing {
                    self.remember_run(&rec, start_held);
                }
                Ok(Created { id, warnings })
            }
            other => {
                self.unmount_rootfs(&id);
                let _ = self.snapshots.remove_active(&id);
                let _ = std::fs::remove_dir_all(&dir);
                other?;
                let holder = self
                    .db()
                    .find_container(&name)?
                    .map(|c| c.id)
                    .unwrap_or_default();
                Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge_env;

    #[test]
    fn env_override_keeps_order() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let over = vec!["A=2".to_string(), "B=3".to_string()];
        assert_eq!(merge_env(&base, &over), vec!["PATH=/bin", "A=2", "B=3"]);
    }
}
