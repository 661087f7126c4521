//! Validation of what clients put in URLs: repository names and tags, per the distribution spec's
//! grammar, and upload session ids. A name that passes is safe as a relative path: every
//! component starts with `[a-z0-9]`, so `.`, `..`, `_internal` and empty components cannot occur.

/// Longest repository name accepted (distribution's limit).
pub const MAX_NAME_LEN: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_LEN && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) if alnum(f) && alnum(l) => {}
        _ => return false,
    }
    // Split into runs of separators between alphanumeric runs; each run must be a legal one.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let legal = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !legal {
            return false;
        }
    }
    true
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
pub fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match bytes.first() {
        Some(&f) if word(f) => {}
        _ => return false,
    }
    bytes.len() <= 128 && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// Upload ids are ours: 32 lowercase hex characters.
pub fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh random id (128 bits from the kernel) for uploads and token ids.
pub fn random_id() -> String {
    let mut buf = [0u8; 16];
    fill_random(&mut buf);
    hex::encode(buf)
}

pub fn fill_random(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: writing into a valid, owned buffer of the given length.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names_follow_the_spec_grammar() {
        for good in [
            "a",
            "busybox",
            "x/busybox",
            "library/ubuntu",
            "a.b_c__d---e/f0",
            "0/1/2",
            "my-org/sub.team/app",
        ] {
            assert!(valid_repo_name(good), "{good}");
        }
        for bad in [
            "",
            "A",
            "..",
            "../etc",
            "a/../b",
            "a/./b",
            "/a",
            "a/",
            "a//b",
            "_a",
            "a_",
            "a___b",
            "a.-b",
            "a..b",
            "a/_layers",
            "a%2e%2e",
            "a b",
            "a\0b",
        ] {
            assert!(!valid_repo_name(bad), "{bad:?}");
        }
        assert!(valid_repo_name(&"a".repeat(255)));
        assert!(!valid_repo_name(&"a".repeat(256)));
    }

    #[test]
    fn tags_follow_the_spec_grammar() {
        for good in ["1", "latest", "_x", "V1.2-rc_3", &"t".repeat(128)] {
            assert!(valid_tag(good), "{good}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", "..", &"t".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
    }

    #[test]
    fn upload_ids_are_random_hex() {
        let a = random_id();
        let b = random_id();
        assert!(valid_upload_id(&a) && valid_upload_id(&b));
        assert_ne!(a, b);
        assert!(!valid_upload_id("../../etc/passwd0000000000000000"));
    }
}
