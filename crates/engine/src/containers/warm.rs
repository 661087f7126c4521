//! Containers made ahead for the next `run` (see `berth_runtime::sandbox`).
//!
//! After a `run`, one spare shim is made *warm*: berthd makes the same container for the
//! spare's own id — its snapshot, directory, mounted rootfs and bundle — and sends the spare a
//! sandbox line, on which it sets the container up but for its process (namespaces, cgroups,
//! mounts, pivot_root), in SCHED_IDLE. A create of the same shape (`key`) takes that spare and
//! its id: it skips the snapshot and the mount, rewrites config.json, and the shim only sends
//! the sandbox its process. The runtime checks that the spec still fits (else the container is
//! created as usual). One warm spare at most; it follows the shape of the last run.

use std::sync::Arc;

use super::model::{ContainerRecord, ContainerSpec, MountKind};
use crate::error::Result;
use crate::{lock, Engine};

/// The last run's container, the model of the next warm spare's.
#[derive(Clone)]
pub(crate) struct Template {
    key: String,
    rec: ContainerRecord,
    start_held: bool,
}

#[derive(Default)]
pub(crate) struct Warmth {
    template: Option<Template>,
    /// The warm spare's id (its container's files are made), until a create takes it or it
    /// is let go.
    made: Option<String>,
    /// The spare being made warm.
    making: Option<String>,
}

/// The shape of a container, as far as its sandbox goes: its image, its spec but for what
/// only its process takes (command, environment, user, working directory) or only berthd
/// reads (labels, healthcheck, stop signal and timeout, attach flags), and whether it starts
/// at once. None: not made ahead — a terminal (its console is made at create), volumes (an
/// anonymous one is new each time), a network other than none or host (joined once the
/// process exists).
pub(crate) fn key(image_id: &str, spec: &ContainerSpec, start_held: bool) -> Option<String> {
    if spec.tty
        || !matches!(spec.host.network_mode.as_str(), "none" | "host")
        || spec.host.mounts.iter().any(|m| m.kind == MountKind::Volume)
    {
        return None;
    }
    let shape = ContainerSpec {
        user: String::new(),
        env: Vec::new(),
        cmd: Vec::new(),
        entrypoint: Vec::new(),
        working_dir: String::new(),
        labels: Default::default(),
        attach_stdin: false,
        attach_stdout: false,
        attach_stderr: false,
        stop_signal: None,
        stop_timeout: None,
        healthcheck: None,
        ..spec.clone()
    };
    serde_json::to_string(&(image_id, shape, start_held)).ok()
}

impl Engine {
    /// Reserve a spare for a create of shape `key` (see `Spares::reserve`): its id, and whether
    /// it is warm (its container's files are made; they are the new container's now).
    pub(crate) fn reserve_spare(&self, key: Option<&str>) -> Option<(String, bool)> {
        let mut warmth = lock(&self.warmth);
        let reserved = self.spares.reserve(key)?;
        if reserved.1 && warmth.made.as_deref() == Some(reserved.0.as_str()) {
            warmth.made = None;
        }
        Some(reserved)
    }

    /// After a run's create: its shape is the next warm spare's; a warm spare of another
    /// shape is let go.
    pub(crate) fn remember_run(self: &Arc<Self>, rec: &ContainerRecord, start_held: bool) {
        let Some(key) = key(&rec.image_id, &rec.spec, start_held) else {
            return;
        };
        let stale = {
            let mut warmth = lock(&self.warmth);
            if warmth.template.as_ref().is_some_and(|t| t.key == key) {
                None
            } else {
                warmth.template = Some(Template {
                    key,
                    rec: rec.clone(),
                    start_held,
                });
                warmth.made.take()
            }
        };
        if let Some(id) = stale {
            self.let_warm_go(&id);
        }
        self.warm_next();
    }

    /// berthd stops: the warm spare goes, with its container's files (containers keep
    /// running; a daemon killed leaves these files to the next one's `collect_orphans`).
    pub fn shut_down(&self) {
        let made = {
            let mut warmth = lock(&self.warmth);
            warmth.template = None;
            warmth.made.take()
        };
        if let Some(id) = made {
            self.let_warm_go(&id);
        }
    }

    /// The ids of the containers made ahead: their snapshots are live (see `collect_garbage`).
    pub(crate) fn warm_ids(&self) -> Vec<String> {
        let warmth = lock(&self.warmth);
        warmth.made.iter().chain(&warmth.making).cloned().collect()
    }

    /// Image `image_id` is deleted: a warm spare made from it is let go, and no more are made.
    pub(crate) fn forget_warm_image(&self, image_id: &str) {
        let stale = {
            let mut warmth = lock(&self.warmth);
            if warmth
                .template
                .as_ref()
                .is_none_or(|t| t.rec.image_id != image_id)
            {
                return;
            }
            warmth.template = None;
            warmth.made.take()
        };
        if let Some(id) = stale {
            self.let_warm_go(&id);
        }
    }

    /// Let the warm spare `id` go, with its container's files (not when a create took it).
    fn let_warm_go(&self, id: &str) {
        if let Some(spare) = self.spares.remove_warm(id) {
            // It exits at EOF; its sandbox is killed, its cgroups removed.
            drop(spare);
            self.discard_container_files(id);
        }
    }

    /// Make a ready spare warm for the last run's shape, unless one is (or is being made so).
    /// In the background.
    pub(crate) fn warm_next(self: &Arc<Self>) {
        let (template, id, dead) = {
            let mut warmth = lock(&self.warmth);
            if warmth.making.is_some() {
                return;
            }
            let Some(template) = warmth.template.clone() else {
                return;
            };
            let dead = match &warmth.made {
                Some(id) if self.spares.is_warm_and_ready(id) => return,
                // Its spare died: its files go.
                Some(_) => warmth.made.take(),
                None => None,
            };
            let Some(id) = self.spares.set_aside_to_warm() else {
                drop(warmth);
                if let Some(d) = dead {
                    self.discard_container_files(&d);
                }
                return;
            };
            warmth.making = Some(id.clone());
            (template, id, dead)
        };
        if let Some(d) = dead {
            self.discard_container_files(&d);
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            // At the normal class: it takes berthd's store, database and network locks, which
            // a thread in SCHED_IDLE could hold for as long as the host is busy. (The costly
            // part, the sandbox's setup, runs in the spare, in SCHED_IDLE.)
            let made = engine.make_warm(&template, &id);
            // Handed out and recorded at once (under the lock a create reserves with), so that
            // a create taking it is never mistaken for its death.
            let mut warmth = lock(&engine.warmth);
            warmth.making = None;
            let warm = match &made {
                Ok(flags) => engine
                    .spares
                    .warm_set_aside(&id, Some((flags, template.key.clone()))),
                Err(e) => {
                    tracing::debug!("spare shim not made warm: {e}");
                    engine.spares.warm_set_aside(&id, None);
                    false
                }
            };
            let current = warmth.template.as_ref().map(|t| t.key.as_str());
            let stale = match (warm, current == Some(template.key.as_str())) {
                (true, true) => {
                    warmth.made = Some(id.clone());
                    None
                }
                // The last run's shape changed meanwhile.
                (true, false) => Some(id.clone()),
                (false, _) => None,
            };
            drop(warmth);
            if made.is_ok() && !warm {
                engine.discard_container_files(&id);
            }
            if let Some(id) = stale {
                engine.let_warm_go(&id);
                engine.warm_next();
            }
        });
    }

    /// Make container `id` like the template's (not recorded: it is nobody's yet), up to its
    /// bundle; the flags of its shim. On failure nothing is left.
    fn make_warm(&self, template: &Template, id: &str) -> Result<Vec<std::ffi::OsString>> {
        let dir = self.container_dir(id);
        let log_name = format!("{id}-json.log");
        let mut rec = template.rec.clone();
        rec.id = id.to_string();
        rec.log_path = dir.join(&log_name).display().to_string();
        let made = (|| -> Result<Vec<std::ffi::OsString>> {
            {
                let _store = lock(&self.store_lock);
                let image = self.resolve_row(&self.find_image(&rec.image_id)?)?;
                self.prepare_snapshot(id, &image, rec.spec.host.auto_remove)?;
            }
            self.make_container_dir(&dir, &log_name)?;
            self.prepare_bundle(&rec)?;
            let files = self.shim_files(&rec);
            Ok(self.launch_of(&rec, &files, template.start_held)?.flags())
        })();
        if made.is_err() {
            self.discard_container_files(id);
        }
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(network: &str) -> ContainerSpec {
        let mut s = ContainerSpec {
            image: "busybox".into(),
            cmd: vec!["true".into()],
            ..Default::default()
        };
        s.host.network_mode = network.into();
        s
    }

    #[test]
    fn the_shape_leaves_out_what_only_the_process_takes() {
        let a = spec("none");
        let mut b = a.clone();
        b.cmd = vec!["echo".into(), "hi".into()];
        b.env = vec!["X=1".into()];
        b.user = "1000".into();
        b.working_dir = "/tmp".into();
        b.labels.insert("a".into(), "b".into());
        assert_eq!(key("img", &a, true), key("img", &b, true));
        assert!(key("img", &a, true).is_some());

        let mut c = a.clone();
        c.host.memory = 1 << 20;
        assert_ne!(key("img", &a, true), key("img", &c, true), "limits");
        assert_ne!(key("img", &a, true), key("other", &a, true), "image");
        assert_ne!(key("img", &a, true), key("img", &a, false), "start");
        let mut d = a.clone();
        d.hostname = "h".into();
        assert_ne!(key("img", &a, true), key("img", &d, true), "hostname");
    }

    #[test]
    fn terminals_volumes_and_joined_networks_are_not_made_ahead() {
        assert!(key("img", &spec("host"), true).is_some());
        assert!(key("img", &spec("bridge"), true).is_none());
        assert!(key("img", &spec(""), true).is_none());
        let mut tty = spec("none");
        tty.tty = true;
        assert!(key("img", &tty, false).is_none());
        let mut vol = spec("none");
        vol.host.mounts.push(super::super::model::MountSpec {
            kind: MountKind::Volume,
            target: "/data".into(),
            ..Default::default()
        });
        assert!(key("img", &vol, true).is_none());
    }
}
