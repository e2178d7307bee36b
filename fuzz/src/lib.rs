//! What the fuzz targets share: the key the `verify` target checks against, and the framing
//! that packs one delivery (flags, four header values, body) into one fuzzer input.
//!
//! The framing is plain text so that seeds made from real signed deliveries stay readable and
//! the fuzzer's byte mutations land on header values and body alike.

use riskhook_didit::signature::{Key, Secret};

/// The secret of the spec's test vectors; the `verify` seeds are signed with it.
pub const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";

/// The receiver's clock for the `verify` target: the fixtures' time.
pub const NOW: i64 = 1_780_045_046;

/// The one key of the `verify` target's keyring.
pub fn key() -> Key {
    match Key::new("fuzz", &Secret::new(SECRET)) {
        Ok(key) => key,
        Err(e) => panic!("the fuzz key is valid: {e}"),
    }
}

/// One delivery as the `verify` target reads it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Framed<'a> {
    /// Accept `X-Signature-Simple`.
    pub allow_simple: bool,
    /// A window of ten years instead of five minutes, so that mutated timestamps still reach
    /// the signature and payload checks.
    pub wide_window: bool,
    /// `X-Timestamp`, `X-Signature`, `X-Signature-V2`, `X-Signature-Simple`; `None` is absent.
    pub headers: [Option<&'a str>; 4],
    /// The body.
    pub body: &'a [u8],
}

const ABSENT: &str = "\u{1}";

impl<'a> Framed<'a> {
    /// `flags \n h1 \n h2 \n h3 \n h4 \n body`, where flags is a digit (bit 0: allow Simple,
    /// bit 1: wide window) and an absent header is a single U+0001. `None` when the input has
    /// fewer than five lines or a header line is not UTF-8 (HTTP could not carry it as text).
    pub fn decode(data: &'a [u8]) -> Option<Self> {
        let mut parts = data.splitn(6, |&b| b == b'\n');
        let flags = parts.next()?.first().copied().unwrap_or(b'0');
        let mut headers = [None; 4];
        for slot in &mut headers {
            let line = std::str::from_utf8(parts.next()?).ok()?;
            *slot = (line != ABSENT).then_some(line);
        }
        Some(Self {
            allow_simple: flags & 1 != 0,
            wide_window: flags & 2 != 0,
            headers,
            body: parts.next().unwrap_or_default(),
        })
    }

    /// The inverse of [`Framed::decode`] (header values must not contain a newline).
    pub fn encode(&self) -> Vec<u8> {
        let flags = b'0' + u8::from(self.allow_simple) + 2 * u8::from(self.wide_window);
        let mut out = vec![flags, b'\n'];
        for header in self.headers {
            out.extend_from_slice(header.unwrap_or(ABSENT).as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(self.body);
        out
    }
}
