//! TEMPORARY minimal v1 cgroups (replaced by the cgroups branch).
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {}

pub trait Manager: Send + Sync + std::fmt::Debug {
    fn version(&self) -> Version;
    fn create(&self, resources: Option<&LinuxResources>) -> Result<()>;
    fn add_process(&self, pid: i32) -> Result<()>;
    fn update(&self, resources: &LinuxResources) -> Result<()>;
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> Result<bool>;
    fn pids(&self) -> Result<Vec<i32>>;
    fn stats(&self) -> Result<Stats>;
    fn destroy(&self) -> Result<()>;
    fn exists(&self) -> bool;
}

const CONTROLLERS: [&str; 6] = ["memory", "pids", "freezer", "cpu", "cpuacct", "devices"];

#[derive(Debug)]
struct V1 {
    rel: PathBuf,
}

impl V1 {
    fn dir(&self, c: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup").join(c).join(&self.rel)
    }
    fn err(&self, e: std::io::Error) -> Error {
        Error::Cgroup {
            path: self.rel.clone(),
            reason: e.to_string(),
        }
    }
}

pub fn open(cgroups_path: Option<&str>, container_id: &str) -> Result<Box<dyn Manager>> {
    let p = cgroups_path
        .map(|s| s.trim_start_matches('/').to_string())
        .unwrap_or_else(|| format!("berth/{container_id}"));
    Ok(Box::new(V1 {
        rel: PathBuf::from(p),
    }))
}

impl Manager for V1 {
    fn version(&self) -> Version {
        Version::V1
    }
    fn create(&self, r: Option<&LinuxResources>) -> Result<()> {
        for c in CONTROLLERS {
            std::fs::create_dir_all(self.dir(c)).map_err(|e| self.err(e))?;
        }
        if let Some(m) = r.and_then(|r| r.memory().as_ref()).and_then(|m| m.limit()) {
            std::fs::write(
                self.dir("memory").join("memory.limit_in_bytes"),
                m.to_string(),
            )
            .map_err(|e| self.err(e))?;
        }
        if let Some(p) = r.and_then(|r| r.pids().as_ref()) {
            std::fs::write(self.dir("pids").join("pids.max"), p.limit().to_string())
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
    fn add_process(&self, pid: i32) -> Result<()> {
        for c in CONTROLLERS {
            std::fs::write(self.dir(c).join("cgroup.procs"), pid.to_string())
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }
    fn update(&self, r: &LinuxResources) -> Result<()> {
        self.create(Some(r))
    }
    fn freeze(&self) -> Result<()> {
        std::fs::write(self.dir("freezer").join("freezer.state"), "FROZEN").map_err(|e| self.err(e))
    }
    fn thaw(&self) -> Result<()> {
        std::fs::write(self.dir("freezer").join("freezer.state"), "THAWED").map_err(|e| self.err(e))
    }
    fn is_frozen(&self) -> Result<bool> {
        Ok(
            std::fs::read_to_string(self.dir("freezer").join("freezer.state"))
                .map_err(|e| self.err(e))?
                .trim()
                == "FROZEN",
        )
    }
    fn pids(&self) -> Result<Vec<i32>> {
        let s = std::fs::read_to_string(self.dir("pids").join("cgroup.procs")).unwrap_or_default();
        Ok(s.lines().filter_map(|l| l.parse().ok()).collect())
    }
    fn stats(&self) -> Result<Stats> {
        Ok(Stats {})
    }
    fn destroy(&self) -> Result<()> {
        for c in CONTROLLERS {
            let _ = std::fs::remove_dir(self.dir(c));
        }
        Ok(())
    }
    fn exists(&self) -> bool {
        self.dir("memory").exists()
    }
}
