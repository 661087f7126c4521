//! Query strings and form bodies: `a=1&b=x%3Ay` → pairs, percent- and `+`-decoded.

pub fn parse(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex_pair(bytes[i + 1], bytes[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_pair(a: u8, b: u8) -> Option<u8> {
    let v = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(v(a)? * 16 + v(b)?)
}

/// Percent-encode a value for a query string we build (Link headers).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let p = parse("digest=sha256%3Aabc&mount=x&from=a%2Fb&n=10&flag&s=a+b&bad=%zz&end=%4");
        assert_eq!(get(&p, "digest"), Some("sha256:abc"));
        assert_eq!(get(&p, "from"), Some("a/b"));
        assert_eq!(get(&p, "flag"), Some(""));
        assert_eq!(get(&p, "s"), Some("a b"));
        assert_eq!(get(&p, "bad"), Some("%zz"));
        assert_eq!(get(&p, "end"), Some("%4"));
        assert_eq!(get(&p, "missing"), None);
        assert_eq!(encode("a/b:c d"), "a/b%3Ac%20d");
    }
}
