//! Lexical normalisation of tar entry names: absolute names become relative, `.` vanishes, and a
//! `..` that would climb above the layer root is refused (never clamped: a layer that tries it is
//! hostile or broken, and saying so beats guessing).

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// `Ok(None)` for the root itself ("./", "/").
pub fn normalize(name: &Path) -> Result<Option<PathBuf>> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in name.components() {
        match c {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(Error::unsafe_entry(
                        name.display().to_string(),
                        "path climbs above the layer root with '..'",
                    ));
                }
            }
            Component::Normal(p) => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(parts.iter().collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Result<Option<String>> {
        normalize(Path::new(s)).map(|p| p.map(|p| p.to_string_lossy().into_owned()))
    }

    #[test]
    fn normalizes_names() {
        assert_eq!(n("a/b/c").unwrap().as_deref(), Some("a/b/c"));
        assert_eq!(n("./a//b/").unwrap().as_deref(), Some("a/b"));
        assert_eq!(n("/etc/passwd").unwrap().as_deref(), Some("etc/passwd"));
        assert_eq!(n("a/../b").unwrap().as_deref(), Some("b"));
        assert_eq!(n("./").unwrap(), None);
        assert_eq!(n("/").unwrap(), None);
    }

    #[test]
    fn refuses_escapes() {
        for bad in ["..", "../x", "../../etc/x", "a/../../x", "/../x"] {
            let err = n(bad).unwrap_err();
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{bad}");
        }
    }
}
