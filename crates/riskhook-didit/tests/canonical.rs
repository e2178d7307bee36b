//! Tests of the `X-Signature-V2` canonical JSON: the spec's §7.2 vectors, a number table
//! generated with the Python reference and Node, rejections, and property tests.
#![allow(clippy::unwrap_used)]

use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use riskhook_didit::canonical::{CanonicalError, CanonicalForm, CanonicalJson, canonicalize};
use sha2::Sha256;

const SECRET: &str = "tno2NTeRC1ZK3sBOYlBJDyEzBVENl3pQ1AcZyAW0xnQ";

fn hmac_hex(message: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn canon(input: &str, form: CanonicalForm) -> String {
    String::from_utf8(canonicalize(input.as_bytes(), form).unwrap()).unwrap()
}

fn err(input: &[u8]) -> CanonicalError {
    CanonicalJson::parse(input).unwrap_err()
}

// ---------------------------------------------------------------------------------------------
// §7.2 vectors

#[test]
fn vector_a_ascii_payload_is_its_own_canonical_form() {
    let raw = r#"{"created_at":1780045046,"decision":{"status":"Approved"},"session_id":"11111111-2222-3333-4444-555555555555","status":"Approved","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated","workflow_id":"11111111-2222-3333-4444-555555555555"}"#;
    for form in CanonicalForm::ALL {
        assert_eq!(canon(raw, form), raw, "{form}");
    }
    assert_eq!(
        hmac_hex(raw.as_bytes()),
        "d964f5b0ee6214cf0097ded7eb7327709250e585cc3e52604724e9cd5421a162"
    );
}

#[test]
fn vector_b_non_ascii() {
    let raw = r#"{"decision":{"id_verifications":[{"first_name":"Jos\u00e9","last_name":"Espa\u00f1ola M\u00fcller","node_id":"feature_ocr","status":"Declined"}]},"session_id":"11111111-2222-3333-4444-555555555555","status":"Declined","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated"}"#;
    let unescaped = r#"{"decision":{"id_verifications":[{"first_name":"José","last_name":"Española Müller","node_id":"feature_ocr","status":"Declined"}]},"session_id":"11111111-2222-3333-4444-555555555555","status":"Declined","timestamp":1780045046,"vendor_data":"user-42","webhook_type":"status.updated"}"#;
    assert_eq!(
        hmac_hex(raw.as_bytes()),
        "3453bb3e6f54c4a77d552a2096baf575c7b9f53bc9229bf37e2603f7135c32a3"
    );

    let python = canon(raw, CanonicalForm::Python);
    assert_eq!(python, unescaped);
    assert_eq!(
        hmac_hex(python.as_bytes()),
        "69f629c8869d814deeb88926f4e5f222285601a538c85470fcb75576cd8934a8"
    );
    // The spec notes Node's JSON.stringify path gives the same bytes here.
    assert_eq!(canon(raw, CanonicalForm::JavaScript), unescaped);

    let ascii = canon(raw, CanonicalForm::PythonAscii);
    assert_eq!(ascii, raw);
    assert_eq!(
        hmac_hex(ascii.as_bytes()),
        "3453bb3e6f54c4a77d552a2096baf575c7b9f53bc9229bf37e2603f7135c32a3"
    );
    // Whatever the wire encoding, the same content gives the same canonical forms.
    assert_eq!(canon(unescaped, CanonicalForm::Python), unescaped);
    assert_eq!(canon(unescaped, CanonicalForm::PythonAscii), raw);
}

#[test]
fn vector_c_numbers() {
    let raw = r#"{"a":98.0,"b":1e-05,"c":1.1812083616449413e+38,"d":36.8421052631579,"e":-0.0,"f":0.00025,"g":1E2}"#;
    let python = canon(raw, CanonicalForm::Python);
    assert_eq!(
        python,
        r#"{"a":98,"b":1e-05,"c":118120836164494129544568202238038638592,"d":36.8421052631579,"e":0,"f":0.00025,"g":100}"#
    );
    assert_eq!(
        hmac_hex(python.as_bytes()),
        "fcd7fc09eb8ee5ca7406b7d60cb119834801619d3b66012f5cc0de2761ef7039"
    );
    assert_eq!(canon(raw, CanonicalForm::PythonAscii), python);

    let js = canon(raw, CanonicalForm::JavaScript);
    assert_eq!(
        js,
        r#"{"a":98,"b":0.00001,"c":1.1812083616449413e+38,"d":36.8421052631579,"e":0,"f":0.00025,"g":100}"#
    );
    assert_eq!(
        hmac_hex(js.as_bytes()),
        "c2cddc30c599b48fbdaf0aaa67b1fb3646d64c85af4e2fb17b5aed20b276f022"
    );
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// (token, Python reference output, `JSON.stringify` output), generated with Python 3.11's
/// `json.dumps(shorten_floats(json.loads(..)))` and Node's `JSON.stringify(JSON.parse(..))`.
const NUMBERS: &[(&str, &str, &str)] = &[
    ("98.0", "98", "98"),
    ("1e-05", "1e-05", "0.00001"),
    ("1E2", "100", "100"),
    ("-0.0", "0", "0"),
    ("-0", "0", "0"),
    ("0", "0", "0"),
    ("0.00025", "0.00025", "0.00025"),
    ("0.0001", "0.0001", "0.0001"),
    ("1e-4", "0.0001", "0.0001"),
    ("1e16", "10000000000000000", "10000000000000000"),
    ("1.5e16", "15000000000000000", "15000000000000000"),
    ("1e17", "100000000000000000", "100000000000000000"),
    (
        "100000000000000000",
        "100000000000000000",
        "100000000000000000",
    ),
    ("0.1", "0.1", "0.1"),
    ("1e22", "10000000000000000000000", "1e+22"),
    (
        "1.7976931348623157e308",
        "179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368",
        "1.7976931348623157e+308",
    ),
    ("5e-324", "5e-324", "5e-324"),
    ("-5e-324", "-5e-324", "-5e-324"),
    ("1.5e-07", "1.5e-07", "1.5e-7"),
    // Python's json.dumps(123456789012345680.5) is 1.2345678901234568e+17, but the double is
    // integral, so shorten_floats makes it an int first.
    (
        "123456789012345680.5",
        "123456789012345680",
        "123456789012345680",
    ),
    (
        "1180591620717411303424",
        "1180591620717411303424",
        "1.1805916207174113e+21",
    ),
    (
        "-1180591620717411303424",
        "-1180591620717411303424",
        "-1.1805916207174113e+21",
    ),
    (
        "12345678901234567890123456789",
        "12345678901234567890123456789",
        "1.2345678901234568e+28",
    ),
    ("1e400", "Infinity", "null"),
    ("-1e400", "-Infinity", "null"),
    ("1e999999999999999999999", "Infinity", "null"),
    ("1e-400", "0", "0"),
    ("1e-999999999999999999999", "0", "0"),
    ("36.8421052631579", "36.8421052631579", "36.8421052631579"),
    (
        "1.1812083616449413e+38",
        "118120836164494129544568202238038638592",
        "1.1812083616449413e+38",
    ),
    ("1e-7", "1e-07", "1e-7"),
    ("1e-6", "1e-06", "0.000001"),
    ("0.000001", "1e-06", "0.000001"),
    ("1e21", "1000000000000000000000", "1e+21"),
    ("1e20", "100000000000000000000", "100000000000000000000"),
    ("123e18", "123000000000000000000", "123000000000000000000"),
    (
        "9.999999999999999e-5",
        "9.999999999999999e-05",
        "0.00009999999999999999",
    ),
    // Rust's `{:e}` rounds this tie the other way (…63); Python and JS agree on …62.
    (
        "-126430982921026.62",
        "-126430982921026.62",
        "-126430982921026.62",
    ),
    (
        "1000000000000000.5",
        "1000000000000000.5",
        "1000000000000000.5",
    ),
    ("-1.5", "-1.5", "-1.5"),
    ("9007199254740993", "9007199254740993", "9007199254740992"),
    ("9007199254740993.0", "9007199254740992", "9007199254740992"),
    ("2.5e-3", "0.0025", "0.0025"),
    ("1.0e+2", "100", "100"),
    ("99.03", "99.03", "99.03"),
    ("0.0595", "0.0595", "0.0595"),
    ("4.35", "4.35", "4.35"),
    ("1e-10", "1e-10", "1e-10"),
    ("-2.5e-5", "-2.5e-05", "-0.000025"),
];

#[test]
fn number_table() {
    for &(token, python, js) in NUMBERS {
        let input = format!("[{token}]");
        assert_eq!(
            canon(&input, CanonicalForm::Python),
            format!("[{python}]"),
            "{token}"
        );
        assert_eq!(
            canon(&input, CanonicalForm::PythonAscii),
            format!("[{python}]"),
            "{token}"
        );
        assert_eq!(
            canon(&input, CanonicalForm::JavaScript),
            format!("[{js}]"),
            "{token}"
        );
    }
}

#[test]
fn two_to_the_seventy_stays_exact() {
    let token = (1u128 << 70).to_string();
    assert_eq!(token, "1180591620717411303424");
    assert_eq!(canon(&token, CanonicalForm::Python), token);
}

// ---------------------------------------------------------------------------------------------
// Strings and keys

#[test]
fn string_escaping_per_form() {
    let raw = r#""\u0000\u001F\u007f/\/\u2028\u2029é😀\ud83d\ude00\"\\\b\f\n\r\t\u000b x""#;
    assert_eq!(
        canon(raw, CanonicalForm::Python),
        "\"\\u0000\\u001f\u{7f}//\u{2028}\u{2029}é😀😀\\\"\\\\\\b\\f\\n\\r\\t\\u000b x\""
    );
    assert_eq!(
        canon(raw, CanonicalForm::JavaScript),
        canon(raw, CanonicalForm::Python)
    );
    assert_eq!(
        canon(raw, CanonicalForm::PythonAscii),
        r#""\u0000\u001f\u007f//\u2028\u2029\u00e9\ud83d\ude00\ud83d\ude00\"\\\b\f\n\r\t\u000b x""#
    );
}

#[test]
fn keys_sort_by_code_point_recursively_and_last_duplicate_wins() {
    let raw = r#" { "b" : [ { "z" : 1 , "a" : 2 } ] , "a" : 1 , "a" : { "y" : null , "x" : true } , "B" : false } "#;
    let expected = r#"{"B":false,"a":{"x":true,"y":null},"b":[{"a":2,"z":1}]}"#;
    for form in CanonicalForm::ALL {
        assert_eq!(canon(raw, form), expected, "{form}");
    }
}

#[test]
fn astral_keys_sort_by_code_point_in_python_and_utf16_in_javascript() {
    let raw = r#"{"😀":1,"\uffff":2,"\ue000":3,"z":4}"#;
    assert_eq!(
        canon(raw, CanonicalForm::Python),
        "{\"z\":4,\"\u{e000}\":3,\"\u{ffff}\":2,\"😀\":1}"
    );
    assert_eq!(
        canon(raw, CanonicalForm::PythonAscii),
        r#"{"z":4,"\ue000":3,"\uffff":2,"\ud83d\ude00":1}"#
    );
    assert_eq!(
        canon(raw, CanonicalForm::JavaScript),
        "{\"z\":4,\"😀\":1,\"\u{e000}\":3,\"\u{ffff}\":2}"
    );
}

#[test]
fn javascript_puts_array_index_keys_first_in_numeric_order() {
    // Node: JSON.stringify(sortKeys(JSON.parse(raw))). "__proto__" is kept on purpose (see the
    // module): Node would drop it.
    let raw = r#"{"b":1,"10":2,"9":3,"4294967294":4,"4294967295":5,"a":6,"01":8,"+1":9,"1.0":10,"0":11,"":12,"__proto__":7}"#;
    assert_eq!(
        canon(raw, CanonicalForm::JavaScript),
        r#"{"0":11,"9":3,"10":2,"4294967294":4,"":12,"+1":9,"01":8,"1.0":10,"4294967295":5,"__proto__":7,"a":6,"b":1}"#
    );
    assert_eq!(
        canon(raw, CanonicalForm::Python),
        r#"{"":12,"+1":9,"0":11,"01":8,"1.0":10,"10":2,"4294967294":4,"4294967295":5,"9":3,"__proto__":7,"a":6,"b":1}"#
    );
}

#[test]
fn literals_whitespace_and_empty_containers() {
    let raw = " \t\r\n[true , false,null,{ },[ ], \"\" ,{\"\":[]}] \n";
    for form in CanonicalForm::ALL {
        assert_eq!(canon(raw, form), r#"[true,false,null,{},[],"",{"":[]}]"#);
    }
    assert_eq!(canon("\"x\"", CanonicalForm::Python), "\"x\"");
    assert_eq!(canon("-12", CanonicalForm::Python), "-12");
}

#[test]
fn write_appends_and_to_vec_matches() {
    let doc = CanonicalJson::parse(br#"{"b":1,"a":2}"#).unwrap();
    let mut out = b"prefix:".to_vec();
    doc.write(CanonicalForm::Python, &mut out);
    assert_eq!(out, br#"prefix:{"a":2,"b":1}"#);
    assert_eq!(doc.to_vec(CanonicalForm::Python), br#"{"a":2,"b":1}"#);
    assert_eq!(doc.clone(), doc);
}

#[test]
fn form_names() {
    let names: Vec<&str> = CanonicalForm::ALL.iter().map(|f| f.as_str()).collect();
    assert_eq!(names, ["python", "python-ascii", "javascript"]);
    assert_eq!(CanonicalForm::PythonAscii.to_string(), "python-ascii");
}

// ---------------------------------------------------------------------------------------------
// Rejections

#[test]
fn rejects_invalid_utf8_anywhere() {
    assert_eq!(
        err(b"{\"a\":\"x\xff\"}"),
        CanonicalError::InvalidUtf8 { offset: 7 }
    );
    assert_eq!(err(b"[1]\xc3"), CanonicalError::InvalidUtf8 { offset: 3 });
    // CESU-8 encoded surrogate: Python's surrogatepass would read it, then fail to encode it.
    assert_eq!(
        err(b"\"\xed\xa0\xbd\""),
        CanonicalError::InvalidUtf8 { offset: 1 }
    );
}

#[test]
fn rejects_lone_surrogates() {
    for raw in [
        r#""\ud800""#,
        r#""\udc00x""#,
        r#""\ud83d\u0041""#,
        r#""\ud83dx""#,
        r#""a\ud83d\n""#,
    ] {
        assert!(
            matches!(err(raw.as_bytes()), CanonicalError::LoneSurrogate { .. }),
            "{raw}"
        );
    }
    assert_eq!(
        err(br#"["ab\udE00"]"#),
        CanonicalError::LoneSurrogate { offset: 4 }
    );
}

#[test]
fn rejects_malformed_documents() {
    use CanonicalError as E;
    let cases: &[(&[u8], CanonicalError)] = &[
        (b"", E::UnexpectedEnd),
        (b"  \n", E::UnexpectedEnd),
        (b"[1] x", E::TrailingCharacters { offset: 4 }),
        (b"{} {}", E::TrailingCharacters { offset: 3 }),
        (
            b"NaN",
            E::UnexpectedByte {
                offset: 0,
                byte: b'N',
            },
        ),
        (
            b"[Infinity]",
            E::UnexpectedByte {
                offset: 1,
                byte: b'I',
            },
        ),
        (b"-Infinity", E::InvalidNumber { offset: 0 }),
        (b"01", E::InvalidNumber { offset: 0 }),
        (b"[-01]", E::InvalidNumber { offset: 1 }),
        (
            b"+1",
            E::UnexpectedByte {
                offset: 0,
                byte: b'+',
            },
        ),
        (
            b".5",
            E::UnexpectedByte {
                offset: 0,
                byte: b'.',
            },
        ),
        (b"1.", E::InvalidNumber { offset: 0 }),
        (b"1.e5", E::InvalidNumber { offset: 0 }),
        (b"1e", E::InvalidNumber { offset: 0 }),
        (b"1e+", E::InvalidNumber { offset: 0 }),
        (b"-", E::InvalidNumber { offset: 0 }),
        (b"\"a\x01\"", E::ControlCharacterInString { offset: 2 }),
        (b"\"a\nb\"", E::ControlCharacterInString { offset: 2 }),
        (b"\"\\x\"", E::InvalidEscape { offset: 1 }),
        (b"\"\\u12G4\"", E::InvalidEscape { offset: 1 }),
        (b"\"\\u12", E::UnexpectedEnd),
        (b"\"abc", E::UnexpectedEnd),
        (
            b"[1,]",
            E::UnexpectedByte {
                offset: 3,
                byte: b']',
            },
        ),
        (
            b"[1 2]",
            E::UnexpectedByte {
                offset: 3,
                byte: b'2',
            },
        ),
        (
            b"{\"a\":1,}",
            E::UnexpectedByte {
                offset: 7,
                byte: b'}',
            },
        ),
        (
            b"{\"a\" 1}",
            E::UnexpectedByte {
                offset: 5,
                byte: b'1',
            },
        ),
        (
            b"{a:1}",
            E::UnexpectedByte {
                offset: 1,
                byte: b'a',
            },
        ),
        (
            b"[tru]",
            E::UnexpectedByte {
                offset: 4,
                byte: b']',
            },
        ),
        (b"nul", E::UnexpectedEnd),
        (
            b"\xef\xbb\xbf{}",
            E::UnexpectedByte {
                offset: 0,
                byte: 0xef,
            },
        ),
        (
            b"[\x0c1]",
            E::UnexpectedByte {
                offset: 1,
                byte: 0x0c,
            },
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(&err(raw), expected, "{:?}", String::from_utf8_lossy(raw));
    }
}

#[test]
fn nesting_limit() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let limit = CanonicalJson::MAX_DEPTH;
    assert_eq!(limit, 128);
    assert_eq!(canon(&nested(limit), CanonicalForm::Python), nested(limit));
    assert_eq!(
        err(nested(limit + 1).as_bytes()),
        CanonicalError::TooDeep { limit }
    );
    assert_eq!(
        err(nested(200).as_bytes()),
        CanonicalError::TooDeep { limit }
    );

    let objects = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    assert_eq!(err(objects.as_bytes()), CanonicalError::TooDeep { limit });
}

#[test]
fn a_megabyte_of_open_brackets_fails_without_overflowing_the_stack() {
    // Speed is measured in benchmarks, not asserted here: what this shows is that the depth
    // limit stops the parse, whatever the length, instead of recursing a million frames.
    for open in [b'[', b'{'] {
        let body = vec![open; 1_000_000];
        let result = CanonicalJson::parse(&body);
        assert!(result.is_err());
    }
    let body = "[".repeat(1_000_000);
    assert_eq!(
        err(body.as_bytes()),
        CanonicalError::TooDeep {
            limit: CanonicalJson::MAX_DEPTH
        }
    );
}

#[test]
fn errors_display_their_offset() {
    assert_eq!(
        CanonicalError::UnexpectedByte {
            offset: 3,
            byte: b'x'
        }
        .to_string(),
        "unexpected byte 0x78 at offset 3"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests

/// A generated JSON value, encoded by the tests themselves in many equivalent ways.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    /// Integer token text.
    Int(String),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    /// Keys are unique, so any member order means the same object.
    Object(Vec<(String, Json)>),
}

/// SplitMix64: the encoding choices, driven by one proptest-generated seed.
struct Rng {
    state: u64,
    /// Whether integers may be spelled as floats (`5.0`), which serde_json reads differently.
    respell_ints: bool,
}

impl Rng {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn char_strategy() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
        2 => proptest::char::range('\0', '\u{1f}'),
        2 => prop::sample::select(vec!['"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}', 'é', '\u{e000}', '\u{ffff}', '😀', '\u{10ffff}']),
        1 => proptest::char::range('\u{10000}', '\u{10ffff}'),
    ]
}

fn string_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(char_strategy(), 0..10).prop_map(|chars| chars.into_iter().collect())
}

fn int_strategy(big: bool) -> BoxedStrategy<String> {
    let small = any::<i64>().prop_map(|i| i.to_string());
    if !big {
        return small.boxed();
    }
    let huge = (1u64.., any::<u64>(), any::<bool>()).prop_map(|(high, low, negative)| {
        let sign = if negative { "-" } else { "" };
        format!("{sign}{high}{:019}", low % 10_000_000_000_000_000_000)
    });
    prop_oneof![small, huge, (-1000i64..1000).prop_map(|i| i.to_string())].boxed()
}

fn json_strategy(floats: bool, big_ints: bool) -> impl Strategy<Value = Json> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "a",
            "b",
            "B",
            "0",
            "9",
            "10",
            "01",
            "4294967295",
            "é",
            "😀",
            "\u{ffff}",
            ""
        ])
        .prop_map(str::to_owned),
        string_strategy(),
    ];
    let float = any::<f64>()
        .prop_filter("finite", |x| x.is_finite())
        .prop_map(Json::Float);
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        int_strategy(big_ints).prop_map(Json::Int),
        string_strategy().prop_map(Json::Str),
        if floats {
            float.boxed()
        } else {
            Just(Json::Null).boxed()
        },
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|mut members| {
                let mut seen = std::collections::HashSet::new();
                members.retain(|(k, _)| seen.insert(k.clone()));
                Json::Object(members)
            }),
        ]
    })
}

/// The simplest encoding: members in generated order, only the mandatory escapes.
fn plain(value: &Json) -> String {
    let mut out = String::new();
    encode(value, &mut None, &mut out);
    out
}

/// An equivalent encoding with random member order, whitespace, escapes and number spelling.
fn scrambled(value: &Json, seed: u64, respell_ints: bool) -> String {
    let mut out = String::new();
    let rng = Rng {
        state: seed,
        respell_ints,
    };
    encode(value, &mut Some(rng), &mut out);
    out
}

fn whitespace(rng: &mut Option<Rng>, out: &mut String) {
    if let Some(rng) = rng {
        while rng.chance(30) {
            out.push([' ', '\t', '\n', '\r'][rng.below(4) as usize]);
        }
    }
}

fn encode(value: &Json, rng: &mut Option<Rng>, out: &mut String) {
    whitespace(rng, out);
    match value {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Int(token) => out.push_str(&int_spelling(token, rng)),
        Json::Float(x) => out.push_str(&float_spelling(*x, rng)),
        Json::Str(s) => encode_string(s, rng, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                encode(item, rng, out);
            }
            whitespace(rng, out);
            out.push(']');
        }
        Json::Object(members) => {
            let mut order: Vec<usize> = (0..members.len()).collect();
            if let Some(rng) = rng {
                for i in (1..order.len()).rev() {
                    order.swap(i, rng.below(i as u64 + 1) as usize);
                }
            }
            out.push('{');
            for (n, &i) in order.iter().enumerate() {
                let (key, member) = &members[i];
                if n > 0 {
                    out.push(',');
                }
                whitespace(rng, out);
                encode_string(key, rng, out);
                whitespace(rng, out);
                out.push(':');
                encode(member, rng, out);
            }
            whitespace(rng, out);
            out.push('}');
        }
    }
    whitespace(rng, out);
}

/// Small integers may also be spelled as floats: shorten_floats turns them back into ints.
fn int_spelling(token: &str, rng: &mut Option<Rng>) -> String {
    let (Some(rng), Ok(i)) = (rng, token.parse::<i64>()) else {
        return token.to_owned();
    };
    if !rng.respell_ints || i.unsigned_abs() > 1 << 53 || !rng.chance(30) {
        return token.to_owned();
    }
    match rng.below(3) {
        0 => format!("{i}.0"),
        1 => format!("{i}e0"),
        // `00E-1` would not be JSON: a number has no leading zero.
        _ if i == 0 => "0.0E-1".to_owned(),
        _ => format!("{i}0E-1"),
    }
}

fn float_spelling(x: f64, rng: &mut Option<Rng>) -> String {
    let Some(rng) = rng else {
        return format!("{x:?}");
    };
    match rng.below(5) {
        // Display prints integral values without a point, which would make an integer token.
        0 if x.fract() == 0.0 => format!("{x}.0"),
        0 => format!("{x}"),
        1 => format!("{x:.30e}"),
        2 => ryu::Buffer::new().format_finite(x).to_owned(),
        _ => {
            // `{:e}` with a random exponent marker, sign and zero padding.
            let text = format!("{x:e}");
            let (mantissa, exponent) = text.split_once('e').unwrap();
            let (sign, digits) = match exponent.strip_prefix('-') {
                Some(digits) => ("-", digits),
                None if rng.chance(50) => ("+", exponent),
                None => ("", exponent),
            };
            let marker = if rng.chance(50) { 'e' } else { 'E' };
            let zeros = "0".repeat(rng.below(3) as usize);
            format!("{mantissa}{marker}{sign}{zeros}{digits}")
        }
    }
}

fn encode_string(s: &str, rng: &mut Option<Rng>, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let short = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '/' => Some("\\/"),
            _ => None,
        };
        let Some(rng) = rng else {
            match short {
                Some(escape) if c != '/' => out.push_str(escape),
                _ if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                _ => out.push(c),
            }
            continue;
        };
        let must_escape = c < ' ' || c == '"' || c == '\\';
        match short {
            Some(escape) if rng.chance(50) => out.push_str(escape),
            _ if must_escape || rng.chance(25) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let hex = format!("{unit:04x}");
                    out.push_str("\\u");
                    for h in hex.chars() {
                        out.push(if rng.chance(50) {
                            h.to_ascii_uppercase()
                        } else {
                            h
                        });
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// Python's canonical form for float-free values with i64 integers, built from serde_json: its
/// string escaping is byte-identical to `ensure_ascii=False` (spec §2.3); keys are sorted here.
fn serde_reference(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serde_reference(item, out);
            }
            out.push(']');
        }
        serde_json::Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap());
                out.push(':');
                serde_reference(member, out);
            }
            out.push('}');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, op) in edits {
        let at = at % (bytes.len() + 1);
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

fn canonicalize_all_forms(bytes: &[u8]) {
    if let Ok(doc) = CanonicalJson::parse(bytes) {
        for form in CanonicalForm::ALL {
            let out = doc.to_vec(form);
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn canonicalizing_is_idempotent(value in json_strategy(true, true), seed in any::<u64>()) {
        let input = scrambled(&value, seed, true);
        for form in CanonicalForm::ALL {
            let once = canonicalize(input.as_bytes(), form).unwrap();
            let twice = canonicalize(&once, form).unwrap();
            prop_assert_eq!(&twice, &once, "{}", form);
        }
    }

    #[test]
    fn every_encoding_of_a_value_has_the_same_canonical_form(
        value in json_strategy(true, true),
        seed in any::<u64>(),
    ) {
        let plain = plain(&value);
        let scrambled = scrambled(&value, seed, true);
        for form in CanonicalForm::ALL {
            prop_assert_eq!(
                canonicalize(plain.as_bytes(), form).unwrap(),
                canonicalize(scrambled.as_bytes(), form).unwrap(),
                "{} for {} vs {}", form, plain, scrambled
            );
        }
    }

    #[test]
    fn python_form_reads_back_as_the_same_value(value in json_strategy(false, true), seed in any::<u64>()) {
        let input = scrambled(&value, seed, false);
        let canonical = canonicalize(input.as_bytes(), CanonicalForm::Python).unwrap();
        let original: serde_json::Value = serde_json::from_str(&input).unwrap();
        let reread: serde_json::Value = serde_json::from_slice(&canonical).unwrap();
        prop_assert_eq!(reread, original);
        let ascii = canonicalize(input.as_bytes(), CanonicalForm::PythonAscii).unwrap();
        prop_assert!(ascii.iter().all(|&b| (0x20..0x7f).contains(&b)));
        let reread: serde_json::Value = serde_json::from_slice(&ascii).unwrap();
        prop_assert_eq!(reread, serde_json::from_str::<serde_json::Value>(&input).unwrap());
    }

    #[test]
    fn python_form_matches_a_serde_json_reference(value in json_strategy(false, false), seed in any::<u64>()) {
        let input = scrambled(&value, seed, false);
        let mut expected = String::new();
        serde_reference(&serde_json::from_str(&input).unwrap(), &mut expected);
        let canonical = canonicalize(input.as_bytes(), CanonicalForm::Python).unwrap();
        prop_assert_eq!(String::from_utf8(canonical).unwrap(), expected);
    }

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in any::<Vec<u8>>()) {
        canonicalize_all_forms(&bytes);
    }

    #[test]
    fn never_panics_on_json_like_bytes(
        bytes in prop::collection::vec(prop::sample::select(b"[]{}\":,-+.0123456789eEtrufalsn\\u/dD8bB \xc3\xa9\xf0\x9f".to_vec()), 0..64),
    ) {
        canonicalize_all_forms(&bytes);
    }

    #[test]
    fn never_panics_on_mutated_json(
        value in json_strategy(true, true),
        seed in any::<u64>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let bytes = mutate(scrambled(&value, seed, true).into_bytes(), &edits);
        canonicalize_all_forms(&bytes);
    }
}
