//! Loading a policy: every kind of problem `Policy::load` must report, with its rule and line,
//! all of them at once; and hostile files or conditions that must never make it panic.
//!
//! Each case renders the errors as `PolicyError`'s `Display` (`line N: rule `id`: message`) and
//! compares them with the expected lines; a `…` in an expected line stands for any text (for
//! messages that quote the CEL parser). Evaluation lives in `engine.rs`.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use riskhook_core::policy::{
    DEFAULT_POLICY, MAX_EXPRESSION_BYTES, MAX_EXPRESSION_DEPTH, MAX_EXPRESSION_NODES, MAX_RULES,
    Policy, PolicyError, fired_ids,
};
use riskhook_core::signals::{SignalValue, Signals};

/// Lines 1-4 of every test policy; a rule appended after it starts on line 6.
const HEAD: &str = "name = \"t\"\n[thresholds]\nreview = 30\nfreeze = 70\n";

/// A policy with one rule, `[[rules]]` on line 6, made of `fields` (one per line).
fn one_rule(fields: &str) -> String {
    format!("{HEAD}\n[[rules]]\n{fields}\n")
}

/// A policy with one rule `a` whose condition is `when` (a TOML literal string).
fn with_when(when: &str) -> String {
    one_rule(&format!(
        "id = \"a\"\nwhen = '''{when}'''\npoints = 10\nreason = \"r\""
    ))
}

fn errors(source: &str) -> Vec<PolicyError> {
    match Policy::load(source) {
        Ok(policy) => panic!("loaded {policy:?}; expected errors\n{source}"),
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an Err without errors");
            errors.0
        }
    }
}

/// `source` must fail to load with exactly these errors, in order.
#[track_caller]
fn check(source: &str, expect: &[&str]) {
    let actual: Vec<String> = errors(source).iter().map(ToString::to_string).collect();
    let matches = actual.len() == expect.len()
        && actual
            .iter()
            .zip(expect)
            .all(|(a, e)| match e.split_once('…') {
                Some((prefix, suffix)) => {
                    a.len() >= prefix.len() + suffix.len()
                        && a.starts_with(prefix)
                        && a.ends_with(suffix)
                }
                None => a == e,
            });
    assert!(
        matches,
        "\nexpected: {expect:#?}\n  actual: {actual:#?}\nsource:\n{source}"
    );
}

#[track_caller]
fn loads(source: &str) -> Policy {
    Policy::load(source).unwrap_or_else(|e| panic!("{e}\nsource:\n{source}"))
}

#[test]
fn the_default_policy_loads() {
    let policy = loads(DEFAULT_POLICY);
    assert_eq!(policy.name(), "default");
    assert_eq!(policy.thresholds(), (30, 70));
    assert!(policy.rule_count() >= 30);
    assert_eq!(policy.source(), DEFAULT_POLICY);
    assert_eq!(policy.hash().len(), 64);
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_line() {
    check(
        &format!("{HEAD}\n[[rules]]\nid = \"a\"\nwhen = \"true\nreason = \"r\"\n"),
        &["line 8: invalid basic string, expected `\"`"],
    );
    check(
        &format!("{HEAD}\n[[rules\nid = \"a\"\n"),
        &["line 6: unclosed array table, expected `]]`"],
    );
}

#[test]
fn a_missing_or_mistyped_rule_field_is_reported_with_the_rules_line_but_not_its_id() {
    // FIXME: these are serde errors raised while parsing, so they carry no rule id and stop
    // the load at the first one (the other rules are not checked). Deserialising each rule
    // as a table and validating its fields by hand would report them like the others.
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\npoints = 10"),
        &["line 6: missing field `reason`"],
    );
    check(
        &one_rule("id = \"a\"\npoints = 10\nreason = \"r\""),
        &["line 6: missing field `when`"],
    );
    check(
        &one_rule("when = \"true\"\npoints = 10\nreason = \"r\""),
        &["line 6: missing field `id`"],
    );
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\npoints = \"ten\"\nreason = \"r\""),
        &["line 9: invalid type: string \"ten\", expected i64"],
    );
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\ndecision = \"block\"\nreason = \"r\""),
        &["line 9: unknown variant `block`, expected one of `approve`, `review`, `freeze`"],
    );
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\npoints = 10\nreason = \"r\"\nweight = 2"),
        &[
            "line 11: unknown field `weight`, expected one of `id`, `when`, `points`, `decision`, `reason`, `notes`",
        ],
    );
}

#[test]
fn an_unknown_top_level_or_thresholds_key_is_reported_with_its_line() {
    check(
        "name = \"t\"\nversion = 2\n[thresholds]\nreview = 30\nfreeze = 70\n",
        &[
            "line 2: unknown field `version`, expected one of `name`, `description`, `thresholds`, `rules`",
        ],
    );
    check(
        &format!("{HEAD}block = 90\n"),
        &["line 5: unknown field `block`, expected `review` or `freeze`"],
    );
    check(
        "name = \"t\"\n[thresholds]\nreview = 30\n",
        &["line 2: missing field `freeze`"],
    );
    check("name = \"t\"\n", &["line 1: missing field `thresholds`"]);
}

#[test]
fn invalid_thresholds_are_reported() {
    let message = |review: i64, freeze: i64| {
        format!(
            "thresholds: need 1 <= review <= freeze <= 100, got review = {review}, freeze = {freeze}"
        )
    };
    // FIXME: no line, although the `[thresholds]` table has one.
    for (review, freeze) in [(80, 70), (0, 70), (30, 101), (-5, 70), (30, 1000)] {
        check(
            &format!("name = \"t\"\n[thresholds]\nreview = {review}\nfreeze = {freeze}\n"),
            &[&message(review, freeze)],
        );
    }
    loads("name = \"t\"\n[thresholds]\nreview = 50\nfreeze = 50\n");
    loads("name = \"t\"\n[thresholds]\nreview = 1\nfreeze = 100\n");
    check(
        "name = \" \"\n[thresholds]\nreview = 30\nfreeze = 70\n",
        &["name: must not be empty"],
    );
}

#[test]
fn a_duplicate_id_is_reported_on_the_second_rule() {
    check(
        &format!(
            "{HEAD}\n[[rules]]\nid = \"a\"\nwhen = \"true\"\npoints = 1\nreason = \"r\"\n\n\
             [[rules]]\nid = \"a\"\nwhen = \"false\"\npoints = 2\nreason = \"r\"\n"
        ),
        &["line 12: rule `a`: duplicate id"],
    );
}

#[test]
fn an_id_outside_lowercase_digits_dots_dashes_and_underscores_is_refused() {
    let refused = "id: use 1-64 characters among a-z, 0-9, '.', '_' and '-'";
    for id in ["AML.hit", "aml hit", "aml/hit", "", "é", &"a".repeat(65)] {
        check(
            &one_rule(&format!(
                "id = \"{id}\"\nwhen = \"true\"\npoints = 1\nreason = \"r\""
            )),
            &[&format!("line 6: rule `{id}`: {refused}")],
        );
    }
    loads(&one_rule(&format!(
        "id = \"{}\"\nwhen = \"true\"\npoints = 1\nreason = \"r\"",
        "a.b_c-9".repeat(10).get(..64).unwrap()
    )));
}

#[test]
fn points_outside_minus_100_to_100_are_refused() {
    for points in [101, -101, 1_000_000, i64::MIN] {
        check(
            &one_rule(&format!(
                "id = \"a\"\nwhen = \"true\"\npoints = {points}\nreason = \"r\""
            )),
            &[&format!(
                "line 6: rule `a`: points: {points} is outside -100..=100"
            )],
        );
    }
    for points in [100, -100] {
        loads(&one_rule(&format!(
            "id = \"a\"\nwhen = \"true\"\npoints = {points}\nreason = \"r\""
        )));
    }
}

#[test]
fn a_rule_with_neither_points_nor_decision_is_refused() {
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\nreason = \"r\""),
        &["line 6: rule `a`: a rule needs points, a decision, or both"],
    );
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\npoints = 0\nreason = \"r\""),
        &["line 6: rule `a`: a rule needs points, a decision, or both"],
    );
    loads(&one_rule(
        "id = \"a\"\nwhen = \"true\"\ndecision = \"review\"\nreason = \"r\"",
    ));
}

#[test]
fn an_empty_reason_or_condition_is_refused() {
    check(
        &one_rule("id = \"a\"\nwhen = \"true\"\npoints = 1\nreason = \"  \""),
        &["line 6: rule `a`: reason: must not be empty"],
    );
    check(
        &one_rule("id = \"a\"\nwhen = \" \"\npoints = 1\nreason = \"r\""),
        &["line 6: rule `a`: when: the condition is empty"],
    );
}

#[test]
fn a_cel_syntax_error_is_reported_on_its_rule() {
    check(
        &with_when("aml.sanctions_hits >"),
        &["line 6: rule `a`: when: CEL syntax error: …"],
    );
    check(
        &with_when("aml.sanctions_hits > 0 &&& true"),
        &["line 6: rule `a`: when: CEL syntax error: …"],
    );
    check(
        &with_when("(aml.sanctions_hits > 0"),
        &["line 6: rule `a`: when: CEL syntax error: …"],
    );
    // The message stays on one line.
    let message = errors(&with_when("aml.sanctions_hits >"))[0]
        .message
        .clone();
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn names_outside_the_schema_are_refused_with_a_hint() {
    check(
        &with_when("aml.nope > 0"),
        &["line 6: rule `a`: when: unknown signal `aml.nope` (see `riskhook policy signals`)"],
    );
    check(
        &with_when("foo.bar"),
        &["line 6: rule `a`: when: unknown signal group `foo`"],
    );
    check(
        &with_when("aml"),
        &[
            "line 6: rule `a`: when: `aml` is a group of signals; read one of its fields, e.g. `aml.status`",
        ],
    );
    check(
        &with_when("x > 1"),
        &[
            "line 6: rule `a`: when: unknown name `x` (signals are read as group.field, e.g. aml.sanctions_hits; `now` is the evaluation time)",
        ],
    );
    check(
        &with_when("size(aml) > 0"),
        &["line 6: rule `a`: when: `aml` is a group of signals; …"],
    );
    check(
        &with_when("aml.sanctions_hits.value > 0"),
        &["line 6: rule `a`: when: type error: …"],
    );
}

#[test]
fn type_errors_found_by_probe_evaluation_are_refused() {
    check(
        &with_when("aml.sanctions_hits > 'x'"),
        &[
            "line 6: rule `a`: when: type error: found no matching overload for '_>_' applied to '(int, string)'",
        ],
    );
    check(
        &with_when("document.verified + 1 > 0"),
        &["line 6: rule `a`: when: type error: …"],
    );
    check(
        &with_when("document.verified == 'yes' || document.tampered + 1"),
        &["line 6: rule `a`: when: type error: …"],
    );
    // Functions the interpreter does not provide (regexes, timestamps) fail the same way.
    check(
        &with_when("document.nationality.matches('^[A-Z]{3}$')"),
        &["line 6: rule `a`: when: type error: Undeclared reference to 'matches'"],
    );
}

/// The rule ids `policy` fires on `signals`, and its `(rule, error)` for those not evaluated.
fn outcome(policy: &Policy, signals: &Signals) -> (Vec<String>, Vec<(String, String)>) {
    let assessment = policy.assess(signals, 0);
    (
        fired_ids(&assessment)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        assessment
            .not_evaluated
            .into_iter()
            .map(|n| (n.rule_id, n.error))
            .collect(),
    )
}

fn ints(pairs: &[(&str, i64)]) -> Signals {
    let mut signals = Signals::new();
    for (name, value) in pairs {
        signals.set(name, SignalValue::Int(*value), "evt_1", "p");
    }
    signals
}

#[test]
fn a_well_typed_condition_that_fails_on_the_probe_values_loads() {
    // The probes are 0/""/[] and 3/"Approved"/["DOCUMENT_EXPIRED"]: a division by a count or
    // an index into a list fails on them, but the expression is well typed, so it loads.
    let division = loads(&with_when("aml.total_hits / aml.pep_hits > 1"));
    assert_eq!(division.rule_count(), 1);
    // At evaluation it fires when it can...
    assert_eq!(
        outcome(
            &division,
            &ints(&[("aml.total_hits", 6), ("aml.pep_hits", 2)])
        ),
        (vec!["a".to_owned()], vec![])
    );
    assert_eq!(
        outcome(
            &division,
            &ints(&[("aml.total_hits", 2), ("aml.pep_hits", 2)])
        ),
        (vec![], vec![])
    );
    // ...and is simply not evaluated when it errors, with the interpreter's message.
    assert_eq!(
        outcome(
            &division,
            &ints(&[("aml.total_hits", 6), ("aml.pep_hits", 0)])
        ),
        (
            vec![],
            vec![("a".to_owned(), "Division by zero of Int(6)".to_owned())]
        )
    );

    let index = loads(&with_when("risk.codes[0] == 'X'"));
    let codes = risk_codes;
    assert_eq!(
        outcome(&index, &codes(&["X", "Y"])),
        (vec!["a".to_owned()], vec![])
    );
    assert_eq!(outcome(&index, &codes(&["Y"])), (vec![], vec![]));
    assert_eq!(
        outcome(&index, &codes(&[])),
        (
            vec![],
            vec![("a".to_owned(), "Index out of bounds: Int(0)".to_owned())]
        )
    );

    // Guarded versions load too, and are a clean "no" where the unguarded ones error.
    let guarded = loads(&with_when(
        "aml.pep_hits > 0 && aml.total_hits / aml.pep_hits > 1",
    ));
    assert_eq!(
        outcome(
            &guarded,
            &ints(&[("aml.total_hits", 6), ("aml.pep_hits", 0)])
        ),
        (vec![], vec![])
    );
    let guarded = loads(&with_when("size(risk.codes) > 0 && risk.codes[0] == 'X'"));
    assert_eq!(outcome(&guarded, &codes(&[])), (vec![], vec![]));
}

#[test]
fn a_type_error_is_still_refused_when_the_other_probe_fails_at_run_time() {
    // The low probe divides by zero (a run-time failure, not refused); the high probe gets
    // past the division and finds the genuine type error.
    check(
        &with_when("aml.total_hits / aml.pep_hits > 'x'"),
        &[
            "line 6: rule `a`: when: type error: found no matching overload for '_>_' applied to '(int, string)'",
        ],
    );
    // A type error behind a guard the low probe does not pass is found by the high one.
    check(
        &with_when("aml.pep_hits > 0 && aml.total_hits > 'x'"),
        &["line 6: rule `a`: when: type error: …"],
    );
}

#[test]
fn a_condition_that_does_not_yield_a_bool_is_refused() {
    check(
        &with_when("aml.total_hits + 1"),
        &["line 6: rule `a`: when: type error: yields int instead of bool"],
    );
    check(
        &with_when("session.status"),
        &["line 6: rule `a`: when: type error: yields string instead of bool"],
    );
    check(
        &with_when("aml.total_hits > 0 ? true : 'x'"),
        &["line 6: rule `a`: when: type error: yields string instead of bool"],
    );
}

#[test]
fn message_construction_is_refused() {
    check(
        &with_when("google.protobuf.Int64Value{value: 1} == 1"),
        &["line 6: rule `a`: when: message construction is not supported in policies"],
    );
}

#[test]
fn an_expression_over_the_byte_limit_is_refused() {
    let atom = "aml.sanctions_hits > 0";
    let mut when = atom.to_owned();
    while when.len() <= MAX_EXPRESSION_BYTES {
        when.push_str(" || ");
        when.push_str(atom);
    }
    check(
        &with_when(&when),
        &[&format!(
            "line 6: rule `a`: when: {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
            when.len()
        )],
    );
    // Padding with spaces counts too: the limit is on bytes, not on nodes.
    let padded = format!("true{}", " ".repeat(MAX_EXPRESSION_BYTES));
    check(
        &with_when(&padded),
        &[&format!(
            "line 6: rule `a`: when: {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
            MAX_EXPRESSION_BYTES + 4
        )],
    );
    loads(&with_when(&format!(
        "true{}",
        " ".repeat(MAX_EXPRESSION_BYTES - 4)
    )));
}

#[test]
fn an_expression_nested_deeper_than_the_limit_is_refused() {
    let nested = |n: usize| format!("{}1{} > 0", "1 + (".repeat(n), ")".repeat(n));
    loads(&with_when(&nested(MAX_EXPRESSION_DEPTH - 2)));
    // The walk stops at the limit, so the message gives the limit, whatever the real depth.
    let deep = format!(
        "line 6: rule `a`: when: nested more than {MAX_EXPRESSION_DEPTH} deep, over the limit"
    );
    for n in [MAX_EXPRESSION_DEPTH, 60] {
        check(&with_when(&nested(n)), &[&deep]);
    }
    let lists = format!(
        "size({}1{}) > 0",
        "[".repeat(MAX_EXPRESSION_DEPTH),
        "]".repeat(MAX_EXPRESSION_DEPTH)
    );
    check(
        &with_when(&lists),
        &["line 6: rule `a`: when: nested more than 32 deep, over the limit"],
    );
    check(
        &with_when(&format!("aml{} > 0", ".status".repeat(40))),
        &["line 6: rule `a`: when: nested more than 32 deep, over the limit"],
    );
}

#[test]
fn parentheses_and_repeated_negations_do_not_nest_but_the_parser_limits_them() {
    // The parser folds parentheses and pairs of `!` away, so they add no depth...
    let parens = |n: usize| format!("{}aml.sanctions_hits > 0{}", "(".repeat(n), ")".repeat(n));
    let policy = loads(&with_when(&parens(60)));
    let mut hit = Signals::new();
    hit.set("aml.sanctions_hits", SignalValue::Int(1), "evt_1", "p");
    assert_eq!(fired_ids(&policy.assess(&hit, 0)), ["a"]);
    let negations = loads(&with_when(&format!("{}true", "!".repeat(1001))));
    assert!(fired_ids(&negations.assess(Signals::new(), 0)).is_empty());
    // ...but its own recursion limit refuses deeper nesting as a syntax error, not a crash.
    check(
        &with_when(&parens(500)),
        &["line 6: rule `a`: when: CEL syntax error: …"],
    );
    check(
        &with_when(&format!(
            "size({}1{}) > 0",
            "[".repeat(1500),
            "]".repeat(1500)
        )),
        &["line 6: rule `a`: when: CEL syntax error: …"],
    );
}

#[test]
fn an_expression_over_the_node_limit_is_refused() {
    let within = vec!["1 == 1"; 120].join(" && ");
    loads(&with_when(&within));
    // The walk stops counting soon after the limit, so the message gives the limit, not a
    // count: the same for an expression just over it and one far over it.
    let over_by = |n: usize| vec!["1 == 1"; n].join(" && ");
    let message =
        format!("line 6: rule `a`: when: more than {MAX_EXPRESSION_NODES} nodes, over the limit");
    for n in [MAX_EXPRESSION_NODES / 2, MAX_EXPRESSION_NODES / 2 + 80] {
        let over = over_by(n);
        assert!(over.len() <= MAX_EXPRESSION_BYTES);
        check(&with_when(&over), &[&message]);
    }
}

#[test]
fn a_policy_over_the_rule_limit_is_refused() {
    let rules = |n: usize| {
        let mut source = HEAD.to_owned();
        for i in 0..n {
            source.push_str(&format!(
                "[[rules]]\nid = \"r{i}\"\nwhen = \"ip.vpn_or_tor\"\npoints = 1\nreason = \"r\"\n"
            ));
        }
        source
    };
    assert_eq!(loads(&rules(MAX_RULES)).rule_count(), MAX_RULES);
    check(
        &rules(MAX_RULES + 1),
        &[&format!(
            "too many rules: {} (the limit is {MAX_RULES})",
            MAX_RULES + 1
        )],
    );
}

#[test]
fn every_problem_of_a_file_is_reported_at_once_in_order() {
    let source = r#"name = "many problems"
[thresholds]
review = 90
freeze = 70

[[rules]]
id = "Bad Id"
when = "aml.nope > 0"
points = 500
reason = ""

[[rules]]
id = "ok.one"
when = "ip.vpn_or_tor"
points = 10
reason = "fine"

[[rules]]
id = "ok.one"
when = "aml.sanctions_hits >"
reason = "duplicate, broken and pointless"

[[rules]]
id = "typed"
when = "aml.total_hits + 1"
points = 5
reason = "not a bool"
"#;
    check(
        source,
        &[
            "thresholds: need 1 <= review <= freeze <= 100, got review = 90, freeze = 70",
            "line 6: rule `Bad Id`: id: use 1-64 characters among a-z, 0-9, '.', '_' and '-'",
            "line 6: rule `Bad Id`: points: 500 is outside -100..=100",
            "line 6: rule `Bad Id`: reason: must not be empty",
            "line 6: rule `Bad Id`: when: unknown signal `aml.nope` (see `riskhook policy signals`)",
            "line 18: rule `ok.one`: duplicate id",
            "line 18: rule `ok.one`: a rule needs points, a decision, or both",
            "line 18: rule `ok.one`: when: CEL syntax error: …",
            "line 23: rule `typed`: when: type error: yields int instead of bool",
        ],
    );
    let shown = Policy::load(source).unwrap_err().to_string();
    assert!(
        shown.starts_with("the policy has 9 problem(s)\n  - thresholds: "),
        "{shown}"
    );
}

#[test]
fn comprehension_variables_are_accepted_and_evaluated() {
    let policy = loads(&with_when(
        "risk.codes.exists(c, c.startsWith('DOCUMENT_'))",
    ));
    let codes = |codes: &[&str]| policy.assess(risk_codes(codes), 0);
    assert_eq!(fired_ids(&codes(&["AML_HIT", "DOCUMENT_EXPIRED"])), ["a"]);
    assert!(fired_ids(&codes(&["AML_HIT"])).is_empty());
    assert!(fired_ids(&codes(&[])).is_empty());
    let unchecked = policy.assess(Signals::new(), 0);
    assert!(unchecked.fired.is_empty());
    assert_eq!(unchecked.not_evaluated.len(), 1);

    loads(&with_when("risk.codes.all(c, c != 'LIVENESS_FACE_ATTACK')"));
    loads(&with_when("risk.codes.map(c, c.size()).exists(n, n > 30)"));
    loads(&with_when("risk.codes.exists(aml, aml == 'X')"));
    loads(&with_when("document.nationality in ['IRN', 'PRK']"));
    loads(&with_when("aml.total_hits != null && now > 0"));
    // A comprehension variable does not leak out of its comprehension.
    check(
        &with_when("risk.codes.exists(c, true) && c == 'X'"),
        &["line 6: rule `a`: when: unknown name `c` …"],
    );
}

#[test]
fn an_int_literal_compares_with_a_double_signal() {
    let policy = loads(&with_when("face.match_score < 70"));
    let score = |value: f64| {
        let mut signals = Signals::new();
        signals.set("face.match_score", SignalValue::Float(value), "evt_1", "p");
        fired_ids(&policy.assess(&signals, 0)).len()
    };
    assert_eq!((score(69.9), score(70.0)), (1, 0));
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Arbitrary text, and CEL-looking token soup that gets past the parser more often.
fn any_when() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "aml.sanctions_hits",
        "face.match_score",
        "risk.codes",
        "session.status",
        "document.verified",
        "aml",
        "now",
        "c",
        "x.y",
        ">",
        "<=",
        "==",
        "!=",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "&&",
        "||",
        "?",
        ":",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        ".exists(c,",
        ".all(c,",
        ".map(c,",
        ".size()",
        "size(",
        "int(",
        "double(",
        "string(",
        " in ",
        "has(",
        "0",
        "1",
        "-9223372036854775808",
        "9223372036854775807",
        "18446744073709551615u",
        "1e308",
        "70.0",
        "'x'",
        "\"\\u00e9\"",
        "b'\\xff'",
        "true",
        "false",
        "null",
    ]);
    prop_oneof![
        any::<String>(),
        prop::collection::vec(token, 1..24).prop_map(|tokens| tokens.join(" ")),
    ]
}

proptest! {
    // No regression files in the source tree: a shrunk failure becomes a test above.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_condition_loads_or_is_refused_without_panicking(when in any_when()) {
        let source = format!(
            "{HEAD}\n[[rules]]\nid = \"a\"\nwhen = {}\npoints = 10\nreason = \"r\"\n",
            toml_string(&when)
        );
        match Policy::load(&source) {
            Ok(policy) => {
                let mut signals = Signals::new();
                signals.set("aml.sanctions_hits", SignalValue::Int(i64::MAX), "e", "p");
                signals.set("face.match_score", SignalValue::Float(f64::NAN), "e", "p");
                signals.set("risk.codes", SignalValue::StringList(vec![String::new()]), "e", "p");
                for now in [i64::MIN, 0, i64::MAX] {
                    let assessment = policy.assess(&signals, now);
                    prop_assert!(assessment.score <= 100);
                    let empty = policy.assess(Signals::new(), now);
                    prop_assert!(empty.score <= 100);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.0.is_empty());
                for error in &errors.0 {
                    prop_assert!(!error.message.is_empty());
                    if error.rule.is_some() {
                        prop_assert_eq!(error.line, Some(6));
                    }
                }
            }
        }
    }

    #[test]
    fn any_bytes_as_a_policy_file_load_or_are_refused_without_panicking(
        bytes in prop::collection::vec(any::<u8>(), 0..512)
    ) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(errors) = Policy::load(&text) {
            prop_assert!(!errors.0.is_empty());
        }
    }

    #[test]
    fn the_default_policy_with_random_bytes_overwritten_never_panics(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = DEFAULT_POLICY.as_bytes().to_vec();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let text = String::from_utf8_lossy(&bytes);
        match Policy::load(&text) {
            Ok(policy) => {
                let assessment = policy.assess(Signals::new(), 0);
                prop_assert!(assessment.score <= 100);
            }
            Err(errors) => prop_assert!(!errors.0.is_empty()),
        }
    }
}

/// Signals with only `risk.codes` checked.
fn risk_codes(codes: &[&str]) -> Signals {
    let mut signals = Signals::new();
    signals.set(
        "risk.codes",
        SignalValue::StringList(codes.iter().map(|c| (*c).to_owned()).collect()),
        "evt_1",
        "decision",
    );
    signals
}
