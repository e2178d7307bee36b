//! Text people type into the service (a reason for a decision, a key's name), read once for the
//! API and the workbench alike: trimmed, not blank, bounded, and free of control characters.
//!
//! A control character is never meant in a reason or a name, and U+0000 cannot be stored by
//! PostgreSQL at all: without this, the same command would answer 422 or 503 depending on the
//! backend. Line breaks and tabs are kept where the text may span lines.

/// Why a text was refused. `Display` names the field, for the API's problem `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TextError {
    /// Empty, or only whitespace.
    #[error("{0} must not be blank")]
    Blank(&'static str),
    /// Over the limit, counted in characters after trimming.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field's name.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// A control character (U+0000-U+001F, U+007F-U+009F), other than a line break or tab
    /// where lines are allowed. The text itself is not echoed.
    #[error("{field} contains the control character U+{code:04X}")]
    Control {
        /// The field's name.
        field: &'static str,
        /// The character's code point.
        code: u32,
    },
}

/// What a field may hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// Its name in messages.
    pub(crate) name: &'static str,
    /// The most characters it may have once trimmed.
    pub(crate) max_chars: usize,
    /// Whether `\n`, `\r` and `\t` are allowed (a reason may span lines; a name may not).
    pub(crate) lines: bool,
}

impl Field {
    /// A reason for a decision: up to 2,000 characters, lines allowed.
    pub(crate) const REASON: Field = Field {
        name: "reason",
        max_chars: 2000,
        lines: true,
    };

    /// `text` trimmed, if this field may hold it.
    pub(crate) fn read(self, text: &str) -> Result<String, TextError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(TextError::Blank(self.name));
        }
        if text.chars().count() > self.max_chars {
            return Err(TextError::TooLong {
                field: self.name,
                max: self.max_chars,
            });
        }
        let allowed = |c: char| self.lines && matches!(c, '\n' | '\r' | '\t');
        if let Some(c) = text.chars().find(|&c| c.is_control() && !allowed(c)) {
            return Err(TextError::Control {
                field: self.name,
                code: u32::from(c),
            });
        }
        Ok(text.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAME: Field = Field {
        name: "name",
        max_chars: 5,
        lines: false,
    };

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        let cases: &[(Field, &str, Result<&str, TextError>)] = &[
            (NAME, "  ok  ", Ok("ok")),
            (NAME, "ñandú", Ok("ñandú")),
            (NAME, "\t\n ", Err(TextError::Blank("name"))),
            (
                NAME,
                "abcdef",
                Err(TextError::TooLong {
                    field: "name",
                    max: 5,
                }),
            ),
            (
                NAME,
                "a\0b",
                Err(TextError::Control {
                    field: "name",
                    code: 0,
                }),
            ),
            (
                NAME,
                "a\nb",
                Err(TextError::Control {
                    field: "name",
                    code: 10,
                }),
            ),
            (
                Field::REASON,
                "line one\r\nline\ttwo",
                Ok("line one\r\nline\ttwo"),
            ),
            (
                Field::REASON,
                "fraud\0",
                Err(TextError::Control {
                    field: "reason",
                    code: 0,
                }),
            ),
            (
                Field::REASON,
                "\u{1b}[31mred",
                Err(TextError::Control {
                    field: "reason",
                    code: 0x1b,
                }),
            ),
            (
                Field::REASON,
                "next\u{85}line",
                Err(TextError::Control {
                    field: "reason",
                    code: 0x85,
                }),
            ),
        ];
        for (field, text, expected) in cases {
            let got = field.read(text);
            assert_eq!(got.as_deref().map_err(Clone::clone), *expected, "{text:?}");
        }
        assert_eq!(
            Field::REASON.read(&"x".repeat(2000)).map(|t| t.len()),
            Ok(2000)
        );
        let refused = Field::REASON
            .read("a\0secret")
            .expect_err("refused")
            .to_string();
        assert!(!refused.contains("secret"), "{refused}");
    }
}
