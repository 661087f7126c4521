//! Docker's multiplexed stream framing: `[stream, 0, 0, 0, len: u32 big-endian] payload`.

pub const STREAM_STDIN: u8 = 0;
pub const STREAM_STDOUT: u8 = 1;
pub const STREAM_STDERR: u8 = 2;
/// berth's own: the last frame of an exec stream, payload = exit code in ASCII.
pub const STREAM_EXIT: u8 = 0xEE;

pub const HEADER_LEN: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub stream: u8,
    pub payload: Vec<u8>,
}

/// The 8-byte header for `len` bytes of `stream`.
pub fn header(stream: u8, len: usize) -> [u8; HEADER_LEN] {
    let l = (len as u32).to_be_bytes();
    [stream, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Header and payload in one buffer.
pub fn encode(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + payload.len());
    v.extend_from_slice(&header(stream, payload.len()));
    v.extend_from_slice(payload);
    v
}

/// Parse a header: (stream, payload length).
pub fn parse_header(h: &[u8; HEADER_LEN]) -> (u8, usize) {
    (h[0], u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let v = encode(STREAM_STDERR, b"hello");
        let h: [u8; 8] = v[..8].try_into().unwrap();
        assert_eq!(parse_header(&h), (STREAM_STDERR, 5));
        assert_eq!(&v[8..], b"hello");
    }
}
