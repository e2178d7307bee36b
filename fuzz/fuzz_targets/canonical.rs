//! Fuzzes the canonicaliser (`X-Signature-V2`'s JSON): any bytes parse or are refused without a
//! panic, and what is written re-parses and canonicalises to itself in every form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskhook_didit::canonical::{CanonicalError, CanonicalForm, CanonicalJson};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = CanonicalJson::parse(data) else {
        return;
    };
    let python = json.to_vec(CanonicalForm::Python);
    let ascii = json.to_vec(CanonicalForm::PythonAscii);
    let js = json.to_vec(CanonicalForm::JavaScript);
    assert!(ascii.is_ascii(), "the ASCII form has a non-ASCII byte");

    // JSON.stringify writes an overflowed number as null, so its output is always JSON.
    let again = CanonicalJson::parse(&js).expect("the JavaScript form re-parses");
    assert_eq!(
        again.to_vec(CanonicalForm::JavaScript),
        js,
        "JavaScript form is a fixed point"
    );

    for (form, out) in [
        (CanonicalForm::Python, &python),
        (CanonicalForm::PythonAscii, &ascii),
    ] {
        match CanonicalJson::parse(out) {
            Ok(again) => {
                // Both Python forms describe the same document, so each re-parse gives both.
                assert_eq!(again.to_vec(CanonicalForm::Python), python, "{form}");
                assert_eq!(again.to_vec(CanonicalForm::PythonAscii), ascii, "{form}");
            }
            // json.dumps writes a float that overflowed as `Infinity`, which is not JSON:
            // faithful to Didit, and the only way a Python form may fail to re-parse.
            Err(CanonicalError::UnexpectedByte { offset, byte: b'I' }) => {
                assert!(out[offset..].starts_with(b"Infinity"), "{form} at {offset}");
            }
            Err(CanonicalError::InvalidNumber { offset }) => {
                assert!(
                    out[offset..].starts_with(b"-Infinity"),
                    "{form} at {offset}"
                );
            }
            Err(e) => panic!("the {form} form does not re-parse: {e}"),
        }
    }
});
