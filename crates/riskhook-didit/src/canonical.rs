//! The canonical JSON that `X-Signature-V2` is an HMAC over (spec §2.3).
//!
//! Didit's Python backend signs
//! `json.dumps(shorten_floats(json.loads(raw)), sort_keys=True, ensure_ascii=False,
//! separators=(",", ":"))`. This module owns reproducing that byte for byte from the raw
//! body, plus the two variants the spec tells us to also accept: the same rules with
//! `ensure_ascii=True`, and Didit's JavaScript sample `JSON.stringify(sortKeys(JSON.parse(raw)))`.
//!
//! It is a strict RFC 8259 parser of its own rather than `serde_json` because the output depends
//! on details `serde_json` does not keep: integer tokens of any length, float-versus-integer
//! tokens, and Python's float `repr`. It is pure and must never panic: it sees attacker bytes
//! before any MAC has been checked.

use std::cmp::Ordering;
use std::fmt;
use std::io::Write as _;

/// Which canonical encoding to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CanonicalForm {
    /// Didit's reference: Python rules, unescaped Unicode. The primary.
    Python,
    /// Python rules with `ensure_ascii=True`.
    PythonAscii,
    /// Didit's JavaScript sample: `JSON.stringify(sortKeys(parsed))`.
    JavaScript,
}

impl CanonicalForm {
    /// Every form, primary first: the order in which a verifier should try them.
    pub const ALL: [CanonicalForm; 3] = [Self::Python, Self::PythonAscii, Self::JavaScript];

    /// A stable lowercase name, for logs and metrics.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::PythonAscii => "python-ascii",
            Self::JavaScript => "javascript",
        }
    }
}

impl fmt::Display for CanonicalForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a body could not be canonicalised. Offsets are byte offsets into the body.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    /// The body is not UTF-8; `offset` is where the first invalid sequence starts.
    #[error("body is not valid UTF-8 (at byte {offset})")]
    InvalidUtf8 { offset: usize },
    #[error("unexpected end of JSON input")]
    UnexpectedEnd,
    #[error("unexpected byte 0x{byte:02x} at offset {offset}")]
    UnexpectedByte { offset: usize, byte: u8 },
    #[error("trailing characters after the JSON value at offset {offset}")]
    TrailingCharacters { offset: usize },
    #[error("arrays/objects nested deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("invalid number at offset {offset}")]
    InvalidNumber { offset: usize },
    #[error("invalid escape sequence at offset {offset}")]
    InvalidEscape { offset: usize },
    /// A `\uD800`–`\uDFFF` escape not part of a pair: Python could not have UTF-8 encoded it,
    /// so Didit cannot have signed it.
    #[error("lone UTF-16 surrogate escape at offset {offset}")]
    LoneSurrogate { offset: usize },
    #[error("raw control character in string at offset {offset}")]
    ControlCharacterInString { offset: usize },
}

/// A parsed JSON document that remembers what canonicalisation needs (number tokens as written).
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalJson {
    root: Value,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    /// Python keeps integer tokens as exact big ints, so the text is what matters; the
    /// binary64 value is what JavaScript sees.
    Int {
        token: Box<str>,
        value: f64,
    },
    Float(f64),
    String(Box<str>),
    Array(Vec<Value>),
    /// Sorted by key bytes (UTF-8 byte order is code point order, Python's `sort_keys`),
    /// duplicates already resolved last-wins.
    Object(Vec<(Box<str>, Value)>),
}

impl CanonicalJson {
    /// Maximum nesting depth of arrays/objects accepted (128, like `serde_json`).
    pub const MAX_DEPTH: usize = 128;

    /// Parses a body as strict RFC 8259 JSON.
    ///
    /// # Errors
    ///
    /// Anything that is not exactly one valid JSON value in UTF-8, a lone surrogate escape, or
    /// nesting deeper than [`Self::MAX_DEPTH`].
    pub fn parse(bytes: &[u8]) -> Result<Self, CanonicalError> {
        let text = std::str::from_utf8(bytes).map_err(|e| CanonicalError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let mut parser = Parser { text, pos: 0 };
        let root = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos < text.len() {
            return Err(CanonicalError::TrailingCharacters { offset: parser.pos });
        }
        Ok(Self { root })
    }

    /// Appends the canonical encoding in `form` to `out`.
    pub fn write(&self, form: CanonicalForm, out: &mut Vec<u8>) {
        write_value(&self.root, form, out);
    }

    /// The canonical encoding in `form`.
    #[must_use]
    pub fn to_vec(&self, form: CanonicalForm) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(form, &mut out);
        out
    }
}

/// [`CanonicalJson::parse`] then [`CanonicalJson::to_vec`].
///
/// # Errors
///
/// As [`CanonicalJson::parse`].
pub fn canonicalize(bytes: &[u8], form: CanonicalForm) -> Result<Vec<u8>, CanonicalError> {
    Ok(CanonicalJson::parse(bytes)?.to_vec(form))
}

// ---------------------------------------------------------------------------------------------
// Parsing

struct Parser<'a> {
    /// Already UTF-8 validated, so any slice between two ASCII bytes is a valid `str`.
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> CanonicalError {
        match self.peek() {
            Some(byte) => CanonicalError::UnexpectedByte {
                offset: self.pos,
                byte,
            },
            None => CanonicalError::UnexpectedEnd,
        }
    }

    /// Slices only ever start and end at ASCII delimiters, so `get` cannot fail; it is used
    /// instead of indexing so that a bug here becomes an error rather than a panic.
    fn slice(&self, start: usize, end: usize) -> Result<&'a str, CanonicalError> {
        self.text
            .get(start..end)
            .ok_or(CanonicalError::InvalidUtf8 { offset: start })
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), CanonicalError> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected()),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, CanonicalError> {
        for &byte in word {
            self.expect(byte)?;
        }
        Ok(value)
    }

    /// Parses `open item (, item)* close`, or `open close`, calling `item` for each item.
    fn list(
        &mut self,
        depth: usize,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), CanonicalError>,
    ) -> Result<(), CanonicalError> {
        // Checked before descending, so hostile nesting costs at most MAX_DEPTH stack frames.
        if depth > CanonicalJson::MAX_DEPTH {
            return Err(CanonicalError::TooDeep {
                limit: CanonicalJson::MAX_DEPTH,
            });
        }
        self.pos += 1;
        self.skip_whitespace();
        if self.eat(close) {
            return Ok(());
        }
        loop {
            item(self)?;
            self.skip_whitespace();
            if !self.eat(b',') {
                return self.expect(close);
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        let mut items = Vec::new();
        self.list(depth, b']', |p| {
            items.push(p.value(depth)?);
            Ok(())
        })?;
        Ok(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Result<Value, CanonicalError> {
        let mut entries: Vec<(Box<str>, Value)> = Vec::new();
        self.list(depth, b'}', |p| {
            p.skip_whitespace();
            let key = p.string()?;
            p.skip_whitespace();
            p.expect(b':')?;
            entries.push((key, p.value(depth)?));
            Ok(())
        })?;
        // A stable sort keeps duplicates in document order, so the last of each run is the
        // one Python's dict (and JSON.parse) would keep.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                std::mem::swap(&mut later.1, &mut earlier.1);
            }
            same
        });
        Ok(Value::Object(entries))
    }

    fn string(&mut self) -> Result<Box<str>, CanonicalError> {
        self.expect(b'"')?;
        // Most strings have no escapes: borrow the run and allocate once at the end.
        let mut decoded: Option<String> = None;
        let mut run_start = self.pos;
        loop {
            match self.peek() {
                None => return Err(CanonicalError::UnexpectedEnd),
                Some(b'"') => {
                    let run = self.slice(run_start, self.pos)?;
                    self.pos += 1;
                    return Ok(match decoded {
                        Some(mut s) => {
                            s.push_str(run);
                            s.into_boxed_str()
                        }
                        None => run.into(),
                    });
                }
                Some(b'\\') => {
                    let run = self.slice(run_start, self.pos)?;
                    let c = self.escape()?;
                    let s = decoded.get_or_insert_with(String::new);
                    s.push_str(run);
                    s.push(c);
                    run_start = self.pos;
                }
                Some(0x00..=0x1f) => {
                    return Err(CanonicalError::ControlCharacterInString { offset: self.pos });
                }
                // Bytes of multi-byte UTF-8 sequences are all >= 0x80, so they land here.
                Some(_) => self.pos += 1,
            }
        }
    }

    fn escape(&mut self) -> Result<char, CanonicalError> {
        let start = self.pos;
        let invalid = CanonicalError::InvalidEscape { offset: start };
        self.pos += 1;
        let kind = self.peek().ok_or(CanonicalError::UnexpectedEnd)?;
        self.pos += 1;
        let c = match kind {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4(start)?;
                let scalar = match unit {
                    0xd800..=0xdbff
                        if self.text.as_bytes().get(self.pos..self.pos + 2) == Some(b"\\u") =>
                    {
                        self.pos += 2;
                        let low = self.hex4(start)?;
                        if (0xdc00..=0xdfff).contains(&low) {
                            0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                        } else {
                            unit
                        }
                    }
                    _ => unit,
                };
                // Only a surrogate left unpaired fails here: Python could not have encoded it.
                char::from_u32(scalar).ok_or(CanonicalError::LoneSurrogate { offset: start })?
            }
            _ => return Err(invalid),
        };
        Ok(c)
    }

    fn hex4(&mut self, escape_start: usize) -> Result<u32, CanonicalError> {
        let mut unit = 0;
        for _ in 0..4 {
            let byte = self.peek().ok_or(CanonicalError::UnexpectedEnd)?;
            let digit = char::from(byte).to_digit(16);
            let digit = digit.ok_or(CanonicalError::InvalidEscape {
                offset: escape_start,
            })?;
            unit = unit * 16 + digit;
            self.pos += 1;
        }
        Ok(unit)
    }

    /// Consumes `[0-9]+`, false if there was none.
    fn digits(&mut self) -> bool {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos > start
    }

    fn number(&mut self) -> Result<Value, CanonicalError> {
        let start = self.pos;
        let invalid = CanonicalError::InvalidNumber { offset: start };
        self.eat(b'-');
        // RFC 8259 allows "0" but no other leading zero.
        if self.eat(b'0') {
            if let Some(b'0'..=b'9') = self.peek() {
                return Err(invalid);
            }
        } else if !self.digits() {
            return Err(invalid);
        }
        let fraction = self.eat(b'.');
        if fraction && !self.digits() {
            return Err(invalid);
        }
        let exponent = self.eat(b'e') || self.eat(b'E');
        if exponent {
            let _signed = self.eat(b'+') || self.eat(b'-');
            if !self.digits() {
                return Err(invalid);
            }
        }
        let integer = !fraction && !exponent;
        let token = self.slice(start, self.pos)?;
        // Rust's parser is correctly rounded like Python's float() and JSON.parse, and turns
        // an exponent overflow into an infinity just as they do.
        let value: f64 = token.parse().map_err(|_| invalid)?;
        Ok(if integer {
            Value::Int {
                token: token.into(),
                value,
            }
        } else {
            Value::Float(value)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

fn write_value(value: &Value, form: CanonicalForm, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int { value, .. } | Value::Float(value) if form == CanonicalForm::JavaScript => {
            write_js_number(*value, out);
        }
        // Python's int("-0") is 0; the grammar allows no other integer token that differs.
        Value::Int { token, .. } if &**token == "-0" => out.push(b'0'),
        Value::Int { token, .. } => out.extend_from_slice(token.as_bytes()),
        Value::Float(x) => write_python_float(*x, out),
        Value::String(s) => write_string(s, form, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, form, out);
            }
            out.push(b']');
        }
        Value::Object(entries) => {
            if form == CanonicalForm::JavaScript && entries.iter().any(|(k, _)| js_reorders(k)) {
                let mut ordered: Vec<&(Box<str>, Value)> = entries.iter().collect();
                ordered.sort_by(|a, b| js_key_order(&a.0, &b.0));
                write_entries(ordered.into_iter(), form, out);
            } else {
                write_entries(entries.iter(), form, out);
            }
        }
    }
}

fn write_entries<'v>(
    entries: impl Iterator<Item = &'v (Box<str>, Value)>,
    form: CanonicalForm,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    for (i, (key, value)) in entries.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, form, out);
        out.push(b':');
        write_value(value, form, out);
    }
    out.push(b'}');
}

/// Whether a key can sit elsewhere in JavaScript's order than in code point order: UTF-16
/// order differs only for astral characters, and array-index keys are enumerated first.
fn js_reorders(key: &str) -> bool {
    js_array_index(key).is_some() || key.bytes().any(|b| b >= 0xf0)
}

/// `sortKeys` sorts by UTF-16 code units and rebuilds a plain object, but an object
/// enumerates "array index" keys (canonical decimal integers below 2^32 - 1) first, in numeric
/// order, so `JSON.stringify` emits `{"9":..,"10":..,"a":..}`. Checked against Node.
///
/// Deliberately not reproduced: `acc["__proto__"] = v` in `sortKeys` sets the prototype
/// instead of a property, dropping the key from the output. Dropping it here would let an
/// attacker add a `__proto__` member to a signed body without breaking this variant's MAC.
fn js_key_order(a: &str, b: &str) -> Ordering {
    match (js_array_index(a), js_array_index(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

fn js_array_index(key: &str) -> Option<u32> {
    // Only the canonical spelling is an index: "01" and "+1" are ordinary keys.
    let canonical =
        key == "0" || (!key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit()));
    key.parse::<u32>()
        .ok()
        .filter(|&i| canonical && i != u32::MAX)
}

fn write_string(s: &str, form: CanonicalForm, out: &mut Vec<u8>) {
    out.push(b'"');
    if form == CanonicalForm::PythonAscii {
        for c in s.chars() {
            match c {
                ' '..='~' if c != '"' && c != '\\' => out.push(c as u8),
                _ => {
                    let mut units = [0; 2];
                    for unit in c.encode_utf16(&mut units) {
                        write_escape(*unit, out);
                    }
                }
            }
        }
    } else {
        // Python's ensure_ascii=False and JSON.stringify escape the same set: quote,
        // backslash and C0 controls. Everything else is copied in runs.
        let bytes = s.as_bytes();
        let mut run_start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'"' || b == b'\\' || b < 0x20 {
                out.extend_from_slice(bytes.get(run_start..i).unwrap_or_default());
                write_escape(u16::from(b), out);
                run_start = i + 1;
            }
        }
        out.extend_from_slice(bytes.get(run_start..).unwrap_or_default());
    }
    out.push(b'"');
}

fn write_escape(unit: u16, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match unit {
        0x22 => out.extend_from_slice(b"\\\""),
        0x5c => out.extend_from_slice(b"\\\\"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        0x0a => out.extend_from_slice(b"\\n"),
        0x0d => out.extend_from_slice(b"\\r"),
        0x09 => out.extend_from_slice(b"\\t"),
        _ => {
            out.extend_from_slice(b"\\u");
            for shift in [12, 8, 4, 0] {
                out.push(HEX[usize::from((unit >> shift) & 0xf)]);
            }
        }
    }
}

/// `json.dumps(shorten_floats(x))` for a Python float `x`.
fn write_python_float(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() {
        // What json.dumps prints for an overflowed float; NaN cannot come out of the parser.
        let text: &[u8] = match x {
            _ if x.is_nan() => b"NaN",
            _ if x > 0.0 => b"Infinity",
            _ => b"-Infinity",
        };
        out.extend_from_slice(text);
    } else if x == 0.0 {
        out.push(b'0');
    } else if x.fract() == 0.0 {
        // shorten_floats made it int(x): the exact value of the double, which `{:.0}` prints.
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{x:.0}");
    } else {
        let d = Shortest::of(x);
        if x < 0.0 {
            out.push(b'-');
        }
        // CPython's repr: exponent form outside 1e-4 <= |x| < 1e16.
        match d.decpt {
            ..=-4 | 17.. => write_exponent_form(d.digits(), d.decpt - 1, 2, out),
            ..=0 => write_fraction(d.digits(), d.decpt, out),
            point => write_with_point(d.digits(), point, out),
        }
    }
}

/// ECMAScript `Number::toString(x)`, which is how `JSON.stringify` prints numbers.
fn write_js_number(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
    } else if x == 0.0 {
        out.push(b'0');
    } else {
        let d = Shortest::of(x);
        if x < 0.0 {
            out.push(b'-');
        }
        match d.decpt {
            1..=21 => write_with_point(d.digits(), d.decpt, out),
            -5..=0 => write_fraction(d.digits(), d.decpt, out),
            _ => write_exponent_form(d.digits(), d.decpt - 1, 1, out),
        }
    }
}

/// `digits` with a decimal point after `point` of them; padded with zeros and no point when
/// there are not more digits than that.
fn write_with_point(digits: &[u8], point: i32, out: &mut Vec<u8>) {
    let point = usize::try_from(point).unwrap_or(0);
    if let (Some(int), Some(frac @ [_, ..])) = (digits.get(..point), digits.get(point..)) {
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(digits);
        out.resize(out.len() + point.saturating_sub(digits.len()), b'0');
    }
}

/// `0.000ddd` for a value below 1, where `decpt <= 0`.
fn write_fraction(digits: &[u8], decpt: i32, out: &mut Vec<u8>) {
    out.extend_from_slice(b"0.");
    out.resize(out.len() + decpt.unsigned_abs() as usize, b'0');
    out.extend_from_slice(digits);
}

/// `d1[.d2..dn]e±X`, the exponent zero-padded to `min_width` digits.
fn write_exponent_form(digits: &[u8], exponent: i32, min_width: usize, out: &mut Vec<u8>) {
    if let Some((first, rest)) = digits.split_first() {
        out.push(*first);
        if !rest.is_empty() {
            out.push(b'.');
            out.extend_from_slice(rest);
        }
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    let magnitude = exponent.unsigned_abs();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "e{sign}{magnitude:0min_width$}");
}

/// The shortest round-trip decimal digits of a finite non-zero double, which Python's `repr`
/// and ECMAScript both use: value = 0.d1..dn × 10^decpt.
struct Shortest {
    buf: [u8; 24],
    len: usize,
    decpt: i32,
}

impl Shortest {
    /// Ryu finds the same shortest, closest digits as `CPython`'s dtoa and V8; only its layout
    /// (`1e-5`, `0.00025`, `1.2345e20`, `100.0`) differs, so it is taken apart here.
    fn of(x: f64) -> Self {
        let mut ryu = ryu::Buffer::new();
        let text = ryu.format_finite(x.abs());
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let int_len = i32::try_from(int.len()).unwrap_or(0);
        let mut this = Self {
            buf: [0; 24],
            len: 0,
            decpt: int_len + exponent.parse::<i32>().unwrap_or(0),
        };
        for b in int.bytes().chain(frac.bytes()) {
            if this.len == 0 && b == b'0' {
                this.decpt -= 1;
            } else if let Some(slot) = this.buf.get_mut(this.len) {
                *slot = b;
                this.len += 1;
            }
        }
        while this.digits().last() == Some(&b'0') {
            this.len -= 1;
        }
        this
    }

    fn digits(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}
