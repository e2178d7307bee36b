//! Records of manual review: cases, account actions, and what review commands return.

use riskhook_core::assessment::Decision;
use riskhook_core::review::{ActionKind, ActionStatus, CaseStatus, Outcome, Person};

use crate::{StoreError, UserRecord};

/// A review case: the evidence about one user waiting for (or judged by) a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// Our id (`case_…`).
    pub id: String,
    /// The user it is about.
    pub user_id: String,
    /// Where it stands.
    pub status: CaseStatus,
    /// The strictest decision among its evidence (`review` or `freeze`).
    pub decision: Decision,
    /// The key that claimed it.
    pub assignee: Option<String>,
    /// When it opened, Unix seconds.
    pub opened_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// Who resolved it (the second person, when one was needed).
    pub resolved_by: Option<String>,
    /// The outcome.
    pub outcome: Option<Outcome>,
    /// The reason given with the outcome.
    pub reason: Option<String>,
    /// Its evidence: the assessments that decided review or freeze, oldest first.
    pub assessment_ids: Vec<String>,
}

/// Which cases to list. Pages by id (ids grow with time): `after` is the last id seen.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// Only cases in this state.
    pub status: Option<CaseStatus>,
    /// Only cases not resolved yet (open, claimed or waiting for approval): the queue.
    pub unresolved: bool,
    /// Only cases claimed by this key.
    pub assignee: Option<String>,
    /// Only cases whose evidence decided this.
    pub decision: Option<Decision>,
    /// Only cases opened at or before this time (their age is at least `now - this`).
    pub opened_before: Option<i64>,
    /// Only this user's cases.
    pub user_id: Option<String>,
    /// Cases after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// A manual account action, or a case resolution waiting for a second person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    /// Our id (`act_…`).
    pub id: String,
    /// What it does.
    pub kind: ActionKind,
    /// The user it acts on.
    pub user_id: String,
    /// The case it resolves ([`ActionKind::ResolveCase`]).
    pub case_id: Option<String>,
    /// The case outcome it applies ([`ActionKind::ResolveCase`]).
    pub outcome: Option<Outcome>,
    /// The requester's reason.
    pub reason: String,
    /// The key that asked.
    pub requested_by: String,
    /// When.
    pub requested_at: i64,
    /// Where it stands.
    pub status: ActionStatus,
    /// The second person, or the requester when none was needed.
    pub decided_by: Option<String>,
    /// When it was applied or rejected.
    pub decided_at: Option<i64>,
    /// The second person's reason.
    pub decision_reason: Option<String>,
}

/// What a review command changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewOutcome {
    /// The user, after the command.
    pub user: UserRecord,
    /// The case it touched, after the command.
    pub case: Option<CaseRecord>,
    /// The action it recorded: `pending` when a second person must approve.
    pub action: Option<ActionRecord>,
}

/// Why a command was refused. The HTTP layer maps each to its status code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The thing named does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// `user`, `case`, `action`, `key`, `delivery` or `endpoint`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The command does not apply to the thing's current state.
    #[error("{0}")]
    Conflict(String),
    /// The command needs a different person (four eyes).
    #[error("{0}")]
    SamePerson(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CommandError {
    /// A [`CommandError::NotFound`].
    pub fn not_found(kind: &'static str, id: &str) -> Self {
        CommandError::NotFound {
            kind,
            id: id.to_owned(),
        }
    }

    /// A stored `what` that no version knows (`value`): the database is corrupt.
    pub fn corrupt(what: &str, value: &str) -> Self {
        CommandError::Store(StoreError::Corrupt(format!("unknown {what} `{value}`")))
    }
}

/// The requester of an action as both backends store it (`actions.requester`): a [`Person`] as
/// JSON, so the second person can be checked against who asked, whoever's keys change later.
pub fn requester_json(person: &Person) -> String {
    // A struct of strings, a list of strings and an optional integer always serialises.
    serde_json::to_string(person).unwrap_or_default()
}

/// The inverse of [`requester_json`]. Actions recorded before keys had principals have no
/// requester: their key id stands for the person, as it did then.
pub fn requester_person(stored: Option<&str>, requested_by: &str) -> Result<Person, CommandError> {
    match stored {
        None => Ok(Person::on_their_own(requested_by)),
        Some(json) => serde_json::from_str(json).map_err(|e| {
            CommandError::Store(StoreError::Corrupt(format!(
                "the requester of an action is not a person: {e}"
            )))
        }),
    }
}

/// A case with what a reviewer judges it by: its user and every assessment of its evidence,
/// oldest first.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// The case.
    pub case: CaseRecord,
    /// Its user.
    pub user: UserRecord,
    /// Its evidence.
    pub evidence: Vec<crate::AssessmentRecord>,
}

/// Reads a case's file, or `None` when there is no such case. A case exists only for a known
/// user with stored assessments, so anything missing is reported as corruption.
pub async fn case_file(store: &dyn crate::Store, id: &str) -> Result<Option<CaseFile>, StoreError> {
    let Some(case) = store.case(id).await? else {
        return Ok(None);
    };
    let user = store
        .user(&case.user_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("case {id}: user missing")))?;
    let mut evidence = Vec::with_capacity(case.assessment_ids.len());
    for assessment_id in &case.assessment_ids {
        evidence.push(store.assessment(assessment_id).await?.ok_or_else(|| {
            StoreError::Corrupt(format!("case {id}: assessment {assessment_id} missing"))
        })?);
    }
    Ok(Some(CaseFile {
        case,
        user,
        evidence,
    }))
}

/// Which stored session events a backtest replays: in arrival order, a page at a time.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Events after this arrival position (0: from the first).
    pub after_seq: i64,
    /// Only events received at or after this time (Unix seconds).
    pub received_since: Option<i64>,
    /// Only events received before this time.
    pub received_until: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// A stored session event as a backtest replays it (a row of `signal_snapshots`): the signal
/// values it was assessed on when it has an assessment, else the event to extract them from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRecord {
    /// The event's arrival position: the cursor of the next page.
    pub seq: i64,
    /// The user it names (`vendor_data`).
    pub user_id: Option<String>,
    /// The `now` it was assessed at; for an event stored without an assessment, its own
    /// timestamp, else when it was received (what intake would assess it at).
    pub at: i64,
    /// The signal values, compact JSON (`Signals::values_json`), when it was assessed.
    pub signals: Option<String>,
    /// The event itself, only when it has no assessment.
    pub unassessed: Option<ReplayBody>,
}

/// A stored session event without an assessment, to extract its signals from again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayBody {
    /// Our id (`evt_…`).
    pub event_id: String,
    /// Whether the body was authenticated (not only the Simple signature).
    pub body_trusted: bool,
    /// The raw body.
    pub raw: Vec<u8>,
}

/// A person's verdict on a user: a resolved case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictRecord {
    /// The user.
    pub user_id: String,
    /// When the case was resolved (Unix seconds).
    pub resolved_at: i64,
    /// Its outcome.
    pub outcome: Outcome,
}
