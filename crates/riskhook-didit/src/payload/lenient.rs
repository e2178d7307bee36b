//! The leniency machinery shared by every payload model: how one JSON value becomes an
//! `Option<T>` without ever failing the event it sits in.
//!
//! Didit's payloads drift: the OpenAPI and real deliveries disagree on types (a number here,
//! an object or a string there), and new fields and enum values keep appearing. A webhook we
//! reject is a webhook Didit stops retrying, so a field of the wrong type is read as absent
//! instead of failing the whole event. The raw body is stored elsewhere, so nothing is lost.

use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Conversion from an arbitrary JSON value that gives up (`None`) instead of failing.
pub(crate) trait Lenient: Sized {
    /// `None` for `null` and for any value of a shape this type cannot represent.
    fn from_json(value: Value) -> Option<Self>;
}

/// `deserialize_with` target for every modelled field: read any JSON, then try to convert it.
///
/// Fields using it need `#[serde(default)]` (on the field or the container), because
/// `deserialize_with` turns off serde's implicit `None` for missing `Option` fields.
pub(crate) fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Lenient,
{
    Value::deserialize(deserializer).map(T::from_json)
}

impl Lenient for Value {
    fn from_json(value: Value) -> Option<Self> {
        (!value.is_null()).then_some(value)
    }
}

impl Lenient for Map<String, Value> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }
}

/// Numbers become their decimal text: identifiers such as `document_number` or `phone_number`
/// are sometimes sent as JSON numbers.
impl Lenient for String {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// An identifier the service keys on (session, user, entity, transaction): read from JSON
/// strings only. A number is not an identifier: `777001` and `777001.0` are the same JSON
/// number to the canonical forms `X-Signature-V2` accepts, so turning either into text would
/// let a re-encoded delivery name another session (issue 11, finding 7).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier's text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::ops::Deref for Id {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Id {
    fn from(s: &str) -> Self {
        Id(s.to_owned())
    }
}

impl From<String> for Id {
    fn from(s: String) -> Self {
        Id(s)
    }
}

impl PartialEq<str> for Id {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Id {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Lenient for Id {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::String(s) => Some(Id(s)),
            _ => None,
        }
    }
}

impl Lenient for bool {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

/// Scores arrive as numbers, occasionally as numeric strings; both are accepted. Integers
/// beyond 2^64 are already floats after parsing, so they convert too.
impl Lenient for f64 {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
            _ => None,
        }
    }
}

/// Integral floats (`3.0`) and numeric strings are accepted; fractions and out-of-range
/// values are not guessed at.
impl Lenient for i64 {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(integral_f64)),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
    }
}

/// Non-array values give `None`; elements that do not convert are skipped, so one odd element
/// does not hide its well-formed siblings.
impl<T: Lenient> Lenient for Vec<T> {
    fn from_json(value: Value) -> Option<Self> {
        match value {
            Value::Array(items) => Some(items.into_iter().filter_map(T::from_json).collect()),
            _ => None,
        }
    }
}

fn integral_f64(f: f64) -> Option<i64> {
    // 2^63 is exactly representable; anything at or beyond it would saturate.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-LIMIT..LIMIT).contains(&f)).then_some(f as i64)
}

/// A payload struct read from a JSON object it takes apart: each modelled field is moved out
/// of the map and converted ([`Lenient`]), and what is left is the struct's `extra`.
///
/// It gives what the struct's serde derive gives from the same object
/// (`payload::tests::reading_from_the_map_agrees_with_serde_on_every_mutation`), without
/// serde's detour for `#[serde(flatten)]` (every entry buffered, then deserialized again) and
/// without rebuilding each field's JSON: it was most of the cost of reading a delivery.
pub(crate) trait FromMap: Sized {
    /// Takes the fields apart from `map`.
    fn from_map(map: Map<String, Value>) -> Self;
}

/// Moves `key` out of `map` and converts it: absent, `null` and values of another shape are
/// `None`, and the key is gone from `map` either way (as serde consumes a modelled field).
pub(crate) fn take_field<T: Lenient>(map: &mut Map<String, Value>, key: &str) -> Option<T> {
    map.remove(key).and_then(T::from_json)
}

/// [`FromMap`] for any JSON value: a non-object gives `None`.
pub(crate) fn from_object<T: FromMap>(value: Value) -> Option<T> {
    match value {
        Value::Object(map) => Some(T::from_map(map)),
        _ => None,
    }
}

/// The key a field is read from: its name, or the wire name given after it.
macro_rules! wire_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $wire:literal) => {
        $wire
    };
}
pub(crate) use wire_name;

/// Declares a payload struct in which every field is `Option<_>`, read through [`lenient`],
/// and every field not named is kept in `extra`. Keeping the attributes in one place is what
/// guarantees that no modelled field can fail an event.
///
/// A field whose JSON key is not its name gives the key after it: `pub is_match: Option<bool>
/// = "match"`. Both readings are generated from the one list: serde's derive (for embedders
/// deserializing these types themselves) and [`FromMap`] (what riskhook reads deliveries with).
macro_rules! lenient_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : Option<$ty:ty> $(= $wire:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                $(#[serde(rename = $wire)])?
                #[serde(deserialize_with = "crate::payload::lenient::lenient")]
                pub $field: Option<$ty>,
            )*
            /// Every field not modelled above, exactly as received.
            #[serde(flatten)]
            pub extra: serde_json::Map<String, serde_json::Value>,
        }

        impl crate::payload::lenient::FromMap for $name {
            fn from_map(mut map: serde_json::Map<String, serde_json::Value>) -> Self {
                Self {
                    $(
                        $field: crate::payload::lenient::take_field(
                            &mut map,
                            crate::payload::lenient::wire_name!($field $($wire)?),
                        ),
                    )*
                    extra: map,
                }
            }
        }

        impl crate::payload::lenient::Lenient for $name {
            fn from_json(value: serde_json::Value) -> Option<Self> {
                crate::payload::lenient::from_object(value)
            }
        }
    };
}
pub(crate) use lenient_struct;

/// Declares a string enum that never fails: known values get a variant, anything else is
/// kept verbatim in `Other`. `parse` is exact (case-sensitive) over the listed spellings;
/// `as_str` gives the first (canonical) spelling.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident => $canonical:literal $(| $alias:literal)*
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )*
            /// A value not known to this version, kept as received.
            Other(String),
        }

        impl $name {
            /// Maps a wire string to its variant; unknown strings become `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $canonical $(| $alias)* => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The canonical wire spelling (the received text for `Other`).
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $canonical, )*
                    Self::Other(s) => s,
                }
            }

            /// Whether this is one of the values listed in the specification.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl crate::payload::lenient::Lenient for $name {
            fn from_json(value: serde_json::Value) -> Option<Self> {
                match value {
                    serde_json::Value::String(s) => Some(Self::parse(&s)),
                    _ => None,
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Ok(Self::parse(&s))
            }
        }
    };
}
pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::Lenient;

    #[test]
    fn numbers_accept_numeric_strings_and_reject_the_rest() {
        assert_eq!(f64::from_json(json!("96.41")), Some(96.41));
        assert_eq!(f64::from_json(json!("NaN")), None);
        assert_eq!(f64::from_json(json!({"a": 1})), None);
        assert_eq!(i64::from_json(json!(34.0)), Some(34));
        assert_eq!(i64::from_json(json!(34.5)), None);
        assert_eq!(i64::from_json(json!(1e300)), None);
        assert_eq!(i64::from_json(json!(u64::MAX)), None);
    }

    #[test]
    fn arrays_skip_elements_that_do_not_convert() {
        assert_eq!(
            Vec::<String>::from_json(json!(["a", null, {"x": 1}, 5])),
            Some(vec!["a".to_owned(), "5".to_owned()])
        );
        assert_eq!(Vec::<String>::from_json(json!("a")), None);
    }
}
