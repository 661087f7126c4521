//! Facts about the daemon for `version` and `info`.

use crate::containers::model::Status;
use crate::error::Result;
use crate::Engine;

#[derive(Debug, Clone)]
pub struct Info {
    pub containers: usize,
    pub running: usize,
    pub paused: usize,
    pub stopped: usize,
    pub images: usize,
    pub data_root: String,
    pub exec_root: String,
    pub storage_driver: String,
    pub uptime_secs: u64,
}

impl Engine {
    pub fn info(&self) -> Result<Info> {
        let containers = self.db().containers()?;
        let count = |s: &[Status]| {
            containers
                .iter()
                .filter(|c| s.contains(&c.state.status))
                .count()
        };
        Ok(Info {
            containers: containers.len(),
            running: count(&[Status::Running]),
            paused: count(&[Status::Paused]),
            stopped: containers.len() - count(&[Status::Running, Status::Paused]),
            images: self.db().images()?.len(),
            data_root: self.cfg.data_root.display().to_string(),
            exec_root: self.cfg.exec_root.display().to_string(),
            storage_driver: match self.snapshots.backend() {
                berth_image::snapshot::Backend::Overlay => "overlay2".into(),
                _ => "vfs".into(),
            },
            uptime_secs: self.started.elapsed().as_secs(),
        })
    }
}
