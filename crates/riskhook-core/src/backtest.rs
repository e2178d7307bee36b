//! Backtesting a policy: replaying stored session events (their signal snapshots) through the
//! policy in force and a candidate, side by side, and reporting what would change: decisions as
//! a matrix, user statuses, the review queue, how often each rule fires, and how each policy
//! agrees with the people who resolved cases. Pure: the caller streams the events in (from a
//! database, a file, anything) and gets a [`Report`]; memory grows with users, never events.
//!
//! The user model is the service's (`crate::review::account_status`): a user's status is the
//! last person's verdict tightened by the evidence waiting for a person, i.e. the review and
//! freeze assessments that came after that verdict. It depends on the set of events, not their
//! order, so the report does not either (up to which users are listed as examples).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::assessment::{Decision, UserStatus};
use crate::policy::Policy;
use crate::review::{Outcome, account_status};
use crate::signals::Signals;

/// How many example user ids each cell of a matrix keeps.
pub const EXAMPLES: usize = 5;

/// One stored session event to replay.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The user (Didit's `vendor_data`), when the event names one.
    pub user_id: Option<String>,
    /// When the event was assessed (Unix seconds): the `now` rules see, and its place against
    /// a person's verdict.
    pub at: i64,
    /// The signals it was assessed on.
    pub signals: Arc<Signals>,
}

/// What a person decided about a user, from the resolved cases: the labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// When it was decided (Unix seconds).
    pub at: i64,
    /// The outcome.
    pub outcome: Outcome,
}

impl Verdict {
    /// Whether the person found the user risky: declined or frozen.
    pub fn risky(&self) -> bool {
        matches!(self.outcome, Outcome::Decline | Outcome::Freeze)
    }
}

/// Counts with a few examples, for one cell of a matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// How many.
    pub count: u64,
    /// Up to [`EXAMPLES`] user ids (the smallest, so the report is stable).
    pub examples: Vec<String>,
}

impl Cell {
    fn add(&mut self, user: Option<&str>) {
        self.count += 1;
        if let Some(user) = user
            && !self.examples.iter().any(|e| e == user)
        {
            let at = self
                .examples
                .binary_search_by(|e| e.as_str().cmp(user))
                .unwrap_or_else(|at| at);
            if at < EXAMPLES {
                self.examples.insert(at, user.to_owned());
                self.examples.truncate(EXAMPLES);
            }
        }
    }
}

/// How a policy agrees with people: each user with a person's verdict is a label (risky when
/// declined or frozen), and the policy "flags" a user when any of their events, replayed up to
/// the verdict, decides review or freeze.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Agreement {
    /// Flagged and risky.
    pub true_positives: u64,
    /// Flagged, but the person approved.
    pub false_positives: u64,
    /// Not flagged, but the person found them risky.
    pub false_negatives: u64,
    /// Not flagged and approved.
    pub true_negatives: u64,
    /// TP / (TP + FP); `None` when nothing was flagged.
    pub precision: Option<f64>,
    /// TP / (TP + FN); `None` when no label is risky.
    pub recall: Option<f64>,
}

impl Agreement {
    fn finish(mut self) -> Self {
        let ratio = |a: u64, b: u64| (a + b > 0).then(|| a as f64 / (a + b) as f64);
        self.precision = ratio(self.true_positives, self.false_positives);
        self.recall = ratio(self.true_positives, self.false_negatives);
        self
    }
}

/// One rule's firings under each policy (a rule only one policy has counts 0 in the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RuleFires {
    /// Under the policy in force.
    pub current: u64,
    /// Under the candidate.
    pub candidate: u64,
}

/// What the candidate would change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The policy in force: name and hash.
    pub current: PolicyId,
    /// The candidate.
    pub candidate: PolicyId,
    /// Events replayed.
    pub events: u64,
    /// `decisions[from][to]`: events whose decision is `from` under the policy in force and
    /// `to` under the candidate, by `approve`, `review`, `freeze`.
    pub decisions: BTreeMap<&'static str, BTreeMap<&'static str, Cell>>,
    /// Events whose decision changes.
    pub decisions_changed: u64,
    /// `users[from][to]`: users whose status is `from` under the policy in force and `to`
    /// under the candidate (statuses `active`, `in_review`, `frozen`, `declined`).
    pub users: BTreeMap<&'static str, BTreeMap<&'static str, Cell>>,
    /// Users whose status changes.
    pub users_changed: u64,
    /// Users seen.
    pub users_total: u64,
    /// Users with evidence waiting for a person (an open case) under each policy.
    pub queue: Queue,
    /// Each rule of either policy, by id.
    pub rules: BTreeMap<String, RuleFires>,
    /// Agreement with people's verdicts, under each policy.
    pub labels: Labels,
}

/// A policy's name and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyId {
    /// Its name.
    pub name: String,
    /// SHA-256 of its text.
    pub hash: String,
}

/// The review queue under each policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Queue {
    /// Open cases under the policy in force.
    pub current: u64,
    /// Open cases under the candidate.
    pub candidate: u64,
    /// `candidate - current`.
    pub change: i64,
}

/// [`Agreement`] under each policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Labels {
    /// Users with a person's verdict.
    pub labelled_users: u64,
    /// Of them, found risky.
    pub risky: u64,
    /// The policy in force.
    pub current: Agreement,
    /// The candidate.
    pub candidate: Agreement,
}

/// What each policy made of one user so far.
#[derive(Debug, Default, Clone, Copy)]
struct UserTally {
    /// The strictest decision among events after the verdict (the open case's evidence), per
    /// policy.
    waiting: [Option<Decision>; 2],
    /// Whether an event up to the verdict decided review or freeze, per policy.
    flagged: [bool; 2],
}

/// A comparison in progress: [`Comparison::record`] what each policy decided on each event,
/// then [`Comparison::finish`]. A backtest feeds it by evaluating both policies
/// ([`Backtest`]); a shadow policy's live report feeds it the decisions stored at intake.
#[derive(Debug)]
pub struct Comparison {
    ids: [PolicyId; 2],
    verdicts: HashMap<String, Verdict>,
    users: HashMap<String, UserTally>,
    events: u64,
    decisions: [[Cell; 3]; 3],
    fires: BTreeMap<String, [u64; 2]>,
}

fn rank(d: Decision) -> usize {
    match d {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Freeze => 2,
    }
}

const DECISIONS: [Decision; 3] = [Decision::Approve, Decision::Review, Decision::Freeze];
const STATUSES: [UserStatus; 4] = [
    UserStatus::Active,
    UserStatus::InReview,
    UserStatus::Frozen,
    UserStatus::Declined,
];

impl PolicyId {
    /// The id of a loaded policy.
    pub fn of(policy: &Policy) -> Self {
        PolicyId {
            name: policy.name().to_owned(),
            hash: policy.hash().to_owned(),
        }
    }
}

/// One event as both policies decided it.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// The user, when the event names one.
    pub user_id: Option<&'a str>,
    /// When it was assessed (Unix seconds).
    pub at: i64,
    /// The policy in force's decision, then the candidate's.
    pub decisions: [Decision; 2],
    /// The rules each fired.
    pub fired: [&'a [&'a str]; 2],
}

impl Comparison {
    /// Compares `candidate` with `current`, listing every rule in `rules` (each policy's, so
    /// a rule that never fires still shows with 0). `verdicts`: each user's latest verdict by a
    /// person (a resolved case), the labels and the baseline of their status.
    pub fn new(
        current: PolicyId,
        candidate: PolicyId,
        rules: impl IntoIterator<Item = String>,
        verdicts: HashMap<String, Verdict>,
    ) -> Self {
        Comparison {
            ids: [current, candidate],
            verdicts,
            users: HashMap::new(),
            events: 0,
            decisions: Default::default(),
            fires: rules.into_iter().map(|id| (id, [0; 2])).collect(),
        }
    }

    /// Counts one event.
    pub fn record(&mut self, event: Decided<'_>) {
        self.events += 1;
        for (i, fired) in event.fired.iter().enumerate() {
            for rule in *fired {
                match self.fires.get_mut(*rule) {
                    Some(counts) => counts[i] += 1,
                    None => {
                        let mut counts = [0; 2];
                        counts[i] = 1;
                        self.fires.insert((*rule).to_owned(), counts);
                    }
                }
            }
        }
        let [current, candidate] = event.decisions;
        self.decisions[rank(current)][rank(candidate)].add(event.user_id);
        let Some(user) = event.user_id else { return };
        let verdict_at = self.verdicts.get(user).map(|v| v.at);
        let tally = self.users.entry(user.to_owned()).or_default();
        for (i, decision) in event.decisions.into_iter().enumerate() {
            let evidence = decision >= Decision::Review;
            match verdict_at {
                // Seen by the person who decided: it counts towards agreeing with them.
                Some(at) if event.at <= at => tally.flagged[i] |= evidence,
                // After the verdict (or without one): waiting for a person.
                _ if evidence => tally.waiting[i] = tally.waiting[i].max(Some(decision)),
                _ => {}
            }
        }
    }

    /// The report.
    pub fn finish(self) -> Report {
        let matrix = |cells: Vec<Vec<Cell>>, names: &[&'static str]| {
            let mut out = BTreeMap::new();
            for (from, row) in names.iter().zip(cells) {
                let mut inner = BTreeMap::new();
                for (to, cell) in names.iter().zip(row) {
                    inner.insert(*to, cell);
                }
                out.insert(*from, inner);
            }
            out
        };
        let decisions_changed = (0..3)
            .flat_map(|a| (0..3).map(move |b| (a, b)))
            .filter(|(a, b)| a != b)
            .map(|(a, b)| self.decisions[a][b].count)
            .sum();

        let mut users = vec![vec![Cell::default(); 4]; 4];
        let mut users_changed = 0;
        let mut queue = Queue::default();
        let mut labels = Labels::default();
        let mut agreement = [Agreement::default(); 2];
        // Users sorted, so the examples do not depend on hashing.
        let mut ids: Vec<&String> = self.users.keys().collect();
        ids.sort();
        for id in ids {
            let tally = self.users[id];
            let verdict = self.verdicts.get(id);
            let baseline = verdict.map(|v| v.outcome.status());
            let status = [0, 1].map(|i| account_status(baseline, tally.waiting[i]));
            let index = |s: UserStatus| STATUSES.iter().position(|x| *x == s).unwrap_or(0);
            users[index(status[0])][index(status[1])].add(Some(id));
            if status[0] != status[1] {
                users_changed += 1;
            }
            queue.current += u64::from(tally.waiting[0].is_some());
            queue.candidate += u64::from(tally.waiting[1].is_some());
            if let Some(verdict) = verdict {
                labels.labelled_users += 1;
                labels.risky += u64::from(verdict.risky());
                for (i, a) in agreement.iter_mut().enumerate() {
                    match (tally.flagged[i], verdict.risky()) {
                        (true, true) => a.true_positives += 1,
                        (true, false) => a.false_positives += 1,
                        (false, true) => a.false_negatives += 1,
                        (false, false) => a.true_negatives += 1,
                    }
                }
            }
        }
        queue.change = i64::try_from(queue.candidate).unwrap_or(i64::MAX)
            - i64::try_from(queue.current).unwrap_or(i64::MAX);
        labels.current = agreement[0].finish();
        labels.candidate = agreement[1].finish();
        let users_total = self.users.len() as u64;
        let [current, candidate] = self.ids;
        Report {
            current,
            candidate,
            events: self.events,
            decisions: matrix(
                self.decisions.into_iter().map(Vec::from).collect(),
                &DECISIONS.map(Decision::as_str),
            ),
            decisions_changed,
            users: matrix(users, &STATUSES.map(UserStatus::as_str)),
            users_changed,
            users_total,
            queue,
            rules: self
                .fires
                .into_iter()
                .map(|(id, [current, candidate])| (id, RuleFires { current, candidate }))
                .collect(),
            labels,
        }
    }
}

/// A backtest in progress: [`Backtest::replay`] each event through both policies, then
/// [`Backtest::finish`].
#[derive(Debug)]
pub struct Backtest<'p> {
    policies: [&'p Policy; 2],
    /// Each policy's rule ids, in policy order.
    rule_ids: [Vec<&'p str>; 2],
    /// The rules each policy fired on the event being replayed (positions, then ids): reused
    /// from one event to the next.
    fired: [Vec<usize>; 2],
    names: [Vec<&'p str>; 2],
    comparison: Comparison,
}

impl<'p> Backtest<'p> {
    /// Compares `candidate` with `current`. `verdicts`: each user's latest verdict by a person
    /// (a resolved case), the labels and the baseline of their status.
    pub fn new(
        current: &'p Policy,
        candidate: &'p Policy,
        verdicts: HashMap<String, Verdict>,
    ) -> Self {
        let rules = current
            .rules()
            .into_iter()
            .chain(candidate.rules())
            .map(|r| r.id);
        Backtest {
            policies: [current, candidate],
            rule_ids: [current, candidate].map(|p| p.rule_ids().collect()),
            fired: [Vec::new(), Vec::new()],
            names: [Vec::new(), Vec::new()],
            comparison: Comparison::new(
                PolicyId::of(current),
                PolicyId::of(candidate),
                rules,
                verdicts,
            ),
        }
    }

    /// Replays one event under both policies: their decisions as [`Policy::assess`] makes
    /// them, without building the explanations.
    pub fn replay(&mut self, event: &Replay) {
        let mut decisions = [Decision::Approve; 2];
        for (i, decision) in decisions.iter_mut().enumerate() {
            *decision = self.policies[i].decide(&event.signals, event.at, &mut self.fired[i]);
            let ids = &self.rule_ids[i];
            self.names[i].clear();
            self.names[i].extend(self.fired[i].iter().map(|&r| ids[r]));
        }
        self.comparison.record(Decided {
            user_id: event.user_id.as_deref(),
            at: event.at,
            decisions,
            fired: [&self.names[0], &self.names[1]],
        });
    }

    /// The report.
    pub fn finish(self) -> Report {
        self.comparison.finish()
    }
}
