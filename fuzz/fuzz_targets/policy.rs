//! Fuzzes the policy loader: any text loads or is refused without a panic; every error has a
//! message, an error in a rule names its line, and a loaded policy assesses within 0-100.

#![no_main]

use libfuzzer_sys::fuzz_target;
use riskhook_core::policy::Policy;
use riskhook_core::signals::{SignalValue, Signals};

/// The checks made after TOML parsing that are about the file as a whole and have no line
/// yet (see the FIXME in `policy_errors.rs::invalid_thresholds_are_reported`).
const LINELESS: [&str; 3] = ["thresholds: ", "name: ", "too many rules: "];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Policy::load(text) {
        Ok(policy) => {
            let mut signals = Signals::new();
            signals.set("aml.sanctions_hits", SignalValue::Int(i64::MAX), "e", "p");
            signals.set("face.match_score", SignalValue::Float(f64::NAN), "e", "p");
            signals.set(
                "risk.codes",
                SignalValue::StringList(vec![String::new()]),
                "e",
                "p",
            );
            for now in [i64::MIN, 0, i64::MAX] {
                assert!(policy.assess(&signals, now).score <= 100);
                assert!(policy.assess(Signals::new(), now).score <= 100);
            }
            let _ = policy.rules();
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error without a problem");
            let lines = text.lines().count().max(1);
            for error in &errors.0 {
                assert!(!error.message.is_empty(), "{error:?}");
                match error.line {
                    Some(line) => assert!((1..=lines + 1).contains(&line), "{error:?}"),
                    None => assert!(
                        error.rule.is_none()
                            && LINELESS.iter().any(|p| error.message.starts_with(p)),
                        "an error without a line: {error:?}"
                    ),
                }
            }
        }
    }
});
