//! Policy test cases: "this payload (or these signals) under this policy must give this
//! decision and fire exactly these rules". A policy lives in git with its cases; `riskhook
//! policy test` runs them. Parsing and checking are pure; reading the files is the caller's job,
//! and so is turning a payload into signals: the caller hands in its provider's mapping (a
//! [`PayloadMapping`]), since this crate knows no provider.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::assessment::{Assessment, Decision};
use crate::policy::{Policy, fired_ids};
use crate::signals::{Kind, SignalValue, Signals, definition};

/// A provider mapping for cases that give a `payload`: the payload file's bytes → their signals
/// and the payload's timestamp (Unix seconds, if it has one), or why the bytes cannot be read.
/// Didit's is `riskhook_didit_signals::case_payload`.
pub type PayloadMapping = fn(&[u8]) -> Result<(Signals, Option<i64>), String>;

/// One case, as written in a `.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    pub description: String,
    /// A Didit payload file, relative to the case file. Exclusive with `signals`.
    #[serde(default)]
    pub payload: Option<String>,
    /// Signals given directly, `"group.field" = value`. Exclusive with `payload`.
    #[serde(default)]
    pub signals: Option<BTreeMap<String, toml::Value>>,
    /// Evaluation time (Unix seconds); defaults to the payload's timestamp, or 0.
    #[serde(default)]
    pub now: Option<i64>,
    /// What must come out.
    pub expect: Expect,
}

/// The expected outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The decision.
    pub decision: Decision,
    /// Exactly these rules fire (any order).
    #[serde(default)]
    pub fired: Option<Vec<String>>,
    /// At least these rules fire.
    #[serde(default)]
    pub fired_includes: Option<Vec<String>>,
    /// None of these rules fires.
    #[serde(default)]
    pub not_fired: Option<Vec<String>>,
    /// The score, when it matters.
    #[serde(default)]
    pub score: Option<u8>,
}

/// A case that could not be run, or did not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// The case file itself is wrong.
    #[error("invalid case: {0}")]
    Invalid(String),
    /// The policy did not do what the case expects.
    #[error("{0}")]
    Failed(String),
}

impl Case {
    /// Parses a case file.
    pub fn parse(text: &str) -> Result<Self, CaseError> {
        let case: Case = toml::from_str(text).map_err(|e| CaseError::Invalid(e.to_string()))?;
        if case.payload.is_some() == case.signals.is_some() {
            return Err(CaseError::Invalid(
                "give exactly one of `payload` or `[signals]`".to_owned(),
            ));
        }
        Ok(case)
    }

    /// Builds the case's input and assesses it. `payload` holds the bytes of the `payload` file
    /// when the case names one, and `mapping` turns them into signals.
    pub fn assess(
        &self,
        policy: &Policy,
        payload: Option<&[u8]>,
        mapping: PayloadMapping,
    ) -> Result<Assessment, CaseError> {
        let (signals, timestamp) = match (&self.signals, payload) {
            (Some(given), _) => (signals_from_toml(given)?, None),
            (None, Some(bytes)) => {
                mapping(bytes).map_err(|e| CaseError::Invalid(format!("payload: {e}")))?
            }
            (None, None) => return Err(CaseError::Invalid("payload bytes missing".to_owned())),
        };
        let now = self.now.or(timestamp).unwrap_or(0);
        Ok(policy.assess(&signals, now))
    }

    /// Runs the case: `Ok` with the assessment if every expectation holds.
    pub fn check(
        &self,
        policy: &Policy,
        payload: Option<&[u8]>,
        mapping: PayloadMapping,
    ) -> Result<Assessment, CaseError> {
        let assessment = self.assess(policy, payload, mapping)?;
        let fired = fired_ids(&assessment);
        let mut problems = Vec::new();
        if assessment.decision != self.expect.decision {
            problems.push(format!(
                "decision is {}, expected {}",
                assessment.decision.as_str(),
                self.expect.decision.as_str()
            ));
        }
        if let Some(score) = self.expect.score
            && assessment.score != score
        {
            problems.push(format!("score is {}, expected {score}", assessment.score));
        }
        if let Some(expected) = &self.expect.fired {
            let mut want: Vec<&str> = expected.iter().map(String::as_str).collect();
            let mut got = fired.clone();
            want.sort_unstable();
            got.sort_unstable();
            if want != got {
                problems.push(format!("fired {got:?}, expected exactly {want:?}"));
            }
        }
        for id in self.expect.fired_includes.iter().flatten() {
            if !fired.contains(&id.as_str()) {
                problems.push(format!("`{id}` did not fire (fired: {fired:?})"));
            }
        }
        for id in self.expect.not_fired.iter().flatten() {
            if fired.contains(&id.as_str()) {
                problems.push(format!("`{id}` fired"));
            }
        }
        if problems.is_empty() {
            Ok(assessment)
        } else {
            Err(CaseError::Failed(problems.join("; ")))
        }
    }
}

/// Reads `"group.field" = value` pairs, typed by the schema.
pub fn signals_from_toml(given: &BTreeMap<String, toml::Value>) -> Result<Signals, CaseError> {
    let mut signals = Signals::new();
    for (name, value) in given {
        let def = definition(name)
            .ok_or_else(|| CaseError::Invalid(format!("signals: unknown signal `{name}`")))?;
        let typed = match (def.kind, value) {
            (Kind::Bool, toml::Value::Boolean(b)) => SignalValue::Bool(*b),
            (Kind::Int, toml::Value::Integer(i)) => SignalValue::Int(*i),
            (Kind::Float, toml::Value::Float(f)) => SignalValue::Float(*f),
            #[allow(clippy::cast_precision_loss)]
            (Kind::Float, toml::Value::Integer(i)) => SignalValue::Float(*i as f64),
            (Kind::String, toml::Value::String(s)) => SignalValue::String(s.clone()),
            (Kind::StringList, toml::Value::Array(items)) => SignalValue::StringList(
                items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        CaseError::Invalid(format!("signals: `{name}` must be a list of strings"))
                    })?,
            ),
            (kind, _) => {
                return Err(CaseError::Invalid(format!(
                    "signals: `{name}` must be {}",
                    kind.cel_name()
                )));
            }
        };
        signals.set(def.name, typed, "case", "case");
    }
    Ok(signals)
}
