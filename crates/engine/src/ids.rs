//! Random ids (64 hex, like Docker's) and generated container names.

use std::io::Read;

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let filled = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !filled {
        // Unreachable on Linux in practice; still unique enough for one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    hex::encode(buf)
}

pub fn new_id() -> String {
    random_hex(32)
}

/// What `new_id` makes: 64 lowercase hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zealous", "bold",
];
const NOUNS: &[&str] = &[
    "anchor", "buoy", "cargo", "dock", "ferry", "galley", "harbor", "jetty", "keel", "lantern",
    "mast", "oar", "pier", "quay", "rudder", "sail", "tide", "wharf", "yawl", "hull",
];

/// "adjective_noun_xxxx": readable like Docker's, and a suffix keeps collisions rare.
pub fn random_name() -> String {
    let r = random_hex(4);
    let n = u32::from_str_radix(&r, 16).unwrap_or(0) as usize;
    format!(
        "{}_{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        NOUNS[(n / ADJECTIVES.len()) % NOUNS.len()],
        &r[..4]
    )
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(is_full_id(&a));
    }

    #[test]
    fn full_ids_are_exactly_64_lowercase_hex() {
        assert!(!is_full_id(&"a".repeat(63)));
        assert!(!is_full_id(&"a".repeat(65)));
        assert!(!is_full_id(&"A".repeat(64)));
        assert!(!is_full_id(&format!("{}g", "a".repeat(63))));
        assert!(!is_full_id("not-a-container"));
        assert!(is_full_id(&"0123456789abcdef".repeat(4)));
    }

    #[test]
    fn names_follow_docker_rule() {
        assert!(valid_name(&random_name()));
        assert!(valid_name("web-1.a_b"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("x"));
    }
}
