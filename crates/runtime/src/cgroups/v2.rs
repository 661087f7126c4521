//! cgroup v2: one directory in the unified hierarchy; controllers enabled from the top down
//! through cgroup.subtree_control; devices through an eBPF program.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::fsutil::{self, cgroup_err, set, write};
use super::stats::{self, Stats};
use super::validate::validate;
use super::{bpf, devices, Manager, Version};
use crate::error::Result;

/// Controllers enabled whenever the hierarchy offers them, so stats work without limits.
const STATS_CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    dir: PathBuf,
    /// False for a fake tree on an ordinary filesystem (tests): no eBPF, no freezer events.
    cgroupfs: bool,
}

impl V2Manager {
    pub(crate) fn new(root: PathBuf, dir: PathBuf) -> Self {
        let cgroupfs = nix::sys::statfs::statfs(&root)
            .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
            .unwrap_or(false);
        V2Manager {
            root,
            dir,
            cgroupfs,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// mkdir every level below the root, enabling the controllers the container needs in each
    /// ancestor's cgroup.subtree_control first. Returns the directories made; on failure removes
    /// them again (if still empty).
    fn make_dirs(&self, r: &LinuxResources) -> Result<Vec<PathBuf>> {
        let mut made = Vec::new();
        match self.make_dirs_into(r, &mut made) {
            Ok(()) => Ok(made),
            Err(e) => {
                for d in made.iter().rev() {
                    let _ = std::fs::remove_dir(d);
                }
                Err(e)
            }
        }
    }

    fn make_dirs_into(&self, r: &LinuxResources, made: &mut Vec<PathBuf>) -> Result<()> {
        let needed = needed_controllers(r);
        let mut optional: Vec<&str> = STATS_CONTROLLERS.to_vec();
        // hugepageLimits apply "where available": enable hugetlb if the host offers it.
        if r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty()) {
            optional.push("hugetlb");
        }
        let rel = self
            .dir
            .strip_prefix(&self.root)
            .map_err(|_| cgroup_err(&self.dir, "cgroup is outside the hierarchy root"))?;
        let mut cur = self.root.clone();
        let mut available = controllers_of(&cur)?.unwrap_or_default();
        for comp in rel.components() {
            for (controller, field) in &needed {
                if !available.contains(controller) {
                    return Err(cgroup_err(
                        &cur,
                        format!(
                            "linux.resources.{field}: the {controller} controller is not available here"
                        ),
                    ));
                }
            }
            let required: BTreeSet<String> = needed.iter().map(|(c, _)| c.clone()).collect();
            let extra: BTreeSet<String> = optional
                .iter()
                .map(|c| c.to_string())
                .filter(|c| available.contains(c) && !required.contains(c))
                .collect();
            let enabled = enable_controllers(&cur, &required, &extra)?;
            let next = cur.join(comp);
            if !next.exists() {
                fsutil::create_dirs(&next)?;
                made.push(next.clone());
            }
            // A real child's cgroup.controllers is its parent's subtree_control.
            available = controllers_of(&next)?.unwrap_or(enabled);
            cur = next;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources, update: bool) -> Result<()> {
        let dir = &self.dir;
        if let Some(c) = r.cpu() {
            set_cpu(dir, c)?;
        }
        if let Some(m) = r.memory() {
            set_memory(dir, m)?;
        }
        if let Some(p) = r.pids() {
            if p.limit() != 0 {
                let v = if p.limit() > 0 {
                    p.limit().to_string()
                } else {
                    "max".to_string()
                };
                set(dir, "pids.max", &v, "pids.limit")?;
            }
        }
        if let Some(b) = r.block_io() {
            set_io(dir, b)?;
        }
        for h in r.hugepage_limits().iter().flatten() {
            let file = format!("hugetlb.{}.max", h.page_size());
            if !dir.join(&file).exists() {
                tracing::warn!("hugepageLimits for {} ignored: no {file}", h.page_size());
                continue;
            }
            let v = if h.limit() < 0 {
                "max".to_string()
            } else {
                h.limit().to_string()
            };
            set(dir, &file, &v, "hugepageLimits.limit")?;
            // Reservations count too where the kernel tracks them separately.
            let rsvd = format!("hugetlb.{}.rsvd.max", h.page_size());
            if dir.join(&rsvd).exists() {
                set(dir, &rsvd, &v, "hugepageLimits.limit")?;
            }
        }
        if let Some(rdma) = r.rdma() {
            super::set_rdma(dir, rdma)?;
        }
        if let Some(n) = r.network() {
            if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
                tracing::warn!(
                    "linux.resources.network ignored: cgroup v2 has no net_cls/net_prio"
                );
            }
        }
        if let Some(unified) = r.unified() {
            let mut keys: Vec<_> = unified.iter().collect();
            keys.sort();
            for (key, value) in keys {
                if let Err(e) = fsutil::write_raw(&dir.join(key), value) {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        format!(
                            "no such cgroup file (is the {} controller available?)",
                            controller_of(key)
                        )
                    } else {
                        e.to_string()
                    };
                    return Err(cgroup_err(
                        dir.join(key),
                        format!("linux.resources.unified.{key}: write {value:?}: {why}"),
                    ));
                }
            }
        }
        if !update || r.devices().is_some() {
            let rules = devices::effective_rules(r.devices().as_deref())
                .map_err(|why| cgroup_err(dir, format!("linux.resources.devices: {why}")))?;
            if self.cgroupfs {
                bpf::apply_rules(dir, &rules)?;
            } else {
                tracing::debug!(
                    "{}: not a cgroup2 filesystem, device program skipped",
                    dir.display()
                );
            }
        }
        Ok(())
    }

    fn events_frozen(&self) -> Result<Option<bool>> {
        Ok(fsutil::read_flat_keyed(&self.dir, "cgroup.events")?
            .get("frozen")
            .map(|&v| v == 1))
    }

    fn set_frozen(&self, frozen: bool) -> Result<bool> {
        write(&self.dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
        if !self.cgroupfs {
            return Ok(true);
        }
        fsutil::wait_until(Duration::from_secs(10), || {
            Ok(self.events_frozen()? == Some(frozen))
        })
    }
}

/// Contents of `dir/cgroup.controllers`, `None` if the file is missing.
fn controllers_of(dir: &Path) -> Result<Option<BTreeSet<String>>> {
    Ok(fsutil::read_opt(dir, "cgroup.controllers")?
        .map(|s| s.split_whitespace().map(str::to_string).collect()))
}

/// Enable `required` and, where the kernel agrees, `extra` in `dir/cgroup.subtree_control`.
/// One write for all (the kernel applies a line all or nothing); if that fails, the required
/// ones alone, then each extra one on its own. Returns everything now enabled there.
fn enable_controllers(
    dir: &Path,
    required: &BTreeSet<String>,
    extra: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    let mut enabled: BTreeSet<String> = fsutil::read_opt(dir, "cgroup.subtree_control")?
        .unwrap_or_default()
        .split_whitespace()
        .map(|c| c.trim_start_matches('+').to_string())
        .collect();
    let missing = |set: &BTreeSet<String>, enabled: &BTreeSet<String>| -> Vec<String> {
        set.iter()
            .filter(|c| !enabled.contains(*c))
            .cloned()
            .collect()
    };
    let line = |list: &[String]| {
        list.iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut all = missing(required, &enabled);
    all.extend(missing(extra, &enabled));
    all.sort();
    if all.is_empty() || write(dir, "cgroup.subtree_control", &line(&all)).is_ok() {
        enabled.extend(all);
        return Ok(enabled);
    }
    let req = missing(required, &enabled);
    if !req.is_empty() {
        let l = line(&req);
        write(dir, "cgroup.subtree_control", &l).map_err(|e| {
            cgroup_err(
                dir,
                format!("enable controllers ({l}): {e} (a cgroup with processes cannot delegate controllers)"),
            )
        })?;
        enabled.extend(req);
    }
    for c in missing(extra, &enabled) {
        match write(dir, "cgroup.subtree_control", &format!("+{c}")) {
            Ok(()) => {
                enabled.insert(c);
            }
            Err(e) => tracing::warn!("{c} controller not enabled (stats will lack it): {e}"),
        }
    }
    Ok(enabled)
}

/// "memory.high" -> "memory".
fn controller_of(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// The controllers `r` needs, each with the spec field that needs it (for error messages).
fn needed_controllers(r: &LinuxResources) -> BTreeSet<(String, String)> {
    let mut need = BTreeSet::new();
    let mut add = |c: &str, field: &str| {
        need.insert((c.to_string(), field.to_string()));
    };
    if let Some(c) = r.cpu() {
        if c.shares().unwrap_or(0) != 0
            || c.quota().unwrap_or(0) != 0
            || c.period().unwrap_or(0) != 0
            || c.burst().is_some()
            || c.idle().is_some()
        {
            add("cpu", "cpu");
        }
        if c.cpus().as_deref().is_some_and(|s| !s.trim().is_empty())
            || c.mems().as_deref().is_some_and(|s| !s.trim().is_empty())
        {
            add("cpuset", "cpu.cpus");
        }
    }
    if let Some(m) = r.memory() {
        if m.limit().unwrap_or(0) != 0
            || m.reservation().unwrap_or(0) != 0
            || m.swap().unwrap_or(0) != 0
        {
            add("memory", "memory");
        }
    }
    if r.pids().is_some_and(|p| p.limit() != 0) {
        add("pids", "pids");
    }
    if r.block_io().is_some() {
        add("io", "blockIO");
    }
    if r.rdma().as_ref().is_some_and(|m| !m.is_empty()) {
        add("rdma", "rdma");
    }
    for key in r.unified().iter().flat_map(|u| u.keys()) {
        let c = controller_of(key);
        if c != "cgroup" {
            add(c, &format!("unified.{key}"));
        }
    }
    need
}

/// runc's mapping of v1 cpu.shares [2, 262144] onto cpu.weight [1, 10000].
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// runc's mapping of blkio weight [10, 1000] onto io.weight [1, 10000].
pub fn io_weight_from_blkio(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10) * 9999) / 990
}

fn set_cpu(dir: &Path, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        set(
            dir,
            "cpu.weight",
            &cpu_weight_from_shares(s).to_string(),
            "cpu.shares",
        )?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".to_string()
        };
        if period != 0 {
            v.push_str(&format!(" {period}"));
        }
        set(dir, "cpu.max", &v, "cpu.quota")?;
    }
    if let Some(b) = c.burst() {
        set(dir, "cpu.max.burst", &b.to_string(), "cpu.burst")?;
    }
    if let Some(i) = c.idle() {
        set(dir, "cpu.idle", &i.to_string(), "cpu.idle")?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.trim().is_empty()) {
        set(dir, "cpuset.cpus", v, "cpu.cpus")?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.trim().is_empty()) {
        set(dir, "cpuset.mems", v, "cpu.mems")?;
    }
    Ok(())
}

/// The spec's swap is memory+swap (v1 style); memory.swap.max is swap alone.
fn swap_max(limit: i64, swap: i64) -> Option<String> {
    match (limit, swap) {
        (-1, 0) | (_, -1) => Some("max".to_string()),
        (_, 0) => None,
        (l, s) => Some((s - l).to_string()),
    }
}

fn max_or(v: i64) -> String {
    if v == -1 {
        "max".to_string()
    } else {
        v.to_string()
    }
}

fn set_memory(dir: &Path, m: &LinuxMemory) -> Result<()> {
    let limit = m.limit().unwrap_or(0);
    if m.check_before_update() == Some(true) && limit > 0 {
        let usage = fsutil::read_u64_opt(dir, "memory.current")?.unwrap_or(0);
        if (limit as u64) < usage {
            return Err(cgroup_err(
                dir,
                format!("linux.resources.memory.limit: {limit} is below current usage {usage}"),
            ));
        }
    }
    if let Some(swap) = swap_max(limit, m.swap().unwrap_or(0)) {
        if dir.join("memory.swap.max").exists() {
            set(dir, "memory.swap.max", &swap, "memory.swap")?;
        } else if swap != "max" {
            return Err(cgroup_err(
                dir,
                "linux.resources.memory.swap: this kernel has no swap accounting (memory.swap.max)",
            ));
        }
    }
    if limit != 0 {
        set(dir, "memory.max", &max_or(limit), "memory.limit")?;
    }
    if let Some(r) = m.reservation().filter(|&r| r != 0) {
        set(dir, "memory.low", &max_or(r), "memory.reservation")?;
    }
    if m.swappiness().is_some() || m.disable_oom_killer() == Some(true) || m.kernel_tcp().is_some()
    {
        tracing::warn!("memory swappiness, disableOOMKiller and kernelTCP have no cgroup v2 equivalent; ignored");
    }
    Ok(())
}

fn set_io(dir: &Path, b: &LinuxBlockIo) -> Result<()> {
    // BFQ takes blkio-style weights as they are; the generic io.weight has its own scale.
    let bfq = dir.join("io.bfq.weight").exists();
    if let Some(w) = b.weight().filter(|&w| w != 0) {
        if bfq {
            set(dir, "io.bfq.weight", &w.to_string(), "blockIO.weight")?;
        } else {
            set(
                dir,
                "io.weight",
                &io_weight_from_blkio(w).to_string(),
                "blockIO.weight",
            )?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|&w| w != 0) {
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", io_weight_from_blkio(w))
            };
            set(
                dir,
                file,
                &format!("{}:{} {w}", d.major(), d.minor()),
                "blockIO.weightDevice",
            )?;
        }
    }
    // All limits of one device go in one io.max line.
    let mut lines: std::collections::BTreeMap<(i64, i64), Vec<String>> = Default::default();
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            lines
                .entry((d.major(), d.minor()))
                .or_default()
                .push(format!("{key}={rate}"));
        }
    }
    for ((major, minor), limits) in lines {
        let line = format!("{major}:{minor} {}", limits.join(" "));
        set(dir, "io.max", &line, "blockIO.throttle")?;
    }
    Ok(())
}

impl Manager for V2Manager {
    fn version(&self) -> Version {
        Version::V2
    }

    fn create(&self, resources: Option<&LinuxResources>) -> Result<()> {
        let empty = LinuxResources::default();
        let r = resources.unwrap_or(&empty);
        validate(r, Version::V2, &self.dir)?;
        let made = self.make_dirs(r)?;
        if let Err(e) = self.apply(r, false) {
            if !made.is_empty() {
                let _ = fsutil::remove_tree(&self.dir);
                // Ancestors made here go only if empty: another container may use them now.
                for d in made.iter().rev().skip(1) {
                    let _ = std::fs::remove_dir(d);
                }
            }
            return Err(e);
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        write(&self.dir, "cgroup.procs", &pid.to_string())
    }

    fn update(&self, resources: &LinuxResources) -> Result<()> {
        validate(resources, Version::V2, &self.dir)?;
        if !self.dir.exists() {
            return Err(cgroup_err(&self.dir, "update: the cgroup does not exist"));
        }
        // Limits may name a controller not enabled at create time.
        self.make_dirs(resources)?;
        self.apply(resources, true)
    }

    fn freeze(&self) -> Result<()> {
        if !self.set_frozen(true)? {
            let _ = self.set_frozen(false);
            return Err(cgroup_err(
                &self.dir,
                "freeze: processes did not stop within 10s",
            ));
        }
        Ok(())
    }

    fn thaw(&self) -> Result<()> {
        if !self.set_frozen(false)? {
            return Err(cgroup_err(
                &self.dir,
                "thaw: still frozen (is a parent cgroup frozen?)",
            ));
        }
        Ok(())
    }

    fn is_frozen(&self) -> Result<bool> {
        match self.events_frozen()? {
            Some(f) => Ok(f),
            None => Ok(fsutil::read(&self.dir, "cgroup.freeze")?.trim() == "1"),
        }
    }

    fn pids(&self) -> Result<Vec<i32>> {
        fsutil::pids_recursive(&self.dir)
    }

    fn stats(&self) -> Result<Stats> {
        stats::collect_v2(&self.dir)
    }

    fn oom_kills(&self) -> Result<u64> {
        stats::oom_kills(&self.dir, "memory.events")
    }

    fn oom_counter(&self) -> Result<Option<super::OomCounter>> {
        super::OomCounter::open(self.dir.join("memory.events"))
    }

    fn destroy(&self) -> Result<()> {
        fsutil::remove_tree(&self.dir)
    }

    fn exists(&self) -> bool {
        self.dir.exists()
    }

    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_match_runc() {
        assert_eq!(cpu_weight_from_shares(1024), 39);
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(262_144), 10_000);
        assert_eq!(io_weight_from_blkio(10), 1);
        assert_eq!(io_weight_from_blkio(1000), 10_000);
        assert_eq!(io_weight_from_blkio(500), 4950);
        assert_eq!(swap_max(100, 300).as_deref(), Some("200"));
        assert_eq!(swap_max(-1, 0).as_deref(), Some("max"));
        assert_eq!(swap_max(100, -1).as_deref(), Some("max"));
        assert_eq!(swap_max(100, 0), None);
    }
}
