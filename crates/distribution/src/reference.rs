//! Image references, parsed and normalised the way Docker does (`distribution/reference`'s
//! `ParseNormalizedNamed`): `busybox` is `docker.io/library/busybox`, a first component with a
//! `.` or `:` or equal to `localhost` is a registry host, tags follow the last `:` of the last
//! path component, and `@algo:hex` pins a digest. Errors say which part is wrong.

use std::fmt;
use std::str::FromStr;

use berth_image::Digest;

use crate::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
/// Docker's limit on the full name (domain + "/" + path).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised reference: registry domain, repository path, and a tag and/or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalise like `docker pull NAME` does.
    pub fn parse(input: &str) -> Result<Reference> {
        let bad = |reason: String| Error::InvalidReference {
            input: input.chars().take(300).collect(),
            reason,
        };
        if input.is_empty() {
            return Err(bad(
                "repository name must have at least one component".into()
            ));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(bad(
                "cannot specify 64-byte hexadecimal strings as a repository name".into(),
            ));
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (input, None),
        };
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                Some(&name_tag[last_slash + i + 1..]),
            ),
            None => (name_tag, None),
        };
        if name.is_empty() {
            return Err(bad(
                "invalid reference format: missing repository name".into()
            ));
        }

        let (domain, remainder) = split_docker_domain(name);
        if domain != DEFAULT_DOMAIN && !valid_domain(&domain) {
            return Err(bad(format!(
                "invalid reference format: invalid registry host {domain:?}"
            )));
        }
        if remainder.to_lowercase() != remainder {
            return Err(bad(format!(
                "invalid reference format: repository name ({remainder}) must be lowercase"
            )));
        }
        for component in remainder.split('/') {
            if !valid_path_component(component) {
                return Err(bad(format!(
                    "invalid reference format: invalid repository name component {component:?} \
                     (lowercase letters and digits, separated by '.', '_', '__' or '-')"
                )));
            }
        }
        if domain.len() + 1 + remainder.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(bad(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(bad(format!(
                    "invalid reference format: invalid tag {t:?} (word characters, '.' and '-', \
                     at most 128, not starting with '.' or '-')"
                )));
            }
        }
        let digest = match digest {
            None => None,
            Some(d) => Some(parse_digest(d).map_err(bad)?),
        };
        Ok(Reference {
            domain,
            path: remainder,
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// Registry host as written after normalisation ("docker.io", "localhost:5000").
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Repository path inside the registry ("library/busybox").
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full name without tag or digest ("docker.io/library/busybox").
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What a pull asks the registry for: the digest if pinned, else the tag (default "latest").
    pub fn object(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    /// The same reference with ":latest" added when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference> {
        Reference::parse(&format!("{}:{tag}", self.name()))
    }

    /// The same repository pinned to `digest` (tag kept, as Docker prints "name:tag@digest").
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The short form Docker shows: "busybox:1" for docker.io/library/busybox:1.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        };
        push_suffix(&mut out, self.tag.as_deref(), self.digest.as_ref());
        out
    }
}

fn push_suffix(out: &mut String, tag: Option<&str>, digest: Option<&Digest>) {
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(&d.to_string());
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        push_suffix(&mut out, self.tag.as_deref(), self.digest.as_ref());
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is dot-separated `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` labels or
/// a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

fn parse_digest(d: &str) -> std::result::Result<Digest, String> {
    let Some((algo, hex)) = d.split_once(':') else {
        return Err(format!("invalid digest format {d:?}: want algorithm:hex"));
    };
    let algo_ok = algo.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    if !algo_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid digest format {d:?}"));
    }
    let Some(algorithm) = berth_image::digest::Algorithm::from_name(algo) else {
        return Err(format!(
            "unsupported digest algorithm {algo:?} (sha256 or sha512)"
        ));
    };
    Digest::from_hex(algorithm, hex).map_err(|_| {
        format!(
            "invalid checksum digest length in {d:?}: {algo} wants {} lowercase hex characters",
            algorithm.hex_len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    fn ok(input: &str) -> Reference {
        Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    fn err(input: &str) -> String {
        match Reference::parse(input) {
            Ok(r) => panic!("{input:?} parsed as {r}"),
            Err(e) => e.to_string(),
        }
    }

    /// Docker's normalize_test.go examples: (input, full name, familiar form).
    #[test]
    fn normalises_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox", "busybox"),
            ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox",
                "busybox",
            ),
            (
                "docker.io/library/busybox",
                "docker.io/library/busybox",
                "busybox",
            ),
            ("library/busybox", "docker.io/library/busybox", "busybox"),
            (
                "dmcgowan/myapp",
                "docker.io/dmcgowan/myapp",
                "dmcgowan/myapp",
            ),
            (
                "dmcgowan/myapp/foo",
                "docker.io/dmcgowan/myapp/foo",
                "dmcgowan/myapp/foo",
            ),
            (
                "docker.io/library/myapp/foo",
                "docker.io/library/myapp/foo",
                "library/myapp/foo",
            ),
            (
                "localhost/busybox",
                "localhost/busybox",
                "localhost/busybox",
            ),
            (
                "localhost:5000/busybox",
                "localhost:5000/busybox",
                "localhost:5000/busybox",
            ),
            (
                "gcr.io/google_containers/pause",
                "gcr.io/google_containers/pause",
                "gcr.io/google_containers/pause",
            ),
            (
                "127.0.0.1:5000/test/busybox",
                "127.0.0.1:5000/test/busybox",
                "127.0.0.1:5000/test/busybox",
            ),
            ("[::1]:5000/foo", "[::1]:5000/foo", "[::1]:5000/foo"),
            (
                "[2001:db8::1]/foo",
                "[2001:db8::1]/foo",
                "[2001:db8::1]/foo",
            ),
            ("Foo/bar", "Foo/bar", "Foo/bar"),
            ("foo_bar/baz", "docker.io/foo_bar/baz", "foo_bar/baz"),
            (
                "foo__bar/a---b",
                "docker.io/foo__bar/a---b",
                "foo__bar/a---b",
            ),
        ];
        for (input, name, familiar) in cases {
            let r = ok(input);
            assert_eq!(r.name(), name, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(r.tag(), None);
            assert_eq!(r.object(), "latest");
        }
    }

    /// reference_test.go's tag/digest/host:port cases.
    #[test]
    fn splits_tags_digests_and_ports_like_docker() {
        let r = ok("test_com");
        assert_eq!(
            (r.name().as_str(), r.tag()),
            ("docker.io/library/test_com", None)
        );
        let r = ok("test.com:tag");
        assert_eq!((r.path(), r.tag()), ("library/test.com", Some("tag")));
        let r = ok("test.com:5000");
        assert_eq!((r.path(), r.tag()), ("library/test.com", Some("5000")));
        let r = ok("test.com/repo:tag");
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("test.com", "repo", Some("tag"))
        );
        let r = ok("test:5000/repo");
        assert_eq!((r.domain(), r.path(), r.tag()), ("test:5000", "repo", None));
        let r = ok("test:5000/repo:tag");
        assert_eq!((r.domain(), r.tag()), ("test:5000", Some("tag")));
        let r = ok(&format!("test:5000/repo@sha256:{HEX64}"));
        assert_eq!(r.domain(), "test:5000");
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().hex(), HEX64);
        assert_eq!(r.object(), format!("sha256:{HEX64}"));
        let r = ok(&format!("test:5000/repo:tag@sha256:{HEX64}"));
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.object(), format!("sha256:{HEX64}"), "digest wins");
        assert_eq!(r.to_string(), format!("test:5000/repo:tag@sha256:{HEX64}"));
        let r = ok("foo_bar.com:8080");
        assert_eq!((r.path(), r.tag()), ("library/foo_bar.com", Some("8080")));
        let r = ok("foo/foo_bar.com:8080");
        assert_eq!((r.path(), r.tag()), ("foo/foo_bar.com", Some("8080")));
        let r = ok("sub-dom1.foo.com/bar/baz/quux:some-long-tag");
        assert_eq!(r.domain(), "sub-dom1.foo.com");
        assert_eq!(r.path(), "bar/baz/quux");
        assert_eq!(r.familiar(), "sub-dom1.foo.com/bar/baz/quux:some-long-tag");
        let r = ok("b.gcr.io/test.example.com/my-app:test.example.com");
        assert_eq!(r.tag(), Some("test.example.com"));
        let r = ok("xn--n3h.com/myimage:xn--n3h.com");
        assert_eq!(r.domain(), "xn--n3h.com");
        assert_eq!(
            ok("busybox").with_default_tag().to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(ok("busybox:1.36").familiar(), "busybox:1.36");
        let sha512 = "a".repeat(128);
        assert_eq!(
            ok(&format!("x/y@sha512:{sha512}")).digest().unwrap().hex(),
            sha512
        );
        let tag128 = "a".repeat(128);
        assert_eq!(ok(&format!("x:{tag128}")).tag(), Some(tag128.as_str()));
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert!(err("").contains("at least one component"));
        assert!(err(":justtag").contains("missing repository name"));
        assert!(err(&format!("@sha256:{HEX64}")).contains("missing repository name"));
        assert!(err(HEX64).contains("64-byte hexadecimal"));
        let e = err("Uppercase:tag");
        assert!(
            e.contains("repository name (library/Uppercase) must be lowercase"),
            "{e}"
        );
        let e = err("docker.io/Foo/bar");
        assert!(e.contains("(Foo/bar) must be lowercase"), "{e}");
        let e = err("aa/asdf$$^/aa");
        assert!(e.contains("\"asdf$$^\""), "{e}");
        let e = err("a/-b");
        assert!(e.contains("\"-b\""), "{e}");
        let e = err("a//b");
        assert!(e.contains("component \"\""), "{e}");
        let e = err("foo/bar:tag!");
        assert!(e.contains("invalid tag \"tag!\""), "{e}");
        let e = err(&format!("x:{}", "a".repeat(129)));
        assert!(e.contains("invalid tag"), "{e}");
        let e = err("x:.dot");
        assert!(e.contains("invalid tag \".dot\""), "{e}");
        let e = err("repo@sha256:ffff");
        assert!(e.contains("invalid digest format"), "{e}");
        let e = err(&format!("validname@invaliddigest:{HEX64}"));
        assert!(
            e.contains("unsupported digest algorithm \"invaliddigest\""),
            "{e}"
        );
        let e = err(&format!("repo@sha256:{}", "f".repeat(63)));
        assert!(e.contains("invalid checksum digest length"), "{e}");
        let e = err("-bad.host:5000/repo");
        assert!(
            e.contains("invalid registry host \"-bad.host:5000\""),
            "{e}"
        );
        let e = err("host:port/repo");
        assert!(e.contains("invalid registry host \"host:port\""), "{e}");
        let e = err("[fe80::1%eth0]:5000/repo");
        assert!(e.contains("invalid registry host"), "{e}");
        let e = err(&format!("{}/{}", "a".repeat(200), "b".repeat(60)));
        assert!(e.contains("more than 255 characters"), "{e}");
        // The input is quoted in the message.
        assert!(err("a/B").contains("\"a/B\""));
    }
}
