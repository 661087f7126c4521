//! Device access rules: the spec's `linux.resources.devices` in a normalised form, runc's default
//! allowed devices, and their rendering for the v1 devices controller. v2 compiles the same rules
//! to eBPF (see `bpf`).
//!
//! Semantics (both versions): everything is denied unless a rule allows it; rules apply in order
//! and, for each access bit (r, w, m), the last rule that matches the device decides.

use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// Access bits, numbered as the kernel's BPF_DEVCG_ACC_* so the eBPF program can use them as is.
pub const ACCESS_MKNOD: u8 = 1;
pub const ACCESS_READ: u8 = 2;
pub const ACCESS_WRITE: u8 = 4;
pub const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// One normalised rule. `None` major/minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    pub const fn allow_char(major: u32, minor: Option<u32>) -> Self {
        DeviceRule {
            allow: true,
            kind: DeviceKind::Char,
            major: Some(major),
            minor,
            access: ACCESS_ALL,
        }
    }

    pub fn deny_all() -> Self {
        DeviceRule {
            allow: false,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: ACCESS_ALL,
        }
    }

    fn covers_everything(&self) -> bool {
        self.kind == DeviceKind::All && self.major.is_none() && self.minor.is_none()
    }
}

/// "c 1:3 rwm" as the v1 devices.allow / devices.deny files take it.
impl fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        write!(f, "{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// The devices every container may use, as runc allows them, appended after the spec's rules.
pub fn default_rules() -> Vec<DeviceRule> {
    let mknod = |kind| DeviceRule {
        allow: true,
        kind,
        major: None,
        minor: None,
        access: ACCESS_MKNOD,
    };
    vec![
        mknod(DeviceKind::Char),
        mknod(DeviceKind::Block),
        DeviceRule::allow_char(1, Some(3)),    // /dev/null
        DeviceRule::allow_char(1, Some(5)),    // /dev/zero
        DeviceRule::allow_char(1, Some(7)),    // /dev/full
        DeviceRule::allow_char(5, Some(0)),    // /dev/tty
        DeviceRule::allow_char(1, Some(8)),    // /dev/random
        DeviceRule::allow_char(1, Some(9)),    // /dev/urandom
        DeviceRule::allow_char(5, Some(1)),    // /dev/console
        DeviceRule::allow_char(136, None),     // /dev/pts/*
        DeviceRule::allow_char(5, Some(2)),    // /dev/ptmx
        DeviceRule::allow_char(10, Some(200)), // /dev/net/tun
        DeviceRule::allow_char(10, Some(229)), // /dev/fuse
    ]
}

/// Normalise the spec's rules. Fifo rules are dropped: the device cgroup does not govern fifos.
pub fn rules_from_spec(spec: &[LinuxDeviceCgroup]) -> Result<Vec<DeviceRule>, String> {
    let mut out = Vec::with_capacity(spec.len());
    for (i, d) in spec.iter().enumerate() {
        let kind = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => DeviceKind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceKind::Char,
            LinuxDeviceType::B => DeviceKind::Block,
            LinuxDeviceType::P => continue,
        };
        let number = |n: Option<i64>, what: &str| -> Result<Option<u32>, String> {
            match n {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
                Some(n) => Err(format!("rule {i}: {what} {n} is out of range")),
            }
        };
        let access = parse_access(d.access().as_deref().unwrap_or("rwm"))
            .map_err(|why| format!("rule {i}: {why}"))?;
        out.push(DeviceRule {
            allow: d.allow(),
            kind,
            major: number(d.major(), "major")?,
            minor: number(d.minor(), "minor")?,
            access,
        });
    }
    Ok(out)
}

fn parse_access(s: &str) -> Result<u8, String> {
    if s.is_empty() {
        return Ok(ACCESS_ALL);
    }
    let mut bits = 0;
    for c in s.chars() {
        bits |= match c {
            'r' => ACCESS_READ,
            'w' => ACCESS_WRITE,
            'm' => ACCESS_MKNOD,
            _ => return Err(format!("access {s:?} may only use the letters r, w and m")),
        };
    }
    Ok(bits)
}

/// The rules a container's cgroup gets: the spec's, then the defaults.
pub fn effective_rules(spec: Option<&[LinuxDeviceCgroup]>) -> Result<Vec<DeviceRule>, String> {
    let mut rules = rules_from_spec(spec.unwrap_or_default())?;
    rules.extend(default_rules());
    Ok(rules)
}

/// Lines to write, in order, to the v1 devices controller as (file, line). The first line resets
/// the cgroup to deny-all; a rule for every device type with partial access or with numbers is
/// split into 'c' and 'b' because v1 reads any line starting with 'a' as "everything".
pub fn v1_lines(rules: &[DeviceRule]) -> Vec<(&'static str, String)> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        if r.covers_everything() && r.access == ACCESS_ALL {
            out.push((file, "a".to_string()));
        } else if r.kind == DeviceKind::All {
            for kind in [DeviceKind::Char, DeviceKind::Block] {
                out.push((file, DeviceRule { kind, ..*r }.to_string()));
            }
        } else {
            out.push((file, r.to_string()));
        }
    }
    out
}

/// What the v1 kernel will list in devices.list after `lines` (from `v1_lines`) are written,
/// sorted: "a *:* rwm" when everything is allowed, else the allowed exceptions. Lets an update
/// skip rewriting rules that are already in force (the rewrite briefly denies everything).
pub fn v1_expected_list(lines: &[(&str, String)]) -> Vec<String> {
    let mut allow_all = true;
    // (type-major-minor, access) in the kernel's exception list.
    let mut exceptions: Vec<(String, String)> = Vec::new();
    for (file, line) in lines {
        let allow = *file == "devices.allow";
        if line == "a" {
            allow_all = allow;
            exceptions.clear();
            continue;
        }
        let Some((dev, access)) = line.rsplit_once(' ') else {
            continue;
        };
        let adds = allow != allow_all;
        let pos = exceptions.iter().position(|(d, _)| d == dev);
        match (adds, pos) {
            (true, Some(i)) => {
                let merged: String = "rwm"
                    .chars()
                    .filter(|c| exceptions[i].1.contains(*c) || access.contains(*c))
                    .collect();
                exceptions[i].1 = merged;
            }
            (true, None) => exceptions.push((dev.to_string(), access.to_string())),
            (false, Some(i)) => {
                let left: String = exceptions[i]
                    .1
                    .chars()
                    .filter(|c| !access.contains(*c))
                    .collect();
                if left.is_empty() {
                    exceptions.remove(i);
                } else {
                    exceptions[i].1 = left;
                }
            }
            (false, None) => {}
        }
    }
    let mut out: Vec<String> = if allow_all {
        vec!["a *:* rwm".to_string()]
    } else {
        exceptions
            .into_iter()
            .map(|(d, a)| format!("{d} {a}"))
            .collect()
    };
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_rules_normalise() {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                {"allow": true, "type": "b", "major": 8, "access": "m"},
                {"allow": true, "type": "p", "major": 1, "minor": 1}]"#,
        )
        .unwrap();
        let rules = rules_from_spec(&spec).unwrap();
        assert_eq!(rules.len(), 3, "fifo rule dropped");
        assert_eq!(rules[0], DeviceRule::deny_all());
        assert_eq!(rules[1].to_string(), "c 1:3 rw");
        assert_eq!(rules[2].to_string(), "b 8:* m");
    }

    #[test]
    fn bad_access_is_refused() {
        let spec: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rx"}]"#).unwrap();
        assert!(rules_from_spec(&spec).unwrap_err().contains("access"));
    }

    #[test]
    fn v1_lines_reset_then_split_all_type_rules() {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"}, {"allow": true, "major": 4, "access": "r"}]"#,
        )
        .unwrap();
        let lines = v1_lines(&rules_from_spec(&spec).unwrap());
        assert_eq!(
            lines,
            vec![
                ("devices.deny", "a".to_string()),
                ("devices.deny", "a".to_string()),
                ("devices.allow", "c 4:* r".to_string()),
                ("devices.allow", "b 4:* r".to_string()),
            ]
        );
    }

    #[test]
    fn v1_expected_list_follows_kernel_semantics() {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "r"},
                {"allow": true, "type": "c", "major": 4, "minor": 1, "access": "w"},
                {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]"#,
        )
        .unwrap();
        let list = v1_expected_list(&v1_lines(&effective_rules(Some(&spec)).unwrap()));
        assert!(list.contains(&"c 4:1 rw".to_string()), "{list:?}");
        assert!(
            list.contains(&"c 1:3 rwm".to_string()),
            "default re-allows null"
        );
        assert!(!list.contains(&"a *:* rwm".to_string()));
        let all: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": true, "access": "rwm"}]"#).unwrap();
        let list = v1_expected_list(&v1_lines(&rules_from_spec(&all).unwrap()));
        assert_eq!(list, vec!["a *:* rwm".to_string()]);
    }

    #[test]
    fn defaults_follow_spec_rules() {
        let spec: Vec<LinuxDeviceCgroup> =
            serde_json::from_str(r#"[{"allow": false, "access": "rwm"}]"#).unwrap();
        let rules = effective_rules(Some(&spec)).unwrap();
        assert_eq!(rules[0], DeviceRule::deny_all());
        assert!(rules.contains(&DeviceRule::allow_char(136, None)));
        assert!(rules.contains(&DeviceRule::allow_char(10, Some(229))));
    }
}
