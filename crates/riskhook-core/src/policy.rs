//! Policies: a TOML file of rules whose conditions are CEL expressions over [`Signals`], loaded
//! and validated once ([`Policy::load`]), then evaluated any number of times
//! ([`Policy::assess`]) without ever failing.
//!
//! Loading is where every problem surfaces, each tied to its rule and line: TOML syntax, missing
//! fields, duplicate ids, CEL syntax, unknown signals, expressions that do not yield a `bool`
//! (found by evaluating each rule against typed probe signals), and expressions over the size
//! and nesting limits. Evaluation is total: a rule that cannot be evaluated on this input
//! (because a signal it reads was not checked) does not fire and is listed as not evaluated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString,
};
use cel::common::value::Val;
use cel::{Context, Env, Program, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod fast;

use crate::assessment::{Assessment, Decision, Firing, NotEvaluated, PolicyRef};
use crate::signals::{Kind, SCHEMA, SignalValue, Signals, definition};

/// A rule's `when` may not be longer than this many bytes.
pub const MAX_EXPRESSION_BYTES: usize = 4096;
/// …nor have more AST nodes than this.
pub const MAX_EXPRESSION_NODES: usize = 512;
/// …nor nest deeper than this.
pub const MAX_EXPRESSION_DEPTH: usize = 32;
/// A policy may not have more rules than this.
pub const MAX_RULES: usize = 1000;

/// A loaded, validated policy.
#[derive(Clone)]
pub struct Policy {
    name: String,
    hash: String,
    source: Arc<str>,
    review_at: u8,
    freeze_at: u8,
    rules: Vec<Rule>,
    /// Every group any rule reads: what each assessment binds.
    groups: Vec<&'static Group>,
    env: Arc<Env>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Rule {
    id: String,
    when: String,
    program: Arc<Program>,
    /// The same condition for the fast path, when every node of it is one the fast path models.
    fast: Option<fast::Node>,
    points: i32,
    decision: Option<Decision>,
    reason: String,
    /// The groups the expression reads, so only those are handed to CEL.
    groups: Vec<&'static Group>,
    /// Every signal the expression reads, recorded with each firing.
    reads: Vec<&'static str>,
}

/// One problem found while loading a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyError {
    /// The rule's id, when the problem is in a rule.
    pub rule: Option<String>,
    /// The 1-based line in the file, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(f, "rule `{rule}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found while loading a policy (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the policy has {} problem(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    name: String,
    #[serde(default)]
    description: Option<String>,
    thresholds: RawThresholds,
    #[serde(default)]
    rules: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawThresholds {
    review: i64,
    freeze: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    when: String,
    #[serde(default)]
    points: i64,
    #[serde(default)]
    decision: Option<Decision>,
    reason: String,
    #[serde(default)]
    #[allow(dead_code)]
    notes: Option<String>,
}

impl Policy {
    /// Parses and validates a policy file. Every problem is reported, not just the first.
    pub fn load(source: &str) -> Result<Self, PolicyErrors> {
        let line_of = |offset: usize| source[..offset.min(source.len())].matches('\n').count() + 1;
        let raw: RawPolicy = toml::from_str(source).map_err(|e| {
            PolicyErrors(vec![PolicyError {
                rule: None,
                line: e.span().map(|s| line_of(s.start)),
                message: e.message().to_owned(),
            }])
        })?;
        let _ = raw.description;
        let mut errors = Vec::new();
        let mut top = |message: String| {
            errors.push(PolicyError {
                rule: None,
                line: None,
                message,
            });
        };
        let (review, freeze) = (raw.thresholds.review, raw.thresholds.freeze);
        if !(1..=100).contains(&review) || !(1..=100).contains(&freeze) || review > freeze {
            top(format!(
                "thresholds: need 1 <= review <= freeze <= 100, got review = {review}, freeze = {freeze}"
            ));
        }
        if raw.name.trim().is_empty() {
            top("name: must not be empty".to_owned());
        }
        if raw.rules.len() > MAX_RULES {
            top(format!(
                "too many rules: {} (the limit is {MAX_RULES})",
                raw.rules.len()
            ));
        }
        let env = Arc::new(Env::stdlib());
        let mut rules = Vec::new();
        let mut seen = BTreeSet::new();
        for spanned in raw.rules {
            let line = line_of(spanned.span().start);
            let raw_rule = spanned.into_inner();
            let id = raw_rule.id.clone();
            let mut fail = |message: String| {
                errors.push(PolicyError {
                    rule: Some(id.clone()),
                    line: Some(line),
                    message,
                });
            };
            if !valid_id(&raw_rule.id) {
                fail("id: use 1-64 characters among a-z, 0-9, '.', '_' and '-'".to_owned());
            }
            if !seen.insert(raw_rule.id.clone()) {
                fail("duplicate id".to_owned());
            }
            if !(-100..=100).contains(&raw_rule.points) {
                fail(format!("points: {} is outside -100..=100", raw_rule.points));
            }
            if raw_rule.points == 0 && raw_rule.decision.is_none() {
                fail("a rule needs points, a decision, or both".to_owned());
            }
            if raw_rule.reason.trim().is_empty() {
                fail("reason: must not be empty".to_owned());
            }
            match compile(&env, &raw_rule.when) {
                Ok((program, reads)) => {
                    let mut names: Vec<&str> = reads
                        .iter()
                        .filter_map(|r| r.split_once('.').map(|(g, _)| g))
                        .collect();
                    names.sort_unstable();
                    names.dedup();
                    let groups = names.into_iter().filter_map(group).collect();
                    let rule = Rule {
                        id: raw_rule.id,
                        when: raw_rule.when,
                        fast: fast::compile(program.expression()),
                        program: Arc::new(program),
                        points: i32::try_from(raw_rule.points).unwrap_or(0),
                        decision: raw_rule.decision,
                        reason: raw_rule.reason,
                        groups,
                        reads,
                    };
                    if let Err(message) = type_check(&env, &rule) {
                        fail(message);
                    }
                    rules.push(rule);
                }
                Err(message) => fail(message),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyErrors(errors));
        }
        Ok(Self {
            name: raw.name,
            hash: hex::encode(Sha256::digest(source.as_bytes())),
            source: source.into(),
            review_at: u8::try_from(review).unwrap_or(100),
            freeze_at: u8::try_from(freeze).unwrap_or(100),
            groups: {
                let mut groups: Vec<&'static Group> = Vec::new();
                for rule in &rules {
                    for g in &rule.groups {
                        if !groups.iter().any(|known| known.name == g.name) {
                            groups.push(g);
                        }
                    }
                }
                groups
            },
            rules,
            env,
        })
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the file's bytes: stored with every assessment.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The file as loaded.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many rules it has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The score at which the decision becomes review, and freeze.
    pub fn thresholds(&self) -> (u8, u8) {
        (self.review_at, self.freeze_at)
    }

    /// Evaluates every rule against `signals` at `now` (Unix seconds, exposed to rules as
    /// `now`). Total: never fails, never panics, never reads a clock.
    pub fn assess(&self, signals: impl Into<Arc<Signals>>, now: i64) -> Assessment {
        self.assess_with(signals.into(), now, true)
    }

    /// [`Policy::assess`] with every rule evaluated by the CEL interpreter: what the fast path
    /// must always agree with (tests and benchmarks compare the two).
    #[doc(hidden)]
    pub fn assess_interpreted(&self, signals: impl Into<Arc<Signals>>, now: i64) -> Assessment {
        self.assess_with(signals.into(), now, false)
    }

    fn assess_with(&self, signals: Arc<Signals>, now: i64, use_fast: bool) -> Assessment {
        // Built only if some rule needs the interpreter.
        let mut context: Option<Context<'_, '_>> = None;
        let mut fired = Vec::new();
        let mut not_evaluated = Vec::new();
        let mut total: i32 = 0;
        let mut floor = Decision::Approve;
        for rule in &self.rules {
            let outcome = self
                .run(rule, &signals, now, use_fast, &mut context)
                .map_err(|miss| match miss {
                    Miss::Unchecked => unchecked_reads(&rule.reads, &signals).unwrap_or_default(),
                    Miss::Failed(error) => error,
                });
            match outcome {
                Ok(true) => {
                    total = total.saturating_add(rule.points);
                    if let Some(d) = rule.decision {
                        floor = floor.max(d);
                    }
                    fired.push(Firing {
                        rule_id: rule.id.clone(),
                        points: rule.points,
                        decision: rule.decision,
                        reason: rule.reason.clone(),
                        reads: rule
                            .reads
                            .iter()
                            .map(|name| {
                                (
                                    (*name).to_owned(),
                                    signals.get(name).map(|s| s.value.clone()),
                                )
                            })
                            .collect(),
                    });
                }
                Ok(false) => {
                    // `null == x` is false in CEL: a rule can be "false" only because what it
                    // reads was never checked. Say so, rather than let it pass as a clean no.
                    if let Some(error) = unchecked_reads(&rule.reads, &signals) {
                        not_evaluated.push(NotEvaluated {
                            rule_id: rule.id.clone(),
                            error,
                        });
                    }
                }
                Err(error) => not_evaluated.push(NotEvaluated {
                    rule_id: rule.id.clone(),
                    error,
                }),
            }
        }
        drop(context);
        let (score, decision) = self.conclude(total, floor);
        Assessment {
            score,
            decision,
            policy: PolicyRef {
                name: self.name.clone(),
                hash: self.hash.clone(),
            },
            evaluated_at: now,
            fired,
            not_evaluated,
            signals,
        }
    }

    /// The decision on `signals` at `now`, and the rules that fired (their positions in
    /// [`Policy::rule_ids`] order, pushed to `fired` after clearing it): what
    /// [`Policy::assess`] decides, without building its explanation. A backtest replays
    /// millions of events and needs no more than this.
    pub fn decide(&self, signals: &Signals, now: i64, fired: &mut Vec<usize>) -> Decision {
        fired.clear();
        let mut context: Option<Context<'_, '_>> = None;
        let mut total: i32 = 0;
        let mut floor = Decision::Approve;
        for (i, rule) in self.rules.iter().enumerate() {
            if self.run(rule, signals, now, true, &mut context) == Ok(true) {
                total = total.saturating_add(rule.points);
                if let Some(d) = rule.decision {
                    floor = floor.max(d);
                }
                fired.push(i);
            }
        }
        self.conclude(total, floor).1
    }

    /// Every rule's id, in policy order.
    pub fn rule_ids(&self) -> impl ExactSizeIterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// One rule on `signals`: the fast path when it is certain, else the interpreter, with the
    /// context built once per evaluation, by the first rule that needs it.
    fn run<'s>(
        &self,
        rule: &Rule,
        signals: &'s Signals,
        now: i64,
        use_fast: bool,
        context: &mut Option<Context<'s, 's>>,
    ) -> Result<bool, Miss> {
        let fast = match (&rule.fast, use_fast) {
            (Some(node), true) => fast::eval(node, signals),
            _ => fast::Fast::Unsure,
        };
        match fast {
            fast::Fast::Is(b) => return Ok(b),
            // Only a signal that was not checked makes the fast path certain of an error, and
            // then the error said is which ones, whatever CEL's text would have been.
            fast::Fast::NotEvaluated if reads_unchecked(&rule.reads, signals) => {
                return Err(Miss::Unchecked);
            }
            fast::Fast::NotEvaluated | fast::Fast::Unsure => {}
        }
        let context =
            context.get_or_insert_with(|| context_for(&self.env, signals, &self.groups, now));
        // An error over signals that were never checked (`null || null`, a bare null where a
        // bool was due) is about the missing check, not the rule: say which.
        evaluate(&rule.program, context).map_err(|error| {
            if reads_unchecked(&rule.reads, signals) {
                Miss::Unchecked
            } else {
                Miss::Failed(error)
            }
        })
    }

    /// The score (the fired rules' points, clamped to 0-100) and the decision: the stricter of
    /// the score's threshold and `floor`, the strictest fired rule's own decision.
    fn conclude(&self, total: i32, floor: Decision) -> (u8, Decision) {
        let score = u8::try_from(total.clamp(0, 100)).unwrap_or(100);
        let by_score = if score >= self.freeze_at {
            Decision::Freeze
        } else if score >= self.review_at {
            Decision::Review
        } else {
            Decision::Approve
        };
        (score, by_score.max(floor))
    }

    /// The rules, for `GET /v1/policy` and documentation: id, condition, points, decision,
    /// reason.
    pub fn rules(&self) -> Vec<RuleSummary> {
        self.rules
            .iter()
            .map(|r| RuleSummary {
                id: r.id.clone(),
                when: r.when.clone(),
                points: r.points,
                decision: r.decision,
                reason: r.reason.clone(),
            })
            .collect()
    }
}

/// Why a rule could not be evaluated.
#[derive(Debug, PartialEq, Eq)]
enum Miss {
    /// It reads signals that were not checked (which ones is worked out only when said).
    Unchecked,
    /// The interpreter's error.
    Failed(String),
}

/// Whether some of `reads` were not checked.
fn reads_unchecked(reads: &[&str], signals: &Signals) -> bool {
    reads.iter().any(|name| signals.get(name).is_none())
}

/// `reads unchecked signals: a, b` when some of `reads` were not checked.
fn unchecked_reads(reads: &[&str], signals: &Signals) -> Option<String> {
    let unchecked: Vec<&str> = reads
        .iter()
        .copied()
        .filter(|name| signals.get(name).is_none())
        .collect();
    (!unchecked.is_empty()).then(|| format!("reads unchecked signals: {}", unchecked.join(", ")))
}

/// A rule as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSummary {
    /// Stable id (the reason code).
    pub id: String,
    /// The CEL condition.
    pub when: String,
    /// Points added to the score when it fires.
    pub points: i32,
    /// The least decision it imposes when it fires.
    pub decision: Option<Decision>,
    /// Why it exists, in words.
    pub reason: String,
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Runs one rule; a non-bool result or an evaluation error (typically a signal that was not
/// checked, read as null) means it does not fire. A panic inside the CEL interpreter is caught:
/// the engine must stay total whatever a policy author wrote.
fn evaluate(program: &Program, context: &Context<'_, '_>) -> Result<bool, String> {
    run(program, context).map_err(|e| e.to_string())
}

/// Why a rule produced no boolean.
enum RunError {
    NotBool(String),
    Cel(cel::ExecutionError),
    Panicked,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::NotBool(t) => write!(f, "yields {t} instead of bool"),
            RunError::Cel(e) => write!(f, "{e}"),
            RunError::Panicked => f.write_str("the CEL interpreter failed on this input"),
        }
    }
}

impl RunError {
    /// Whether the expression itself is ill-typed, as opposed to failing on these particular
    /// values (a division by zero, an index out of range): only the former is refused at load.
    fn is_type_error(&self) -> bool {
        use cel::ExecutionError as E;
        match self {
            RunError::NotBool(_) => true,
            RunError::Panicked => false,
            RunError::Cel(e) => matches!(
                e,
                E::NoSuchOverload(_)
                    | E::UndeclaredReference(_)
                    | E::UnexpectedType { .. }
                    | E::ValuesNotComparable(..)
                    | E::UnsupportedBinaryOperator(..)
                    | E::NotSupportedAsMethod { .. }
                    | E::UnsupportedTargetType { .. }
                    | E::InvalidArgumentCount { .. }
                    | E::NoSuchKey(_)
            ),
        }
    }
}

fn run(program: &Program, context: &Context<'_, '_>) -> Result<bool, RunError> {
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| program.execute(context)));
    match result {
        Ok(Ok(Value::Bool(b))) => Ok(b),
        Ok(Ok(other)) => Err(RunError::NotBool(type_name(&other))),
        Ok(Err(e)) => Err(RunError::Cel(e)),
        Err(_) => Err(RunError::Panicked),
    }
}

fn type_name(value: &Value) -> String {
    format!("{:?}", value.type_of()).to_lowercase()
}

/// The value of one group: a map of every field in the schema, null where not checked, so that
/// `aml.sanctions_hits` on an unscreened user is null rather than "no such key". Built straight
/// in the interpreter's own representation, borrowing strings from `signals`: converting
/// through `cel::Value` maps cost more than evaluating every rule.
fn group_value<'a>(signals: &'a Signals, group: &'static Group) -> Box<dyn Val + 'a> {
    let mut map: HashMap<CelMapKey<'a>, Box<dyn Val + 'a>> =
        HashMap::with_capacity(group.fields.len());
    for (field, name) in &group.fields {
        let value: Box<dyn Val + 'a> = match signals.get(name).map(|s| &s.value) {
            None => Box::new(CelNull),
            Some(SignalValue::Bool(b)) => Box::new(CelBool::from(*b)),
            Some(SignalValue::Int(i)) => Box::new(CelInt::from(*i)),
            Some(SignalValue::Float(f)) => Box::new(CelDouble::from(*f)),
            Some(SignalValue::String(s)) => Box::new(CelString::from(s.as_str())),
            Some(SignalValue::StringList(l)) => Box::new(CelList::from(
                l.iter()
                    .map(|s| Box::new(CelString::from(s.as_str())) as Box<dyn Val + 'a>)
                    .collect::<Vec<_>>(),
            )),
        };
        map.insert(CelMapKey::from(*field), value);
    }
    Box::new(CelMap::from(map))
}

/// A group's fields, computed once from the schema.
struct Group {
    name: &'static str,
    /// `(field, full signal name)`.
    fields: Vec<(&'static str, &'static str)>,
}

fn schema_groups() -> &'static [Group] {
    static GROUPS: OnceLock<Vec<Group>> = OnceLock::new();
    GROUPS.get_or_init(|| {
        let mut groups: Vec<Group> = Vec::new();
        for def in SCHEMA {
            let Some((group, field)) = def.name.split_once('.') else {
                continue;
            };
            match groups.iter_mut().find(|g| g.name == group) {
                Some(g) => g.fields.push((field, def.name)),
                None => groups.push(Group {
                    name: group,
                    fields: vec![(field, def.name)],
                }),
            }
        }
        groups
    })
}

fn group(name: &str) -> Option<&'static Group> {
    schema_groups().iter().find(|g| g.name == name)
}

/// A context with the groups `rules` read, borrowing `signals`.
fn context_for<'a>(
    env: &Arc<Env>,
    signals: &'a Signals,
    groups: &[&'static Group],
    now: i64,
) -> Context<'a, 'a> {
    let mut context = Context::with_env(env.clone());
    for g in groups {
        context.add_variable_as_val(g.name, group_value(signals, g));
    }
    context.add_variable_as_val("now", Box::new(CelInt::from(now)));
    context
}

/// Parses `when`, enforces the limits, and returns the program with the signals it reads.
fn compile(env: &Env, when: &str) -> Result<(Program, Vec<&'static str>), String> {
    if when.trim().is_empty() {
        return Err("when: the condition is empty".to_owned());
    }
    if when.len() > MAX_EXPRESSION_BYTES {
        return Err(format!(
            "when: {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
            when.len()
        ));
    }
    let program = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| env.compile(when)))
        .map_err(|_| "when: the CEL parser failed on this expression".to_owned())?
        .map_err(|e| format!("when: CEL syntax error: {}", one_line(&e.to_string())))?;
    let mut walk = Walk::default();
    walk.visit(program.expression(), 1, &mut Vec::new());
    // The walk stops counting at the limits, so the messages give the limit, not a count.
    if walk.nodes > MAX_EXPRESSION_NODES {
        return Err(format!(
            "when: more than {MAX_EXPRESSION_NODES} nodes, over the limit"
        ));
    }
    if walk.depth > MAX_EXPRESSION_DEPTH {
        return Err(format!(
            "when: nested more than {MAX_EXPRESSION_DEPTH} deep, over the limit"
        ));
    }
    if let Some(problem) = walk.problems.into_iter().next() {
        return Err(problem);
    }
    Ok((program, walk.reads.into_iter().collect()))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Collects the signals an expression reads and refuses names outside the schema.
#[derive(Default)]
struct Walk {
    nodes: usize,
    depth: usize,
    reads: BTreeSet<&'static str>,
    problems: Vec<String>,
}

impl Walk {
    fn visit(&mut self, node: &IdedExpr, depth: usize, bound: &mut Vec<String>) {
        self.nodes += 1;
        self.depth = self.depth.max(depth);
        if self.nodes > MAX_EXPRESSION_NODES || depth > MAX_EXPRESSION_DEPTH {
            return;
        }
        let next = depth + 1;
        match &node.expr {
            Expr::Select(select) => {
                if let Expr::Ident(group) = &select.operand.expr
                    && !bound.contains(group)
                {
                    self.nodes += 1;
                    self.signal(group, &select.field);
                } else {
                    self.visit(&select.operand, next, bound);
                }
            }
            Expr::Ident(name) => {
                if !bound.contains(name) && name != "now" {
                    if crate::signals::groups().contains(&name.as_str()) {
                        self.problems.push(format!(
                            "when: `{name}` is a group of signals; read one of its fields, e.g. `{name}.{}`",
                            first_field(name)
                        ));
                    } else {
                        self.problems.push(format!(
                            "when: unknown name `{name}` (signals are read as group.field, e.g. aml.sanctions_hits; `now` is the evaluation time)"
                        ));
                    }
                }
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    self.visit(target, next, bound);
                }
                for arg in &call.args {
                    self.visit(arg, next, bound);
                }
            }
            Expr::Comprehension(c) => {
                self.visit(&c.iter_range, next, bound);
                self.visit(&c.accu_init, next, bound);
                let added = 2 + usize::from(c.iter_var2.is_some());
                bound.push(c.iter_var.clone());
                bound.push(c.accu_var.clone());
                if let Some(v) = &c.iter_var2 {
                    bound.push(v.clone());
                }
                self.visit(&c.loop_cond, next, bound);
                self.visit(&c.loop_step, next, bound);
                self.visit(&c.result, next, bound);
                bound.truncate(bound.len() - added);
            }
            Expr::List(list) => {
                for e in &list.elements {
                    self.visit(e, next, bound);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        self.visit(&e.key, next, bound);
                        self.visit(&e.value, next, bound);
                    }
                }
            }
            Expr::Struct(_) => self
                .problems
                .push("when: message construction is not supported in policies".to_owned()),
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }

    fn signal(&mut self, group: &str, field: &str) {
        let name = format!("{group}.{field}");
        match definition(&name) {
            Some(def) => {
                self.reads.insert(def.name);
            }
            None if crate::signals::groups().contains(&group) => self.problems.push(format!(
                "when: unknown signal `{name}` (see `riskhook policy signals`)"
            )),
            None => self
                .problems
                .push(format!("when: unknown signal group `{group}`")),
        }
    }
}

fn first_field(group: &str) -> &'static str {
    SCHEMA
        .iter()
        .find_map(|d| d.name.strip_prefix(group).and_then(|r| r.strip_prefix('.')))
        .unwrap_or("status")
}

/// Finds type errors by evaluating the rule against two complete sets of typed probe values.
/// CEL has no static checker in this crate, but with every signal present and well typed an
/// error can only come from the expression itself.
fn type_check(env: &Arc<Env>, rule: &Rule) -> Result<(), String> {
    for probe in [probe(false), probe(true)] {
        let context = context_for(env, &probe, &rule.groups, 1_780_000_000);
        match run(&rule.program, &context) {
            Err(e) if e.is_type_error() => {
                return Err(format!("when: type error: {}", one_line(&e.to_string())));
            }
            _ => {}
        }
    }
    Ok(())
}

fn probe(high: bool) -> Signals {
    let mut s = Signals::new();
    for def in SCHEMA {
        let value = match def.kind {
            Kind::Bool => SignalValue::Bool(high),
            Kind::Int => SignalValue::Int(i64::from(high) * 3),
            Kind::Float => SignalValue::Float(if high { 97.5 } else { 0.0 }),
            Kind::String => SignalValue::String(if high { "Approved" } else { "" }.to_owned()),
            Kind::StringList => SignalValue::StringList(if high {
                vec!["DOCUMENT_EXPIRED".to_owned()]
            } else {
                Vec::new()
            }),
        };
        s.set(def.name, value, "probe", "probe");
    }
    s
}

/// The policy compiled into the binary: see `policy/default.toml`.
pub const DEFAULT_POLICY: &str = include_str!("../policy/default.toml");

/// Which rule ids fired, for tests and `policy test`.
pub fn fired_ids(assessment: &Assessment) -> Vec<&str> {
    assessment
        .fired
        .iter()
        .map(|f| f.rule_id.as_str())
        .collect()
}

/// `BTreeMap` alias for readers of [`Firing::reads`].
pub type Reads = BTreeMap<String, Option<SignalValue>>;
