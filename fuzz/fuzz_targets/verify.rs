//! Fuzzes `Verifier::verify` with arbitrary header strings and bodies (see `Framed` for the
//! input's layout): it never panics, and it accepts a delivery only when the header of the
//! scheme it reports is the real MAC, computed here independently, over what that scheme signs.

#![no_main]

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use riskhook_didit::canonical::canonicalize;
use riskhook_didit::signature::{Keyring, Scheme, SignatureHeaders, simple_message};
use riskhook_didit::webhook::{Delivery, Verifier};
use riskhook_fuzz::{Framed, NOW, SECRET, key};
use sha2::Sha256;

fuzz_target!(|data: &[u8]| {
    let Some(framed) = Framed::decode(data) else {
        return;
    };
    let [timestamp, raw, v2, simple] = framed.headers;
    let ring = Keyring::new(vec![key()]).expect("one key");
    let window = if framed.wide_window {
        Duration::from_secs(10 * 365 * 86_400)
    } else {
        Verifier::DEFAULT_TOLERANCE
    };
    let verifier = Verifier::new(ring)
        .with_tolerance(window)
        .allow_simple(framed.allow_simple);
    let delivery = Delivery {
        timestamp,
        signatures: SignatureHeaders { raw, v2, simple },
        body: framed.body,
    };
    let Ok((event, verification)) = verifier.verify(&delivery, NOW) else {
        return;
    };

    let (header, message) = match verification.scheme {
        Scheme::Raw => (raw, framed.body.to_vec()),
        Scheme::V2(form) => (
            v2,
            canonicalize(framed.body, form).expect("V2 verified JSON"),
        ),
        Scheme::Simple => {
            assert!(framed.allow_simple, "Simple accepted while turned off");
            (simple, simple_message(framed.body).into_bytes())
        }
    };
    let header = header.expect("the scheme that matched had its header");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("any key length");
    mac.update(&message);
    let real = hex::encode(mac.finalize().into_bytes());
    assert!(
        header.trim().eq_ignore_ascii_case(&real),
        "{} accepted a header that is not the MAC: {header:?}",
        verification.scheme
    );

    let stamped: i64 = timestamp
        .expect("accepted with a timestamp")
        .trim()
        .parse()
        .expect("int");
    assert_eq!(verification.timestamp, stamped);
    assert!(NOW.abs_diff(stamped) <= window.as_secs());
    if let Some(body) = event.timestamp {
        assert_eq!(body, stamped, "body and header timestamps differ");
    }
});
