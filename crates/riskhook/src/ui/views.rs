//! The workbench's pages as askama templates (`templates/ui/`) and the view models they
//! render: plain strings and numbers prepared by the handlers, so templates hold no logic
//! beyond loops and conditions, and every value is HTML-escaped on the way out.

use askama::Template;

/// What the previous command did, shown once at the top of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    /// `ok`, `wait` (done, but waiting for someone) or `error`.
    pub(crate) kind: &'static str,
    pub(crate) text: String,
}

impl Flash {
    pub(crate) fn ok(text: impl Into<String>) -> Self {
        Flash {
            kind: "ok",
            text: text.into(),
        }
    }

    pub(crate) fn wait(text: impl Into<String>) -> Self {
        Flash {
            kind: "wait",
            text: text.into(),
        }
    }

    pub(crate) fn error(text: impl Into<String>) -> Self {
        Flash {
            kind: "error",
            text: text.into(),
        }
    }

    /// As stored with the session: `kind:text`.
    pub(crate) fn encode(&self) -> String {
        format!("{}:{}", self.kind, self.text)
    }

    pub(crate) fn decode(stored: &str) -> Self {
        let (kind, text) = stored.split_once(':').unwrap_or(("ok", stored));
        let kind = match kind {
            "wait" => "wait",
            "error" => "error",
            _ => "ok",
        };
        Flash {
            kind,
            text: text.to_owned(),
        }
    }
}

/// The frame around every signed-in page: who is signed in, what they may do, the session's
/// CSRF token for every form, the message from the last command, and the current tab.
#[derive(Debug)]
pub(crate) struct Chrome {
    pub(crate) principal: String,
    pub(crate) key_id: String,
    pub(crate) role: &'static str,
    pub(crate) can_review: bool,
    pub(crate) is_admin: bool,
    pub(crate) csrf: String,
    pub(crate) flash: Option<Flash>,
    pub(crate) tab: &'static str,
    pub(crate) title: String,
}

#[derive(Template)]
#[template(path = "ui/sign_in.html")]
pub(crate) struct SignInPage {
    pub(crate) csrf: String,
    pub(crate) next: String,
    pub(crate) error: String,
}

#[derive(Template)]
#[template(path = "ui/error.html")]
pub(crate) struct ErrorPage {
    pub(crate) title: &'static str,
    pub(crate) message: String,
}

/// One option of a `<select>`.
#[derive(Debug)]
pub(crate) struct Choice {
    pub(crate) value: &'static str,
    pub(crate) label: &'static str,
    pub(crate) selected: bool,
}

pub(crate) fn choices(options: &[(&'static str, &'static str)], current: &str) -> Vec<Choice> {
    options
        .iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: *value == current,
        })
        .collect()
}

/// A row of the queue.
#[derive(Debug)]
pub(crate) struct QueueRow {
    pub(crate) case_id: String,
    pub(crate) user_id: String,
    pub(crate) status: &'static str,
    pub(crate) decision: &'static str,
    pub(crate) score: String,
    pub(crate) user_status: &'static str,
    pub(crate) assignee: String,
    pub(crate) age: String,
    pub(crate) opened: String,
    pub(crate) opened_rfc3339: String,
}

#[derive(Template)]
#[template(path = "ui/queue.html")]
pub(crate) struct QueuePage {
    pub(crate) chrome: Chrome,
    pub(crate) rows: Vec<QueueRow>,
    pub(crate) count: u64,
    pub(crate) statuses: Vec<Choice>,
    pub(crate) decisions: Vec<Choice>,
    pub(crate) assignee: String,
    pub(crate) mine: bool,
    pub(crate) older_than: String,
    pub(crate) problem: String,
    /// The query string of the next page, when there is one.
    pub(crate) next_page: Option<String>,
    pub(crate) first_page: Option<String>,
}

/// A rule that fired, as the evidence shows it.
#[derive(Debug)]
pub(crate) struct FiredRow {
    pub(crate) rule_id: String,
    pub(crate) points: i32,
    pub(crate) decision: &'static str,
    pub(crate) reason: String,
    /// `signal = value` pairs.
    pub(crate) reads: Vec<(String, String)>,
}

/// A rule that could not be evaluated, in words, with the engine's text as detail.
#[derive(Debug)]
pub(crate) struct NotEvaluatedRow {
    pub(crate) rule_id: String,
    pub(crate) words: String,
    pub(crate) detail: String,
}

/// One assessment of a case's evidence (or a user's current assessment).
#[derive(Debug)]
pub(crate) struct EvidenceView {
    pub(crate) assessment_id: String,
    pub(crate) event_id: String,
    pub(crate) session_id: String,
    pub(crate) score: u8,
    pub(crate) decision: &'static str,
    pub(crate) policy_hash: String,
    pub(crate) evaluated: String,
    pub(crate) fired: Vec<FiredRow>,
    pub(crate) not_evaluated: Vec<NotEvaluatedRow>,
}

/// One event of a user's timeline.
#[derive(Debug)]
pub(crate) struct TimelineRow {
    pub(crate) when: String,
    pub(crate) received: String,
    pub(crate) webhook_type: String,
    pub(crate) session_id: String,
    pub(crate) status: String,
    pub(crate) trusted: bool,
}

/// The user block of the case and user pages.
#[derive(Debug)]
pub(crate) struct UserView {
    pub(crate) user_id: String,
    pub(crate) status: &'static str,
    pub(crate) verdict: &'static str,
    pub(crate) score: u8,
    pub(crate) decision: &'static str,
    pub(crate) ever_frozen: bool,
    pub(crate) sessions: Vec<String>,
    pub(crate) first_seen: String,
    pub(crate) updated: String,
    pub(crate) frozen: bool,
    /// The status as a CSS class suffix.
    pub(crate) status_class: &'static str,
}

/// A case's own facts.
#[derive(Debug)]
pub(crate) struct CaseView {
    pub(crate) id: String,
    pub(crate) status: &'static str,
    pub(crate) decision: &'static str,
    pub(crate) assignee: String,
    pub(crate) mine: bool,
    pub(crate) opened: String,
    pub(crate) age: String,
    pub(crate) resolved: bool,
    pub(crate) pending: bool,
    pub(crate) outcome: String,
    pub(crate) reason: String,
    pub(crate) resolved_by: String,
}

#[derive(Template)]
#[template(path = "ui/case.html")]
pub(crate) struct CasePage {
    pub(crate) chrome: Chrome,
    pub(crate) case: CaseView,
    pub(crate) user: UserView,
    pub(crate) evidence: Vec<EvidenceView>,
    pub(crate) timeline: Vec<TimelineRow>,
    pub(crate) outcomes: Vec<Choice>,
    /// Where the freeze and unfreeze forms come back to.
    pub(crate) back: String,
}

/// A case in the user page's list.
#[derive(Debug)]
pub(crate) struct UserCaseRow {
    pub(crate) id: String,
    pub(crate) status: &'static str,
    pub(crate) decision: &'static str,
    pub(crate) opened: String,
    pub(crate) outcome: String,
}

#[derive(Template)]
#[template(path = "ui/user.html")]
pub(crate) struct UserPage {
    pub(crate) chrome: Chrome,
    pub(crate) user: UserView,
    pub(crate) current: Option<EvidenceView>,
    pub(crate) cases: Vec<UserCaseRow>,
    pub(crate) timeline: Vec<TimelineRow>,
    pub(crate) back: String,
}

/// A pending (or decided) account action.
#[derive(Debug)]
pub(crate) struct ActionRow {
    pub(crate) id: String,
    pub(crate) what: String,
    pub(crate) user_id: String,
    pub(crate) case_id: String,
    pub(crate) reason: String,
    pub(crate) requested_by: String,
    pub(crate) age: String,
    pub(crate) status: &'static str,
    pub(crate) decided_by: String,
    pub(crate) mine: bool,
}

#[derive(Template)]
#[template(path = "ui/approvals.html")]
pub(crate) struct ApprovalsPage {
    pub(crate) chrome: Chrome,
    pub(crate) pending: Vec<ActionRow>,
    pub(crate) recent: Vec<ActionRow>,
}

/// One audit entry.
#[derive(Debug)]
pub(crate) struct AuditRow {
    pub(crate) seq: i64,
    pub(crate) at: String,
    pub(crate) actor: String,
    pub(crate) action: String,
    pub(crate) subject: String,
    pub(crate) reason: String,
    pub(crate) hash: String,
    pub(crate) keyed: bool,
}

#[derive(Template)]
#[template(path = "ui/audit.html")]
pub(crate) struct AuditPage {
    pub(crate) chrome: Chrome,
    pub(crate) intact: bool,
    pub(crate) verdict: String,
    /// Entries this look checked (all of them when `full`).
    pub(crate) checked_now: i64,
    pub(crate) full: bool,
    pub(crate) rows: Vec<AuditRow>,
    pub(crate) older: Option<i64>,
    pub(crate) newer: Option<i64>,
}

/// One outbound notification.
#[derive(Debug)]
pub(crate) struct DeliveryRow {
    pub(crate) id: String,
    pub(crate) endpoint: String,
    pub(crate) user_id: String,
    pub(crate) status: &'static str,
    pub(crate) attempts: u32,
    pub(crate) last: String,
    pub(crate) created: String,
    pub(crate) failed: bool,
}

#[derive(Template)]
#[template(path = "ui/deliveries.html")]
pub(crate) struct DeliveriesPage {
    pub(crate) chrome: Chrome,
    pub(crate) statuses: Vec<Choice>,
    pub(crate) rows: Vec<DeliveryRow>,
    pub(crate) older: Option<String>,
}

/// One rule of the policy in force.
#[derive(Debug)]
pub(crate) struct RuleRow {
    pub(crate) id: String,
    pub(crate) when: String,
    pub(crate) points: i32,
    pub(crate) decision: &'static str,
    pub(crate) reason: String,
}

#[derive(Template)]
#[template(path = "ui/policy.html")]
pub(crate) struct PolicyPage {
    pub(crate) chrome: Chrome,
    pub(crate) name: String,
    pub(crate) hash: String,
    pub(crate) source: String,
    pub(crate) review_at: u8,
    pub(crate) freeze_at: u8,
    pub(crate) four_eyes: bool,
    pub(crate) rules: Vec<RuleRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flashes_survive_storage() {
        for flash in [
            Flash::ok("Case claimed."),
            Flash::wait("Waiting: a: b"),
            Flash::error("Not done: x"),
        ] {
            assert_eq!(Flash::decode(&flash.encode()), flash);
        }
        assert_eq!(Flash::decode("odd:text").kind, "ok");
    }
}
