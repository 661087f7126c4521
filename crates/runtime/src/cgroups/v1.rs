//! cgroup v1: one directory per hierarchy (memory, cpu, cpuset, ...), each set on its own.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxResources};

use super::fsutil::{self, cgroup_err, set, write};
use super::path::{self, CgroupMount, CgroupPath};
use super::stats::{self, Stats, V1Dirs};
use super::validate::{kernel_limit, validate};
use super::{devices, Manager, Version};
use crate::error::Result;

/// One mounted v1 hierarchy and the container's cgroup directory in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    controllers: Vec<String>,
    dir: PathBuf,
}

#[derive(Debug)]
pub struct V1Manager {
    hierarchies: Vec<Hierarchy>,
    /// On hybrid hosts, the container's cgroup in the cgroup2 hierarchy: joined (best effort) so
    /// tools that read /proc/<pid>/cgroup's "0::" line find the container; holds no limits.
    unified: Option<PathBuf>,
}

impl V1Manager {
    /// From the host's mounts (/proc/self/mountinfo).
    pub(crate) fn from_mounts(mounts: &[CgroupMount], cgroup: &CgroupPath) -> Result<Self> {
        let own = path::own_cgroups();
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut unified = None;
        for m in mounts {
            if m.v2 {
                if unified.is_none() {
                    let own_path = path::own_v2_path(&own);
                    unified = Some(cgroup.dir_in(&m.mountpoint, &m.root, &own_path));
                }
                continue;
            }
            if m.controllers.is_empty() {
                continue;
            }
            let mut set: Vec<String> = m.controllers.clone();
            set.sort();
            // The same hierarchy mounted twice: keep the first mount.
            if hierarchies.iter().any(|h| {
                let mut s = h.controllers.clone();
                s.sort();
                s == set
            }) {
                continue;
            }
            let own_path = path::own_v1_path(&own, &m.controllers);
            hierarchies.push(Hierarchy {
                controllers: m.controllers.clone(),
                dir: cgroup.dir_in(&m.mountpoint, &m.root, &own_path),
            });
        }
        if hierarchies.is_empty() {
            return Err(cgroup_err(
                "/sys/fs/cgroup",
                "no cgroup v1 hierarchy is mounted",
            ));
        }
        Ok(V1Manager {
            hierarchies,
            unified,
        })
    }

    /// From a directory holding one hierarchy per subdirectory ("memory", "cpu,cpuacct", a
    /// "cpu" symlink to it, "systemd" for name=systemd, "unified" for a hybrid cgroup2).
    pub(crate) fn from_root(root: &Path, cgroup: &CgroupPath) -> Result<Self> {
        let entries = fs::read_dir(root).map_err(|e| cgroup_err(root, format!("list: {e}")))?;
        let mut mounts = Vec::new();
        let mut seen = BTreeSet::new();
        let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let Ok(real) = fs::canonicalize(&p) else {
                continue;
            };
            if !real.is_dir() || !seen.insert(real.clone()) {
                continue;
            }
            let name = real
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let v2 = real.join("cgroup.controllers").exists();
            let controllers = if v2 {
                Vec::new()
            } else if name == "systemd" {
                vec!["name=systemd".to_string()]
            } else {
                name.split(',').map(str::to_string).collect()
            };
            mounts.push(CgroupMount {
                mountpoint: real,
                root: PathBuf::from("/"),
                controllers,
                v2,
            });
        }
        Self::from_mounts(&mounts, cgroup)
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.iter().any(|c| c == controller))
            .map(|h| h.dir.as_path())
    }

    fn need(&self, controller: &str, field: &str) -> Result<&Path> {
        self.dir(controller).ok_or_else(|| {
            cgroup_err(
                self.display_path(),
                format!("linux.resources.{field}: the {controller} controller is not mounted"),
            )
        })
    }

    fn display_path(&self) -> &Path {
        self.hierarchies[0].dir.as_path()
    }

    /// The cgroup's directory in each v1 hierarchy (not the hybrid cgroup2 one).
    pub(crate) fn hierarchy_dirs(&self) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.dir.clone()).collect()
    }

    /// On a hybrid host, the cgroup's directory in the cgroup2 hierarchy.
    pub(crate) fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// mkdir the cgroup in every v1 hierarchy (a spare's: see `SpareCgroup`).
    pub(crate) fn make_hierarchy_dirs(&self) -> Result<()> {
        let mut made = Vec::new();
        let result = self.make_v1_dirs(&mut made);
        if result.is_err() {
            for d in made.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        result
    }

    /// mkdir the cgroup in every hierarchy, recording each directory made (shallowest first).
    fn make_dirs(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        self.make_v1_dirs(made)?;
        if let Some(u) = &self.unified {
            match fsutil::create_dirs(u) {
                Ok(new) => made.extend(new),
                Err(e) => tracing::warn!("hybrid cgroup2 hierarchy skipped: {e}"),
            }
        }
        Ok(())
    }

    fn make_v1_dirs(&self, made: &mut Vec<PathBuf>) -> Result<()> {
        for h in &self.hierarchies {
            let new = fsutil::create_dirs(&h.dir)?;
            made.extend(new.iter().cloned());
            if h.controllers.iter().any(|c| c == "cpuset") {
                // A new v1 cpuset starts with no CPUs or memory nodes; inherit the parent's.
                for d in &new {
                    inherit_cpuset(d)?;
                }
            }
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources, update: bool) -> Result<()> {
        if let Some(m) = r.memory() {
            set_memory(self.need("memory", "memory")?, m)?;
        }
        if let Some(c) = r.cpu() {
            if cpu_knobs_set(c) {
                set_cpu(self.need("cpu", "cpu")?, c)?;
            }
            for (file, value, field) in [
                ("cpuset.cpus", c.cpus(), "cpu.cpus"),
                ("cpuset.mems", c.mems(), "cpu.mems"),
            ] {
                if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
                    set(self.need("cpuset", field)?, file, v, field)?;
                }
            }
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                let v = if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".to_string()
                };
                set(
                    self.need("pids", "pids.limit")?,
                    "pids.max",
                    &v,
                    "pids.limit",
                )?;
            }
        }
        if let Some(b) = r.block_io() {
            set_blkio(self.need("blkio", "blockIO")?, b)?;
        }
        for h in r.hugepage_limits().iter().flatten() {
            let Some(dir) = self.dir("hugetlb") else {
                tracing::warn!("hugepageLimits ignored: the hugetlb controller is not mounted");
                break;
            };
            let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
            require_file(dir, &file, "hugepageLimits.pageSize")?;
            set(dir, &file, &h.limit().to_string(), "hugepageLimits.limit")?;
        }
        if let Some(n) = r.network() {
            if let Some(id) = n.class_id() {
                match self.dir("net_cls") {
                    Some(d) => set(d, "net_cls.classid", &id.to_string(), "network.classID")?,
                    None => tracing::warn!("network.classID ignored: net_cls is not mounted"),
                }
            }
            for p in n.priorities().iter().flatten() {
                match self.dir("net_prio") {
                    Some(d) => set(
                        d,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                        "network.priorities",
                    )?,
                    None => {
                        tracing::warn!("network.priorities ignored: net_prio is not mounted");
                        break;
                    }
                }
            }
        }
        if let Some(rdma) = r.rdma() {
            match self.dir("rdma") {
                Some(d) => super::set_rdma(d, rdma)?,
                None if rdma.is_empty() => {}
                None => tracing::warn!("rdma limits ignored: the rdma controller is not mounted"),
            }
        }
        // An update without device rules leaves the device policy alone.
        if !update || r.devices().is_some() {
            self.set_devices(r.devices().as_deref(), update)?;
        }
        Ok(())
    }

    /// The rules are written from a deny-all reset, which for a moment denies everything to a
    /// running container; an update whose rules are already in force writes nothing.
    fn set_devices(&self, spec: Option<&[LinuxDeviceCgroup]>, update: bool) -> Result<()> {
        let rules = devices::effective_rules(spec).map_err(|why| {
            cgroup_err(
                self.display_path(),
                format!("linux.resources.devices: {why}"),
            )
        })?;
        let dir = self.need("devices", "devices")?;
        let lines = devices::v1_lines(&rules);
        if update && current_device_list(dir)? == devices::v1_expected_list(&lines) {
            return Ok(());
        }
        for (file, line) in lines {
            set(dir, file, &line, "devices")?;
        }
        Ok(())
    }

    fn freezer(&self) -> Result<&Path> {
        self.dir("freezer")
            .ok_or_else(|| cgroup_err(self.display_path(), "the freezer controller is not mounted"))
    }

    fn freezer_state(&self) -> Result<String> {
        Ok(fsutil::read(self.freezer()?, "freezer.state")?
            .trim()
            .to_string())
    }
}

/// devices.list as sorted lines.
fn current_device_list(dir: &Path) -> Result<Vec<String>> {
    let mut list: Vec<String> = fsutil::read(dir, "devices.list")?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    list.sort();
    Ok(list)
}

fn cpu_knobs_set(c: &LinuxCpu) -> bool {
    c.shares().is_some()
        || c.quota().is_some()
        || c.period().is_some()
        || c.burst().is_some()
        || c.idle().is_some()
        || c.realtime_period().is_some()
        || c.realtime_runtime().is_some()
}

fn require_file(dir: &Path, file: &str, field: &str) -> Result<()> {
    if dir.join(file).exists() {
        Ok(())
    } else {
        Err(cgroup_err(
            dir.join(file),
            format!("linux.resources.{field}: not supported by this kernel (no {file})"),
        ))
    }
}

fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let mine = fsutil::read_opt(dir, file)?.unwrap_or_default();
        if mine.trim().is_empty() {
            let theirs = fsutil::read(parent, file)?;
            if !theirs.trim().is_empty() {
                write(dir, file, theirs.trim())?;
            }
        }
    }
    Ok(())
}

fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // Unlimited memory with swap unset means unlimited swap too; otherwise the old memsw limit
    // would cap the new unlimited memory.
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    if m.check_before_update() == Some(true) && limit > 0 {
        let usage = fsutil::read_u64_opt(dir, "memory.usage_in_bytes")?.unwrap_or(0);
        if (limit as u64) < usage {
            return Err(cgroup_err(
                dir,
                format!("linux.resources.memory.limit: {limit} is below current usage {usage}"),
            ));
        }
    }
    let has_memsw = dir.join("memory.memsw.limit_in_bytes").exists();
    if swap > 0 && !has_memsw {
        return Err(cgroup_err(
            dir,
            "linux.resources.memory.swap: this kernel has no swap accounting (memory.memsw.*)",
        ));
    }
    let set_limit = |v: i64| set(dir, "memory.limit_in_bytes", &v.to_string(), "memory.limit");
    let set_swap = |v: i64| {
        set(
            dir,
            "memory.memsw.limit_in_bytes",
            &v.to_string(),
            "memory.swap",
        )
    };
    let swap_settable = swap != 0 && has_memsw;
    if limit != 0 && swap_settable {
        // memsw must stay >= memory at every step: raise memsw first when it grows.
        let current = fsutil::read_u64_opt(dir, "memory.limit_in_bytes")?.unwrap_or(0);
        if swap == -1 || current < swap as u64 {
            set_swap(swap)?;
            set_limit(limit)?;
        } else {
            set_limit(limit)?;
            set_swap(swap)?;
        }
    } else if limit != 0 {
        set_limit(limit)?;
    } else if swap_settable {
        set_swap(swap)?;
    }
    if let Some(v) = m.reservation().filter(|&v| v != 0) {
        set(
            dir,
            "memory.soft_limit_in_bytes",
            &v.to_string(),
            "memory.reservation",
        )?;
    }
    if let Some(v) = kernel_limit(m).filter(|&v| v != 0) {
        set_if_supported(dir, "memory.kmem.limit_in_bytes", v, "memory.kernel")?;
    }
    if let Some(v) = m.kernel_tcp().filter(|&v| v != 0) {
        set_if_supported(dir, "memory.kmem.tcp.limit_in_bytes", v, "memory.kernelTCP")?;
    }
    if let Some(v) = m.swappiness() {
        set(
            dir,
            "memory.swappiness",
            &v.to_string(),
            "memory.swappiness",
        )?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        let v = if disable { "1" } else { "0" };
        set(dir, "memory.oom_control", v, "memory.disableOOMKiller")?;
    }
    Ok(())
}

/// Kernel memory limits went away in Linux 5.16+ (the file may stay and refuse writes).
fn set_if_supported(dir: &Path, file: &str, v: i64, field: &str) -> Result<()> {
    if !dir.join(file).exists() {
        tracing::warn!("linux.resources.{field} ignored: {file} not supported by this kernel");
        return Ok(());
    }
    match fsutil::write_raw(&dir.join(file), &v.to_string()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            tracing::warn!("linux.resources.{field} ignored: {file}: {e}");
            Ok(())
        }
        Err(e) => Err(cgroup_err(
            dir.join(file),
            format!("linux.resources.{field}: write {v}: {e}"),
        )),
    }
}

fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        set(dir, "cpu.shares", &s.to_string(), "cpu.shares")?;
    }
    let period = c.period().filter(|&p| p != 0);
    let quota = c.quota().filter(|&q| q != 0);
    if let Some(p) = period {
        let r = set(dir, "cpu.cfs_period_us", &p.to_string(), "cpu.period");
        match (r, quota) {
            // A shorter period can clash with the old quota: set the quota first, then retry.
            (Err(_), Some(q)) => {
                set(dir, "cpu.cfs_quota_us", &q.to_string(), "cpu.quota")?;
                set(dir, "cpu.cfs_period_us", &p.to_string(), "cpu.period")?;
            }
            (r, _) => r?,
        }
    }
    if let Some(q) = quota {
        set(dir, "cpu.cfs_quota_us", &q.to_string(), "cpu.quota")?;
    }
    if let Some(b) = c.burst() {
        require_file(dir, "cpu.cfs_burst_us", "cpu.burst")?;
        set(dir, "cpu.cfs_burst_us", &b.to_string(), "cpu.burst")?;
    }
    if let Some(p) = c.realtime_period().filter(|&p| p != 0) {
        require_file(dir, "cpu.rt_period_us", "cpu.realtimePeriod")?;
        set(
            dir,
            "cpu.rt_period_us",
            &p.to_string(),
            "cpu.realtimePeriod",
        )?;
    }
    if let Some(r) = c.realtime_runtime().filter(|&r| r != 0) {
        require_file(dir, "cpu.rt_runtime_us", "cpu.realtimeRuntime")?;
        set(
            dir,
            "cpu.rt_runtime_us",
            &r.to_string(),
            "cpu.realtimeRuntime",
        )?;
    }
    if let Some(i) = c.idle() {
        require_file(dir, "cpu.idle", "cpu.idle")?;
        set(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    Ok(())
}

fn set_blkio(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // CFQ's files when present, else BFQ's (the only proportional scheduler on newer kernels).
    let weight_file = |cfq: &'static str, bfq: &'static str| -> &'static str {
        if dir.join(cfq).exists() {
            cfq
        } else {
            bfq
        }
    };
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        let file = weight_file("blkio.weight", "blkio.bfq.weight");
        require_file(dir, file, "blockIO.weight")?;
        set(dir, file, &w.to_string(), "blockIO.weight")?;
    }
    if let Some(w) = b.leaf_weight().filter(|&w| w != 0) {
        require_file(dir, "blkio.leaf_weight", "blockIO.leafWeight")?;
        set(
            dir,
            "blkio.leaf_weight",
            &w.to_string(),
            "blockIO.leafWeight",
        )?;
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            let file = weight_file("blkio.weight_device", "blkio.bfq.weight_device");
            require_file(dir, file, "blockIO.weightDevice")?;
            let line = format!("{}:{} {w}", d.major(), d.minor());
            set(dir, file, &line, "blockIO.weightDevice")?;
        }
        if let Some(w) = d.leaf_weight().filter(|&w| w != 0) {
            require_file(
                dir,
                "blkio.leaf_weight_device",
                "blockIO.weightDevice.leafWeight",
            )?;
            let line = format!("{}:{} {w}", d.major(), d.minor());
            set(
                dir,
                "blkio.leaf_weight_device",
                &line,
                "blockIO.weightDevice.leafWeight",
            )?;
        }
    }
    for (file, list, field) in [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
            "blockIO.throttleReadBpsDevice",
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
            "blockIO.throttleWriteBpsDevice",
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
            "blockIO.throttleReadIOPSDevice",
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
            "blockIO.throttleWriteIOPSDevice",
        ),
    ] {
        for d in list.iter().flatten() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            set(dir, file, &line, field)?;
        }
    }
    Ok(())
}

impl Manager for V1Manager {
    fn version(&self) -> Version {
        Version::V1
    }

    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let empty = LinuxResources::default();
        let r = resources.unwrap_or(&empty);
        validate(r, Version::V1, self.display_path())?;
        // Devices are always restricted, so a host without the controller cannot run containers.
        self.need("devices", "devices")?;
        let mut made = Vec::new();
        let result = self
            .make_dirs(&mut made)
            .and_then(|()| self.apply(r, false));
        if result.is_err() {
            // Nothing has joined yet; parents go only if empty (another container may use them).
            for d in made.iter().rev() {
                let _ = fs::remove_dir(d);
            }
        }
        result
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for h in &self.hierarchies {
            write(&h.dir, "cgroup.procs", &pid.to_string())?;
        }
        if let Some(u) = self.unified.as_deref().filter(|u| u.exists()) {
            if let Err(e) = write(u, "cgroup.procs", &pid.to_string()) {
                tracing::warn!("hybrid cgroup2 hierarchy not joined: {e}");
            }
        }
        Ok(())
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        validate(resources, Version::V1, self.display_path())?;
        self.apply(resources, true)
    }

    fn freeze(&self) -> Result<()> {
        let dir = self.freezer()?;
        // A task stuck in an uninterruptible sleep can keep the cgroup FREEZING; writing FROZEN
        // again retries the tasks that have not frozen yet.
        let frozen = fsutil::wait_until(Duration::from_secs(10), || {
            write(dir, "freezer.state", "FROZEN")?;
            Ok(self.freezer_state()? == "FROZEN")
        })?;
        if !frozen {
            let _ = write(dir, "freezer.state", "THAWED");
            return Err(cgroup_err(dir, "freeze: processes did not stop within 10s"));
        }
        Ok(())
    }

    fn thaw(&self) -> Result<()> {
        let dir = self.freezer()?;
        write(dir, "freezer.state", "THAWED")?;
        let thawed = fsutil::wait_until(Duration::from_secs(10), || {
            Ok(self.freezer_state()? == "THAWED")
        })?;
        if !thawed {
            return Err(cgroup_err(
                dir,
                "thaw: still frozen (is a parent cgroup frozen?)",
            ));
        }
        Ok(())
    }

    fn is_frozen(&self) -> Result<bool> {
        Ok(self.freezer_state()? == "FROZEN")
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = ["pids", "freezer", "memory", "devices", "cpu"]
            .iter()
            .find_map(|c| self.dir(c))
            .unwrap_or(self.display_path());
        fsutil::pids_recursive(dir)
    }

    fn stats(&self) -> Result<Stats> {
        stats::collect_v1(&V1Dirs {
            cpu: self.dir("cpu"),
            cpuacct: self.dir("cpuacct"),
            memory: self.dir("memory"),
            pids: self.dir("pids"),
            blkio: self.dir("blkio"),
            hugetlb: self.dir("hugetlb"),
        })
    }

    fn oom_kills(&self) -> Result<u64> {
        match self.dir("memory") {
            Some(dir) => stats::oom_kills(dir, "memory.oom_control"),
            None => Ok(0),
        }
    }

    fn oom_counter(&self) -> Result<Option<super::OomCounter>> {
        match self.dir("memory") {
            Some(dir) => super::OomCounter::open(dir.join("memory.oom_control")),
            None => Ok(None),
        }
    }

    fn destroy(&self) -> Result<()> {
        let mut first_err = None;
        let dirs = self
            .hierarchies
            .iter()
            .map(|h| &h.dir)
            .chain(self.unified.iter());
        for d in dirs {
            if let Err(e) = fsutil::remove_tree(d) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn exists(&self) -> bool {
        self.hierarchies.iter().any(|h| h.dir.exists())
    }

    fn adopt(&self, spare: &super::SpareCgroup) -> Result<Option<super::Adopted>> {
        let ours: Vec<&Path> = self.hierarchies.iter().map(|h| h.dir.as_path()).collect();
        let named_for_us = spare
            .dirs()
            .iter()
            .map(PathBuf::as_path)
            .eq(ours.iter().copied());
        if !named_for_us {
            let pairs: Vec<(&Path, &Path)> = spare
                .dirs()
                .iter()
                .map(PathBuf::as_path)
                .zip(ours.iter().copied())
                .collect();
            // Only a rename within the same parent is allowed (and a fresh name).
            if spare.dirs().len() != ours.len()
                || pairs
                    .iter()
                    .any(|(s, m)| s.parent() != m.parent() || m.exists())
            {
                return Ok(None);
            }
            for (i, (s, m)) in pairs.iter().enumerate() {
                if let Err(e) = fs::rename(s, m) {
                    for (s, m) in pairs[..i].iter().rev() {
                        let _ = fs::rename(m, s);
                    }
                    return Err(cgroup_err(s, format!("rename to {}: {e}", m.display())));
                }
            }
        }
        // A spare named for us whose launcher is in our cgroup2 directory already: a plain
        // clone inherits it. Otherwise (cgroup2 cannot rename) the process is cloned into it
        // (CLONE_INTO_CGROUP).
        if named_for_us && spare.unified().is_some() && spare.unified() == self.unified.as_deref() {
            return Ok(Some(super::Adopted {
                clone_into: None,
                spare_unified_taken: true,
            }));
        }
        let clone_into = self
            .unified
            .as_ref()
            .filter(|u| match fsutil::create_dirs(u) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!("hybrid cgroup2 hierarchy skipped: {e}");
                    false
                }
            })
            .cloned();
        Ok(Some(super::Adopted {
            clone_into,
            spare_unified_taken: false,
        }))
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.dir.clone())
            .chain(self.unified.clone())
            .collect()
    }
}
