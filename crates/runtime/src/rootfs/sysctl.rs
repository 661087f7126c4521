//! linux.sysctl: kernel parameters written under /proc/sys inside the container.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// `net.ipv4.ip_forward` -> `/proc/sys/net/ipv4/ip_forward`. Keys that could climb out of
/// /proc/sys (`..`, empty parts) are refused.
pub fn path_of(key: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = key.split(['.', '/']).collect();
    if parts.iter().any(|p| p.is_empty() || *p == "..") {
        return None;
    }
    // As in sysctl(8), a '/' in a key is a '.' inside a name (`conf.eth0/1` is interface eth0.1).
    let mut path = PathBuf::from("/proc/sys");
    for part in key.split('.') {
        path.push(part.replace('/', "."));
    }
    Some(path)
}

/// Write every sysctl. Sorted so failures are reproducible.
pub fn apply(sysctl: &HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = sysctl.keys().collect();
    keys.sort();
    for key in keys {
        let field = format!("linux.sysctl[{key:?}]");
        let path = path_of(key).ok_or_else(|| Error::config(&field, "not a valid sysctl name"))?;
        std::fs::write(&path, sysctl[key].as_bytes())
            .map_err(|e| Error::io(format!("{field}: write {}", path.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_proc_sys() {
        assert_eq!(
            path_of("net.ipv4.ip_forward").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/ip_forward")
        );
        assert_eq!(
            path_of("net.ipv4.conf.eth0/1.forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.1/forwarding")
        );
        for bad in ["kernel..x", "..", "kernel.", "a/../b", ""] {
            assert!(path_of(bad).is_none(), "{bad}");
        }
    }
}
