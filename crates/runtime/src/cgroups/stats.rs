//! Resource usage of a container's cgroup, in the shape Docker's stats JSON needs, read from the
//! v1 controllers or the v2 files. Times are nanoseconds, sizes bytes.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fsutil::{parse_u64, read_flat_keyed, read_opt, read_u64_opt};
use crate::error::Result;

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub blkio: BlkioStats,
    /// By page size as the kernel names it ("2MB", "1GB").
    pub hugetlb: BTreeMap<String, HugetlbStats>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total: u64,
    pub user: u64,
    pub system: u64,
    /// Per-CPU totals (v1 cpuacct only; empty on v2).
    pub per_cpu: Vec<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throttling {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryData {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryStats {
    pub usage: MemoryData,
    /// Memory+swap, as v1's memsw reports it (v2 adds memory.current to memory.swap.current so
    /// the numbers mean the same on both).
    pub swap: MemoryData,
    /// Kernel memory (v1 kmem); zero on v2.
    pub kernel: MemoryData,
    /// Page cache (v1 "cache", v2 "file").
    pub cache: u64,
    /// Anonymous memory (v1 "rss", v2 "anon").
    pub rss: u64,
    pub file: u64,
    pub anon: u64,
    /// Times the OOM killer killed a process in this cgroup (tells an OOM kill apart).
    pub oom_kill: u64,
    /// Times the cgroup hit its limit and the OOM path ran (v2 only; v1 has no counter).
    pub oom: u64,
    /// memory.stat as the kernel wrote it.
    pub raw: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlkioEntry {
    pub major: u64,
    pub minor: u64,
    /// "Read", "Write", "Sync", "Async", "Discard", "Total".
    pub op: String,
    pub value: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    pub io_serviced_recursive: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct HugetlbStats {
    pub usage: u64,
    pub max_usage: u64,
    pub failcnt: u64,
    pub limit: Option<u64>,
}

/// v1 reports "no limit" as the largest page-aligned i64; v2 as "max".
fn limit(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v < (i64::MAX as u64) & !0xffff)
}

/// Per-controller directories of a v1 cgroup; `None` for controllers not mounted.
pub(crate) struct V1Dirs<'a> {
    pub cpu: Option<&'a Path>,
    pub cpuacct: Option<&'a Path>,
    pub memory: Option<&'a Path>,
    pub pids: Option<&'a Path>,
    pub blkio: Option<&'a Path>,
    pub hugetlb: Option<&'a Path>,
}

pub(crate) fn collect_v1(d: &V1Dirs) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(dir) = d.cpuacct {
        s.cpu.usage.total = read_u64_opt(dir, "cpuacct.usage")?.unwrap_or(0);
        s.cpu.usage.per_cpu = read_opt(dir, "cpuacct.usage_percpu")?
            .map(|t| t.split_whitespace().filter_map(parse_u64).collect())
            .unwrap_or_default();
        // cpuacct.stat counts clock ticks.
        let ticks = read_flat_keyed(dir, "cpuacct.stat")?;
        let ns_per_tick = 1_000_000_000 / clock_ticks();
        s.cpu.usage.user = ticks.get("user").copied().unwrap_or(0) * ns_per_tick;
        s.cpu.usage.system = ticks.get("system").copied().unwrap_or(0) * ns_per_tick;
    }
    if let Some(dir) = d.cpu {
        let st = read_flat_keyed(dir, "cpu.stat")?;
        s.cpu.throttling = Throttling {
            periods: st.get("nr_periods").copied().unwrap_or(0),
            throttled_periods: st.get("nr_throttled").copied().unwrap_or(0),
            throttled_time: st.get("throttled_time").copied().unwrap_or(0),
        };
    }
    if let Some(dir) = d.memory {
        let data = |prefix: &str| -> Result<MemoryData> {
            Ok(MemoryData {
                usage: read_u64_opt(dir, &format!("{prefix}.usage_in_bytes"))?.unwrap_or(0),
                max_usage: read_u64_opt(dir, &format!("{prefix}.max_usage_in_bytes"))?.unwrap_or(0),
                failcnt: read_u64_opt(dir, &format!("{prefix}.failcnt"))?.unwrap_or(0),
                limit: limit(read_u64_opt(dir, &format!("{prefix}.limit_in_bytes"))?),
            })
        };
        let m = &mut s.memory;
        m.usage = data("memory")?;
        m.swap = data("memory.memsw")?;
        m.kernel = data("memory.kmem")?;
        m.raw = read_flat_keyed(dir, "memory.stat")?;
        // The total_* keys include descendants, which is what a container's usage means.
        let get = |k: &str| {
            m.raw
                .get(&format!("total_{k}"))
                .or_else(|| m.raw.get(k))
                .copied()
                .unwrap_or(0)
        };
        let (cache, rss) = (get("cache"), get("rss"));
        m.cache = cache;
        m.rss = rss;
        m.file = cache;
        m.anon = rss;
        let oom = read_flat_keyed(dir, "memory.oom_control")?;
        m.oom_kill = oom.get("oom_kill").copied().unwrap_or(0);
    }
    if let Some(dir) = d.pids {
        s.pids = PidsStats {
            current: read_u64_opt(dir, "pids.current")?.unwrap_or(0),
            limit: limit(read_u64_opt(dir, "pids.max")?),
        };
    }
    if let Some(dir) = d.blkio {
        // CFQ/BFQ files when a proportional scheduler accounts the I/O, else the throttle layer's.
        let pick = |names: [&str; 3]| -> Result<Vec<BlkioEntry>> {
            for name in names {
                let entries = parse_blkio(&read_opt(dir, name)?.unwrap_or_default());
                if !entries.is_empty() {
                    return Ok(entries);
                }
            }
            Ok(Vec::new())
        };
        s.blkio.io_service_bytes_recursive = pick([
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?;
        s.blkio.io_serviced_recursive = pick([
            "blkio.io_serviced_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?;
    }
    if let Some(dir) = d.hugetlb {
        for size in hugetlb_sizes(dir, ".limit_in_bytes")? {
            let f = |suffix: &str| read_u64_opt(dir, &format!("hugetlb.{size}.{suffix}"));
            let h = HugetlbStats {
                usage: f("usage_in_bytes")?.unwrap_or(0),
                max_usage: f("max_usage_in_bytes")?.unwrap_or(0),
                failcnt: f("failcnt")?.unwrap_or(0),
                limit: limit(f("limit_in_bytes")?),
            };
            s.hugetlb.insert(size, h);
        }
    }
    Ok(s)
}

/// The "oom_kill" counter of a flat-keyed file (v1 memory.oom_control, v2 memory.events).
pub(crate) fn oom_kills(dir: &Path, file: &str) -> Result<u64> {
    Ok(read_flat_keyed(dir, file)?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

pub(crate) fn collect_v2(dir: &Path) -> Result<Stats> {
    let mut s = Stats::default();
    let cpu = read_flat_keyed(dir, "cpu.stat")?;
    let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
    s.cpu.usage = CpuUsage {
        total: us("usage_usec"),
        user: us("user_usec"),
        system: us("system_usec"),
        per_cpu: Vec::new(),
    };
    s.cpu.throttling = Throttling {
        periods: cpu.get("nr_periods").copied().unwrap_or(0),
        throttled_periods: cpu.get("nr_throttled").copied().unwrap_or(0),
        throttled_time: us("throttled_usec"),
    };

    let m = &mut s.memory;
    let events = read_flat_keyed(dir, "memory.events")?;
    let current = read_u64_opt(dir, "memory.current")?.unwrap_or(0);
    m.usage = MemoryData {
        usage: current,
        max_usage: read_u64_opt(dir, "memory.peak")?.unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
        limit: limit(read_u64_opt(dir, "memory.max")?),
    };
    let swap_limit = limit(read_u64_opt(dir, "memory.swap.max")?);
    m.swap = MemoryData {
        usage: read_u64_opt(dir, "memory.swap.current")?.unwrap_or(0) + current,
        max_usage: read_u64_opt(dir, "memory.swap.peak")?.unwrap_or(0),
        failcnt: events.get("max").copied().unwrap_or(0),
        limit: match (swap_limit, m.usage.limit) {
            (Some(swap), Some(mem)) => Some(swap.saturating_add(mem)),
            _ => None,
        },
    };
    m.raw = read_flat_keyed(dir, "memory.stat")?;
    m.file = m.raw.get("file").copied().unwrap_or(0);
    m.anon = m.raw.get("anon").copied().unwrap_or(0);
    m.cache = m.file;
    m.rss = m.anon;
    m.oom_kill = events.get("oom_kill").copied().unwrap_or(0);
    m.oom = events.get("oom").copied().unwrap_or(0);

    s.pids = PidsStats {
        current: read_u64_opt(dir, "pids.current")?.unwrap_or(0),
        limit: limit(read_u64_opt(dir, "pids.max")?),
    };

    for line in read_opt(dir, "io.stat")?.unwrap_or_default().lines() {
        let mut it = line.split_whitespace();
        let Some((major, minor)) = it.next().and_then(parse_dev) else {
            continue;
        };
        for kv in it {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse() else { continue };
            let (list, op) = match key {
                "rbytes" => (&mut s.blkio.io_service_bytes_recursive, "Read"),
                "wbytes" => (&mut s.blkio.io_service_bytes_recursive, "Write"),
                "dbytes" => (&mut s.blkio.io_service_bytes_recursive, "Discard"),
                "rios" => (&mut s.blkio.io_serviced_recursive, "Read"),
                "wios" => (&mut s.blkio.io_serviced_recursive, "Write"),
                "dios" => (&mut s.blkio.io_serviced_recursive, "Discard"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }

    for size in hugetlb_sizes(dir, ".max")? {
        let f = |suffix: &str| read_u64_opt(dir, &format!("hugetlb.{size}.{suffix}"));
        let ev = read_flat_keyed(dir, &format!("hugetlb.{size}.events"))?;
        let h = HugetlbStats {
            usage: f("current")?.unwrap_or(0),
            max_usage: 0,
            failcnt: ev.get("max").copied().unwrap_or(0),
            limit: limit(f("max")?),
        };
        s.hugetlb.insert(size, h);
    }
    Ok(s)
}

fn parse_dev(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// v1 blkio files: "8:0 Read 4096" lines (and a closing "Total N" without a device).
fn parse_blkio(text: &str) -> Vec<BlkioEntry> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.split_whitespace();
            let (major, minor) = parse_dev(it.next()?)?;
            let op = it.next()?.to_string();
            let value = it.next()?.parse().ok()?;
            Some(BlkioEntry {
                major,
                minor,
                op,
                value,
            })
        })
        .collect()
}

/// Page sizes for which `dir` has "hugetlb.<size><suffix>" (".max" excludes ".rsvd.max").
fn hugetlb_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut sizes: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            (!size.contains('.')).then(|| size.to_string())
        })
        .collect();
    sizes.sort();
    Ok(sizes)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn v2_stats_from_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let w = |f: &str, s: &str| fs::write(d.join(f), s).unwrap();
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 2\nthrottled_usec 7\n");
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("memory.swap.current", "100\n");
        w("memory.swap.max", "max\n");
        w("memory.events", "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n");
        w("memory.stat", "anon 2048\nfile 1024\n");
        w("pids.current", "3\n");
        w("pids.max", "10\n");
        w(
            "io.stat",
            "254:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        w("hugetlb.2MB.current", "0\n");
        w("hugetlb.2MB.max", "4194304\n");
        w("hugetlb.2MB.rsvd.max", "max\n");
        let s = collect_v2(d).unwrap();
        assert_eq!(s.cpu.usage.total, 1_500_000);
        assert_eq!(s.cpu.usage.user, 1_000_000);
        assert_eq!(s.cpu.throttling.throttled_time, 7000);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.memory.usage.limit, None);
        assert_eq!(s.memory.swap.usage, 4196);
        assert_eq!((s.memory.anon, s.memory.file), (2048, 1024));
        assert_eq!((s.memory.oom_kill, s.memory.oom), (1, 2));
        assert_eq!(oom_kills(d, "memory.events").unwrap(), 1);
        assert_eq!(s.pids.limit, Some(10));
        assert_eq!(s.blkio.io_service_bytes_recursive.len(), 3);
        assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
        assert_eq!(s.blkio.io_serviced_recursive[1].value, 2);
        assert_eq!(s.hugetlb.keys().collect::<Vec<_>>(), vec!["2MB"]);
        assert_eq!(s.hugetlb["2MB"].limit, Some(4 << 20));
    }

    #[test]
    fn v1_blkio_lines() {
        let e = parse_blkio("254:0 Read 4096\n254:0 Write 0\nTotal 4096\n");
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].op, "Read");
        assert_eq!(e[0].value, 4096);
    }
}
