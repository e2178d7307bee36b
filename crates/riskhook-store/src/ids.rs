//! The ids the pipeline hands the store at ingest, as newtypes with their prefixes: an
//! [`EventId`] is `evt_…`, an [`AssessmentId`] `asm_…`, so one cannot be passed for the other.
//!
//! A fresh id is its prefix and a UUIDv7's 32 hex digits, so ids sort by creation time. The
//! caller makes the UUID (`Uuid::now_v7()`, which reads the clock): this crate reads none. The
//! stored and JSON form is the plain string, as before the newtypes. Case and action ids
//! (`case_…`, `act_…`) are made inside the backends' transactions and stay strings for now.

use std::fmt;
use std::ops::Deref;

use serde::Serialize;

/// Text that is not an id of the kind asked for: it lacks the prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not an id starting with `{prefix}`")]
pub struct IdError {
    /// The prefix expected, with its underscore.
    pub prefix: &'static str,
    /// The text given.
    pub text: String,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The prefix, with its underscore.
            pub const PREFIX: &'static str = $prefix;

            /// The id of `uuid`: the prefix and the UUID's 32 lowercase hex digits. Given
            /// `Uuid::now_v7()`, a fresh id that sorts by creation time.
            pub fn from_uuid(uuid: uuid::Uuid) -> Self {
                Self(format!("{}{}", Self::PREFIX, uuid.simple()))
            }

            /// An id read back (stored, or written in a test): the prefix and at least one
            /// character after it.
            pub fn parse(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                if text.len() > Self::PREFIX.len() && text.starts_with(Self::PREFIX) {
                    Ok(Self(text))
                } else {
                    Err(IdError {
                        prefix: Self::PREFIX,
                        text,
                    })
                }
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

prefixed_id!(
    /// Our id of a stored event (`evt_…`), assigned before the insert so a duplicate costs
    /// nothing.
    EventId,
    "evt_"
);

prefixed_id!(
    /// Our id of an assessment (`asm_…`).
    AssessmentId,
    "asm_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_id_is_its_prefix_and_the_uuids_hex_digits() {
        let uuid = uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_002a);
        let id = EventId::from_uuid(uuid);
        assert_eq!(id.as_str(), "evt_0190000000007000800000000000002a");
        assert_eq!(
            AssessmentId::from_uuid(uuid).to_string(),
            "asm_0190000000007000800000000000002a"
        );
    }

    #[test]
    fn ids_of_later_uuids_sort_later() {
        let earlier = EventId::from_uuid(uuid::Uuid::from_u128(0x0190 << 112));
        let later = EventId::from_uuid(uuid::Uuid::from_u128(0x0191 << 112));
        assert!(earlier < later);
    }

    #[test]
    fn parsing_requires_the_prefix_and_something_after_it() {
        assert_eq!(
            EventId::parse("evt_00000001").expect("an event id"),
            "evt_00000001"
        );
        for bad in ["", "evt_", "asm_00000001", "evt00000001", "EVT_1"] {
            assert_eq!(
                EventId::parse(bad),
                Err(IdError {
                    prefix: "evt_",
                    text: bad.to_owned()
                })
            );
        }
        assert!(AssessmentId::parse("asm_x").is_ok());
    }

    #[test]
    fn the_json_form_is_the_plain_string() {
        let id = AssessmentId::parse("asm_1").expect("an assessment id");
        assert_eq!(
            serde_json::to_string(&id).expect("serialisable"),
            "\"asm_1\""
        );
    }
}
