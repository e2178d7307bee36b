//! The fast evaluation path must agree with the CEL interpreter, byte for byte, on any signals:
//! the default policy and a policy of tricky conditions (nulls, mixed numeric kinds, NaN,
//! negation, short-circuits over unchecked signals, `null` in equality, comparisons and logic,
//! lists, comprehensions). `Policy::decide`, a backtest's path, must decide what `assess` does
//! and name the same fired rules; a snapshot read back from its compact form, the same again.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use riskhook_core::policy::{DEFAULT_POLICY, Policy};
use riskhook_core::signals::{Kind, SCHEMA, SignalValue, Signals};

const TRICKY: &str = r#"
name = "tricky"
[thresholds]
review = 30
freeze = 70
[[rules]]
id = "mixed-numbers"
when = "face.match_score < 70 || document.age < 18.5"
points = 10
reason = "int and double compared"
[[rules]]
id = "null-equality"
when = "aml.sanctions_hits == 0 && !(ip.vpn_or_tor)"
points = 10
reason = "equality and negation"
[[rules]]
id = "not-equal"
when = "session.status != 'Approved' || email.breached != false"
points = 10
reason = "inequality"
[[rules]]
id = "short-circuit"
when = "phone.voip && liveness.score >= 50.0"
points = 10
reason = "and over a possibly unchecked signal"
[[rules]]
id = "strings"
when = "document.nationality > 'M' && ip.country <= 'ZZ'"
points = 10
reason = "string ordering"
[[rules]]
id = "lists"
when = "'DOCUMENT_EXPIRED' in risk.codes || risk.codes.exists(c, c.startsWith('POA_'))"
points = 10
reason = "left to the interpreter"
[[rules]]
id = "null-inequality"
when = "aml.pep_level != 1"
points = 10
reason = "an unchecked signal is not equal to 1"
[[rules]]
id = "null-equals-null"
when = "face.match_score == liveness.score && phone.country == ip.country"
points = 10
reason = "two unchecked signals are equal"
[[rules]]
id = "not-null"
when = "!phone.voip || email.disposable"
points = 10
reason = "negation of an unchecked signal is an error, absorbed only by a true"
[[rules]]
id = "error-or-false"
when = "(document.age > 17 || ip.vpn_or_tor) && !(aml.total_hits < 1 && liveness.passed)"
points = 10
reason = "errors through nested && and ||"
[[rules]]
id = "nan"
when = "liveness.score == liveness.score"
points = 10
reason = "NaN is not equal to itself"
"#;

fn value(kind: Kind) -> BoxedStrategy<SignalValue> {
    match kind {
        Kind::Bool => any::<bool>().prop_map(SignalValue::Bool).boxed(),
        Kind::Int => prop_oneof![
            Just(0i64),
            Just(1),
            Just(17),
            Just(18),
            -3i64..100,
            any::<i64>()
        ]
        .prop_map(SignalValue::Int)
        .boxed(),
        Kind::Float => prop_oneof![
            Just(f64::NAN),
            Just(70.0),
            Just(-0.0),
            Just(f64::INFINITY),
            0.0f64..100.0,
            any::<f64>()
        ]
        .prop_map(SignalValue::Float)
        .boxed(),
        Kind::String => prop_oneof![
            Just("Approved".to_owned()),
            Just("Declined".to_owned()),
            Just(String::new()),
            "[A-Z]{0,3}",
            any::<String>()
        ]
        .prop_map(SignalValue::String)
        .boxed(),
        Kind::StringList => prop::collection::vec(
            prop_oneof![
                Just("DOCUMENT_EXPIRED".to_owned()),
                Just("POA_X".to_owned()),
                "[A-Z_]{0,8}"
            ],
            0..4,
        )
        .prop_map(SignalValue::StringList)
        .boxed(),
    }
}

fn signals() -> impl Strategy<Value = Signals> {
    let per_signal: Vec<_> = SCHEMA
        .iter()
        .map(|def| prop::option::weighted(0.7, value(def.kind)))
        .collect();
    per_signal.prop_map(|values| {
        let mut s = Signals::new();
        for (def, value) in SCHEMA.iter().zip(values) {
            if let Some(v) = value {
                s.set(def.name, v, "evt_prop", "prop");
            }
        }
        s
    })
}

/// Rules whose own decision, not their points, sets the outcome.
const FLOORS: &str = r#"
name = "floors"
[thresholds]
review = 50
freeze = 90
[[rules]]
id = "pep-review"
when = "aml.pep_hits > 0"
points = 0
decision = "review"
reason = "a PEP is always reviewed"
[[rules]]
id = "expired-freeze"
when = "document.expired"
points = 5
decision = "freeze"
reason = "an expired document freezes"
[[rules]]
id = "breached"
when = "email.breached || phone.voip"
points = 50
reason = "points alone"
"#;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fast_path_agrees_with_the_interpreter(s in signals(), now in any::<i64>()) {
        for source in [DEFAULT_POLICY, TRICKY] {
            let policy = Policy::load(source).unwrap();
            let fast = policy.assess(&s, now).to_json();
            let slow = policy.assess_interpreted(&s, now).to_json();
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn deciding_alone_agrees_with_assessing_also_from_the_compact_snapshot(
        s in signals(),
        now in any::<i64>(),
    ) {
        let compact = Signals::from_values_json(&s.values_json()).unwrap();
        let mut fired = Vec::new();
        for source in [DEFAULT_POLICY, TRICKY, FLOORS] {
            let policy = Policy::load(source).unwrap();
            let assessment = policy.assess(&s, now);
            let ids: Vec<&str> = policy.rule_ids().collect();
            let expected: Vec<&str> = assessment.fired.iter().map(|f| f.rule_id.as_str()).collect();
            for signals in [&s, &compact] {
                let decision = policy.decide(signals, now, &mut fired);
                prop_assert_eq!(decision, assessment.decision);
                let named: Vec<&str> = fired.iter().map(|&i| ids[i]).collect();
                prop_assert_eq!(&named, &expected);
            }
        }
    }
}
