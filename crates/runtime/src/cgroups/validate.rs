//! Checks on `linux.resources` made before anything is created or written, so a bad value fails
//! with the field's name and leaves the host untouched.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources, LinuxThrottleDevice, LinuxWeightDevice};

use super::fsutil::cgroup_err;
use super::Version;
use crate::error::Result;

/// Validate every field that has a fixed legal range, for the given cgroup version.
pub(crate) fn validate(r: &LinuxResources, version: Version, cgroup: &Path) -> Result<()> {
    let bad =
        |field: &str, why: String| cgroup_err(cgroup, format!("linux.resources.{field}: {why}"));

    if let Some(m) = r.memory() {
        for (field, v) in [
            ("memory.limit", m.limit()),
            ("memory.reservation", m.reservation()),
            ("memory.swap", m.swap()),
            ("memory.kernel", kernel_limit(m)),
            ("memory.kernelTCP", m.kernel_tcp()),
        ] {
            if let Some(v) = v {
                if v < -1 {
                    return Err(bad(
                        field,
                        format!("{v} is negative (use -1 for unlimited)"),
                    ));
                }
            }
        }
        if let Some(s) = m.swappiness() {
            if s > 100 {
                return Err(bad("memory.swappiness", format!("{s} is above 100")));
            }
        }
        check_swap(m.limit(), m.swap()).map_err(|why| bad("memory.swap", why))?;
    }

    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares() {
            // The kernel clamps silently; refuse instead so the user gets what they asked for.
            if s != 0 && !(2..=262_144).contains(&s) {
                return Err(bad("cpu.shares", format!("{s} is outside 2..=262144")));
            }
        }
        if let Some(q) = c.quota() {
            if q < -1 || (0 < q && q < 1000) {
                return Err(bad(
                    "cpu.quota",
                    format!("{q} must be -1 (unlimited) or at least 1000 microseconds"),
                ));
            }
        }
        if let Some(p) = c.period() {
            if p != 0 && !(1000..=1_000_000).contains(&p) {
                return Err(bad(
                    "cpu.period",
                    format!("{p} is outside 1000..=1000000 microseconds"),
                ));
            }
        }
        if let Some(i) = c.idle() {
            if !(0..=1).contains(&i) {
                return Err(bad("cpu.idle", format!("{i} must be 0 or 1")));
            }
        }
        if let Some(rt) = c.realtime_runtime() {
            if rt < -1 {
                return Err(bad("cpu.realtimeRuntime", format!("{rt} is negative")));
            }
        }
        if version == Version::V2
            && (c.realtime_runtime().unwrap_or(0) != 0 || c.realtime_period().unwrap_or(0) != 0)
        {
            return Err(bad(
                "cpu.realtimeRuntime",
                "realtime scheduling limits need cgroup v1".to_string(),
            ));
        }
        if let Some(cpus) = c.cpus() {
            parse_cpu_list(cpus).map_err(|why| bad("cpu.cpus", why))?;
        }
        if let Some(mems) = c.mems() {
            parse_cpu_list(mems).map_err(|why| bad("cpu.mems", why))?;
        }
    }

    if let Some(b) = r.block_io() {
        check_weight(b.weight()).map_err(|why| bad("blockIO.weight", why))?;
        check_weight(b.leaf_weight()).map_err(|why| bad("blockIO.leafWeight", why))?;
        for d in b.weight_device().iter().flatten() {
            check_weight_device(d).map_err(|why| bad("blockIO.weightDevice", why))?;
        }
        for (field, list) in [
            (
                "blockIO.throttleReadBpsDevice",
                b.throttle_read_bps_device(),
            ),
            (
                "blockIO.throttleWriteBpsDevice",
                b.throttle_write_bps_device(),
            ),
            (
                "blockIO.throttleReadIOPSDevice",
                b.throttle_read_iops_device(),
            ),
            (
                "blockIO.throttleWriteIOPSDevice",
                b.throttle_write_iops_device(),
            ),
        ] {
            for d in list.iter().flatten() {
                check_throttle_device(d).map_err(|why| bad(field, why))?;
            }
        }
    }

    for h in r.hugepage_limits().iter().flatten() {
        parse_page_size(h.page_size()).map_err(|why| bad("hugepageLimits.pageSize", why))?;
        if h.limit() < -1 {
            return Err(bad(
                "hugepageLimits.limit",
                format!("{} is negative", h.limit()),
            ));
        }
    }

    if let Some(n) = r.network() {
        for p in n.priorities().iter().flatten() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(bad(
                    "network.priorities.name",
                    format!("{:?} is not an interface name", p.name()),
                ));
            }
        }
    }

    if let Some(unified) = r.unified() {
        if !unified.is_empty() && version == Version::V1 {
            return Err(bad(
                "unified",
                "needs cgroup v2, this host uses cgroup v1".to_string(),
            ));
        }
        for key in unified.keys() {
            if key.is_empty() || key.contains('/') || !key.contains('.') || key.starts_with('.') {
                return Err(bad(
                    "unified",
                    format!("{key:?} is not a cgroup v2 file name"),
                ));
            }
        }
    }

    super::devices::rules_from_spec(r.devices().as_deref().unwrap_or_default())
        .map_err(|why| bad("devices", why))?;
    Ok(())
}

/// `memory.kernel` is deprecated in the spec but still honoured where the kernel has the knob.
#[allow(deprecated)]
pub(crate) fn kernel_limit(m: &LinuxMemory) -> Option<i64> {
    m.kernel()
}

/// Swap in the spec is memory+swap, as in cgroup v1.
fn check_swap(limit: Option<i64>, swap: Option<i64>) -> std::result::Result<(), String> {
    let swap = match swap {
        None | Some(0) | Some(-1) => return Ok(()),
        Some(s) => s,
    };
    match limit {
        None | Some(0) | Some(-1) => Err(format!(
            "{swap} set without a memory limit (swap is memory+swap, so it needs memory.limit)"
        )),
        Some(l) if swap < l => Err(format!(
            "{swap} is below memory.limit {l} (swap is memory+swap and must be >= memory.limit)"
        )),
        Some(_) => Ok(()),
    }
}

fn check_weight(w: Option<u16>) -> std::result::Result<(), String> {
    match w {
        Some(w) if w != 0 && !(10..=1000).contains(&w) => Err(format!("{w} is outside 10..=1000")),
        _ => Ok(()),
    }
}

fn check_device_numbers(major: i64, minor: i64) -> std::result::Result<(), String> {
    if !(0..=0xfff).contains(&major) || !(0..=0xfffff).contains(&minor) {
        return Err(format!("device {major}:{minor} is not a valid major:minor"));
    }
    Ok(())
}

fn check_weight_device(d: &LinuxWeightDevice) -> std::result::Result<(), String> {
    check_device_numbers(d.major(), d.minor())?;
    check_weight(d.weight())?;
    check_weight(d.leaf_weight())
}

fn check_throttle_device(d: &LinuxThrottleDevice) -> std::result::Result<(), String> {
    check_device_numbers(d.major(), d.minor())
}

/// Parse a cpuset list like "0-3,5,7-8" into (first, last) ranges. Empty means "not set".
pub(crate) fn parse_cpu_list(s: &str) -> std::result::Result<Vec<(u32, u32)>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in s.split(',') {
        let num = |t: &str| {
            t.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?} is not a list like \"0-3,5\": bad number {t:?}"))
        };
        let range = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => {
                let n = num(part)?;
                (n, n)
            }
        };
        if range.0 > range.1 {
            return Err(format!("{s:?}: range {part:?} runs backwards"));
        }
        out.push(range);
    }
    Ok(out)
}

/// "2MB" -> 2 MiB, "1GB" -> 1 GiB, "64KB" -> 64 KiB, as the spec and cgroup file names write them.
pub(crate) fn parse_page_size(s: &str) -> std::result::Result<u64, String> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a page size like \"2MB\""))?;
    let mult = match unit {
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?} is not a page size like \"2MB\" (unit KB, MB or GB)"
            ))
        }
    };
    Ok(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpuBuilder, LinuxMemoryBuilder, LinuxResourcesBuilder};

    fn err_text(r: &LinuxResources, v: Version) -> String {
        validate(r, v, Path::new("/t")).unwrap_err().to_string()
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5").unwrap(), vec![(0, 3), (5, 5)]);
        assert_eq!(parse_cpu_list(" ").unwrap(), vec![]);
        assert!(parse_cpu_list("0-").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a,b").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
    }

    #[test]
    fn page_sizes() {
        assert_eq!(parse_page_size("2MB").unwrap(), 2 << 20);
        assert_eq!(parse_page_size("1GB").unwrap(), 1 << 30);
        assert!(parse_page_size("2M").is_err());
        assert!(parse_page_size("MB").is_err());
    }

    #[test]
    fn swap_below_memory_names_the_field() {
        let r = LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(2000i64)
                    .swap(1000i64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let e = err_text(&r, Version::V1);
        assert!(e.contains("memory.swap") && e.contains("1000"), "{e}");
    }

    #[test]
    fn negative_limit_and_garbage_cpus_are_refused() {
        let r = LinuxResourcesBuilder::default()
            .memory(LinuxMemoryBuilder::default().limit(-5i64).build().unwrap())
            .build()
            .unwrap();
        assert!(err_text(&r, Version::V2).contains("memory.limit"));
        let r = LinuxResourcesBuilder::default()
            .cpu(LinuxCpuBuilder::default().cpus("0-x").build().unwrap())
            .build()
            .unwrap();
        assert!(err_text(&r, Version::V1).contains("cpu.cpus"));
        let r = LinuxResourcesBuilder::default()
            .cpu(
                LinuxCpuBuilder::default()
                    .realtime_runtime(1000i64)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        assert!(err_text(&r, Version::V2).contains("cpu.realtimeRuntime"));
        assert!(validate(&r, Version::V1, Path::new("/t")).is_ok());
    }

    #[test]
    fn unified_needs_v2() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"unified": {"memory.high": "100"}}"#).unwrap();
        assert!(err_text(&r, Version::V1).contains("unified"));
        assert!(validate(&r, Version::V2, Path::new("/t")).is_ok());
        let r: LinuxResources = serde_json::from_str(r#"{"unified": {"../x": "1"}}"#).unwrap();
        assert!(err_text(&r, Version::V2).contains("unified"));
    }
}
