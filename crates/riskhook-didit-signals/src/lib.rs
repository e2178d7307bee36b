//! The Didit mapping: turns one parsed [`DiditEvent`] into the provider-neutral [`Signals`] of
//! [`SCHEMA`](riskhook_core::signals::SCHEMA).
//!
//! This crate sits beside the protocol (`riskhook-didit`) and above the engine
//! (`riskhook-core`), which knows no provider. It owns which Didit field or risk code feeds
//! which signal, how several workflow nodes of one feature are combined, and the provenance path
//! of every value; [`case_payload`] is the same mapping for the `payload` of a policy test case.
//! It decides nothing (that is the policy's job), reads no clock and does no I/O. [`extract`] is
//! total: any event, however malformed, gives some [`Signals`], and the same event always gives
//! the same ones.
//!
//! # What is set, and when
//!
//! - Session events (`status.updated`, `data.updated`) always get `session.body_trusted` and
//!   `session.kind`, and `session.status` when the event carries a status. Other events (user,
//!   business, transaction, Travel Rule, unknown) get no signals at all: the schema describes a
//!   verification session, and they carry none.
//! - When the body is not trusted (only `X-Signature-Simple` verified it), only `session.*` is
//!   set, and only from the top-level fields: that signature does not cover `decision`.
//! - A feature group (`document`, `liveness`, ...) is set only when its decision array is
//!   present and non-empty; otherwise it was not checked and stays absent. Within a checked
//!   group, a value the payload lacks (a score, a country) stays absent, while a boolean risk
//!   flag is always set: `false` means checked and no evidence found.
//! - `duplicates.*` is set when some feature that looks for duplicates ran (document, liveness,
//!   phone, email, IP); `risk.*` whenever there is a decision.
//!
//! # Combining several workflow nodes
//!
//! - `X.status`: the worst item status, in the order Declined > In Review (and any status we
//!   do not know) > Resub Requested = Expired > Not Finished > Approved.
//! - `X.verified` / `X.passed`: every item is Approved (an item without a status is not).
//! - Scores: the lowest liveness and face-match score, the largest IP-to-document distance, the
//!   highest AML match and risk score among the counted hits.
//! - Descriptive values (document type, countries, liveness method): the first item that has
//!   one.
//! - Flags: true when any item's own field says so or any of its warnings carries the risk
//!   code; the codes are listed next to each group below.
//! - Ties go to the earliest item, and items are read in array order, so results and their
//!   paths are deterministic.
//!
//! # Provenance paths
//!
//! Paths are JSON paths into the event as Didit sent it (the flat envelope; in the nested one
//! they are relative to `data`):
//!
//! - a value read from one place points at it: `status`, `decision.face_matches[1].score`;
//! - a true flag points at its first evidence: the field (`decision.ip_analyses[0].is_vpn_or_tor`)
//!   or the warnings of the item that raised the code (`decision.id_verifications[1].warnings`);
//! - a value computed over every item uses `[*]`: `decision.aml_screenings[*].hits` for the AML
//!   counts (or the hit itself, `decision.aml_screenings[0].hits[2].match_score`, for a maximum),
//!   `decision.phone_verifications[*]` for a false flag read from fields and warnings,
//!   `decision.liveness_checks[*].warnings` for a false flag read from warnings only,
//!   `decision.*[*].warnings` for the risk codes and `decision.*[*].matches` for duplicates;
//! - an inferred value points at the field it stands in for (`session_kind` for the default
//!   `user`), and `session.body_trusted`, which comes from the signature check rather than the
//!   body, points at the whole body: `$`.
//!
//! Indexes count the items the payload model kept. It skips array elements that are not
//! objects, so after such an element an index is one less than in the raw JSON.

use std::collections::BTreeSet;

use riskhook_core::signals::{SignalValue, Signals};
use riskhook_didit::payload::{
    AmlDataset, AmlHit, AmlScreening, Decision, DiditEvent, EmailVerification, FaceMatch,
    FeatureStatus, IdVerification, IpAnalysis, LivenessCheck, LogType, Match, PhoneVerification,
    PoaVerification, SessionEvent, Warning,
};

/// Maps a Didit event to signals. `event_id` is our id of the event (for provenance);
/// `body_trusted` says whether the signature that verified it covered the whole body.
pub fn extract(event: &DiditEvent, event_id: &str, body_trusted: bool) -> Signals {
    let mut out = Out {
        signals: Signals::new(),
        event_id,
    };
    let Some(session) = event.session() else {
        return out.signals;
    };
    session_signals(&mut out, session, body_trusted);
    let Some(decision) = session.decision.as_ref().filter(|_| body_trusted) else {
        return out.signals;
    };
    // The document's validity is judged on the day of the event, never on the wall clock, so
    // that replaying an event gives the same signals.
    let event_day = event.timestamp.map(|t| t.div_euclid(SECONDS_PER_DAY));
    document(&mut out, decision, event_day);
    liveness(&mut out, decision);
    face(&mut out, decision);
    aml(&mut out, decision);
    phone(&mut out, decision);
    email(&mut out, decision);
    ip(&mut out, decision);
    poa(&mut out, decision);
    let own_ids = [
        session.session_id.as_deref(),
        decision.session_id.as_deref(),
    ];
    duplicates(&mut out, decision, &own_ids);
    risk(&mut out, decision);
    out.signals
}

/// A policy test case's `payload` file as the engine's cases read it
/// ([`riskhook_core::cases::PayloadMapping`]): the bytes parsed as a Didit event, its signals
/// (under the event id `case`, the body trusted) and its timestamp.
pub fn case_payload(bytes: &[u8]) -> Result<(Signals, Option<i64>), String> {
    let event = DiditEvent::from_slice(bytes).map_err(|e| e.to_string())?;
    Ok((extract(&event, "case", true), event.timestamp))
}

const SECONDS_PER_DAY: i64 = 86_400;

fn session_signals(out: &mut Out<'_>, session: &SessionEvent, body_trusted: bool) {
    // X-Signature-Simple covers the top-level status but nothing inside `decision`.
    let decision = session.decision.as_ref().filter(|_| body_trusted);
    let status = first_some([
        (session.status.as_ref(), "status"),
        (decision.and_then(|d| d.status.as_ref()), "decision.status"),
    ]);
    if let Some((status, path)) = status {
        out.set("session.status", string(status.as_str()), path);
    }
    // Didit adds `session_kind` (and `business_session_id`) to KYB payloads only, so a
    // session event without either is a KYC one.
    let (kind, path) = first_some([
        (non_blank(session.session_kind.as_deref()), "session_kind"),
        (
            decision.and_then(|d| non_blank(d.session_kind.as_deref())),
            "decision.session_kind",
        ),
        (
            session.business_session_id.as_ref().map(|_| "business"),
            "business_session_id",
        ),
    ])
    .unwrap_or(("user", "session_kind"));
    out.set("session.kind", string(kind), path);
    out.set("session.body_trusted", SignalValue::Bool(body_trusted), "$");
}

/// Codes that mean the document's data was altered or disagrees with itself. Capture problems
/// (`MRZ_NOT_DETECTED`, ...) are left out: they say nothing about fraud.
const DOCUMENT_TAMPERING: &[&str] = &[
    "PORTRAIT_MANIPULATION_DETECTED",
    "POSSIBLE_FRAUD",
    "DATA_INCONSISTENT",
    "MRZ_AND_DATA_EXTRACTED_FROM_OCR_NOT_SAME",
];

fn document(out: &mut Out<'_>, decision: &Decision, event_day: Option<i64>) {
    let Some(f) = ran("id_verifications", &decision.id_verifications) else {
        return;
    };
    f.worst_status(out, "document.status");
    f.all_approved(out, "document.verified");
    // A document is valid through its expiration date.
    let expired_by_date = |item: &IdVerification| {
        let expires = item.expiration_date.as_deref().and_then(civil_day)?;
        Some(expires < event_day?)
    };
    f.flag(
        out,
        "document.expired",
        &[("expiration_date", &expired_by_date)],
        &["DOCUMENT_EXPIRED"],
    );
    f.flag(out, "document.tampered", &[], DOCUMENT_TAMPERING);
    f.flag(
        out,
        "document.screen_capture",
        &[],
        &["SCREEN_CAPTURE_DETECTED"],
    );
    f.flag(
        out,
        "document.printed_copy",
        &[],
        &["PRINTED_COPY_DETECTED"],
    );
    f.first(out, "document.age", "age", |i| {
        whole_years(i.age?).map(SignalValue::Int)
    });
    f.first(out, "document.nationality", "nationality", |i| {
        text(i.nationality.as_deref())
    });
    f.first(out, "document.issuing_state", "issuing_state", |i| {
        text(i.issuing_state.as_deref())
    });
    f.first(out, "document.type", "document_type", |i| {
        text(i.document_type.as_deref())
    });
}

fn liveness(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("liveness_checks", &decision.liveness_checks) else {
        return;
    };
    f.worst_status(out, "liveness.status");
    f.all_approved(out, "liveness.passed");
    // Some sources send the method in lower case; policies compare against one spelling.
    f.first(out, "liveness.method", "method", |c| {
        non_blank(c.method.as_deref()).map(|m| string(&m.to_ascii_uppercase()))
    });
    f.extreme(out, "liveness.score", "score", Extreme::Lowest, |c| c.score);
    f.flag(out, "liveness.face_attack", &[], &["LIVENESS_FACE_ATTACK"]);
    f.flag(
        out,
        "liveness.duplicate_face",
        &[],
        &["DUPLICATED_FACE", "POSSIBLE_DUPLICATED_FACE"],
    );
}

fn face(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("face_matches", &decision.face_matches) else {
        return;
    };
    f.worst_status(out, "face.status");
    f.all_approved(out, "face.passed");
    f.extreme(out, "face.match_score", "score", Extreme::Lowest, |m| {
        m.score
    });
}

fn aml(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("aml_screenings", &decision.aml_screenings) else {
        return;
    };
    f.worst_status(out, "aml.status");
    f.flag(
        out,
        "aml.screening_failed",
        &[],
        &["COULD_NOT_PERFORM_AML_SCREENING"],
    );

    let (mut total, mut sanctions, mut pep, mut adverse_media, mut enforcement) = (0, 0, 0, 0, 0);
    let mut pep_level: Option<(i64, String)> = None;
    let mut max_match = Best::new(Extreme::Highest);
    let mut max_risk = Best::new(Extreme::Highest);
    for (i, screening) in f.items.iter().enumerate() {
        for (j, hit) in screening.hits.iter().flatten().enumerate() {
            if !counts(hit) {
                continue;
            }
            let at = |field: &str| format!("decision.aml_screenings[{i}].hits[{j}].{field}");
            total += 1;
            sanctions += i64::from(hit.is_sanctions());
            pep += i64::from(hit.is_pep());
            adverse_media += i64::from(has_dataset(hit, &AmlDataset::AdverseMedia));
            enforcement += i64::from(has_dataset(
                hit,
                &AmlDataset::WarningsAndRegulatoryEnforcement,
            ));
            if let Some(level) = most_exposed_pep_level(hit)
                && pep_level.as_ref().is_none_or(|(best, _)| level < *best)
            {
                pep_level = Some((level, at("datasets")));
            }
            max_match.offer(hit.match_score, || at("match_score"));
            max_risk.offer(hit.risk_score, || at("risk_score"));
        }
    }

    let hits = f.every("hits");
    out.set("aml.total_hits", SignalValue::Int(total), hits.clone());
    out.set(
        "aml.sanctions_hits",
        SignalValue::Int(sanctions),
        hits.clone(),
    );
    out.set("aml.pep_hits", SignalValue::Int(pep), hits.clone());
    out.set(
        "aml.adverse_media_hits",
        SignalValue::Int(adverse_media),
        hits.clone(),
    );
    out.set(
        "aml.enforcement_hits",
        SignalValue::Int(enforcement),
        hits.clone(),
    );
    let (level, path) = pep_level.unwrap_or_else(|| (0, hits.clone()));
    out.set("aml.pep_level", SignalValue::Int(level), path);
    for (name, best) in [
        ("aml.max_match_score", max_match),
        ("aml.max_risk_score", max_risk),
    ] {
        let (score, path) = best.found.unwrap_or_else(|| (0.0, hits.clone()));
        out.set(name, SignalValue::Float(score), path);
    }
}

/// Whether a hit counts against the person. A hit without a `match` verdict counts: missing
/// data must not hide a sanctions hit. An analyst's False Positive never counts.
fn counts(hit: &AmlHit) -> bool {
    hit.is_match != Some(false) && !hit.is_false_positive()
}

fn has_dataset(hit: &AmlHit, dataset: &AmlDataset) -> bool {
    hit.datasets.iter().flatten().any(|d| d == dataset)
}

/// The smallest PEP level among the hit's datasets (1 is the most exposed); a PEP dataset
/// without a level counts as 1, so an unknown exposure is never understated.
fn most_exposed_pep_level(hit: &AmlHit) -> Option<i64> {
    hit.datasets
        .iter()
        .flatten()
        .filter_map(|dataset| match dataset {
            AmlDataset::Pep | AmlDataset::PepLevel1 => Some(1),
            AmlDataset::PepLevel2 => Some(2),
            AmlDataset::PepLevel3 => Some(3),
            AmlDataset::PepLevel4 => Some(4),
            _ => None,
        })
        .min()
}

fn phone(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("phone_verifications", &decision.phone_verifications) else {
        return;
    };
    f.worst_status(out, "phone.status");
    f.all_approved(out, "phone.verified");
    f.flag(
        out,
        "phone.disposable",
        &[("is_disposable", &|p| p.is_disposable)],
        &["DISPOSABLE_NUMBER_DETECTED"],
    );
    let voip_carrier = |p: &PhoneVerification| {
        let line_type = p.carrier.as_ref()?.line_type.as_deref()?;
        Some(line_type.eq_ignore_ascii_case("voip"))
    };
    f.flag(
        out,
        "phone.voip",
        &[
            ("is_virtual", &|p| p.is_virtual),
            ("carrier.type", &voip_carrier),
        ],
        &["VOIP_NUMBER_DETECTED"],
    );
    f.flag(out, "phone.high_risk", &[], &["HIGH_RISK_PHONE_NUMBER"]);
    f.first(out, "phone.country", "country_code", |p| {
        text(p.country_code.as_deref())
    });
}

fn email(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("email_verifications", &decision.email_verifications) else {
        return;
    };
    f.worst_status(out, "email.status");
    f.all_approved(out, "email.verified");
    f.flag(
        out,
        "email.disposable",
        &[("is_disposable", &|e| e.is_disposable)],
        &["DISPOSABLE_EMAIL_DETECTED"],
    );
    let listed_breaches = |e: &EmailVerification| e.breaches.as_ref().map(|b| !b.is_empty());
    f.flag(
        out,
        "email.breached",
        &[
            ("is_breached", &|e| e.is_breached),
            ("breaches", &listed_breaches),
        ],
        &["BREACHED_EMAIL_DETECTED"],
    );
    f.flag(
        out,
        "email.undeliverable",
        &[("is_undeliverable", &|e| e.is_undeliverable)],
        &["UNDELIVERABLE_EMAIL_DETECTED"],
    );
    // Several nodes usually verify the same address, so the largest list is the count, not
    // the sum.
    let mut most: Option<(usize, usize)> = None;
    for (i, item) in f.items.iter().enumerate() {
        if let Some(breaches) = &item.breaches
            && most.is_none_or(|(len, _)| breaches.len() > len)
        {
            most = Some((breaches.len(), i));
        }
    }
    if let Some((len, i)) = most {
        let len = i64::try_from(len).unwrap_or(i64::MAX);
        out.set(
            "email.breach_count",
            SignalValue::Int(len),
            f.at(i, "breaches"),
        );
    }
}

fn ip(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("ip_analyses", &decision.ip_analyses) else {
        return;
    };
    f.worst_status(out, "ip.status");
    f.flag(
        out,
        "ip.vpn_or_tor",
        &[("is_vpn_or_tor", &|a| a.is_vpn_or_tor)],
        &["PRIVATE_NETWORK_DETECTED"],
    );
    f.flag(
        out,
        "ip.data_center",
        &[("is_data_center", &|a| a.is_data_center)],
        &[],
    );
    f.first(out, "ip.country", "ip_country_code", |a| {
        text(a.ip_country_code.as_deref())
    });
    f.flag(
        out,
        "ip.country_mismatch",
        &[],
        &["COUNTRY_FROM_DOCUMENT_DOES_NOT_MATCH_COUNTRY_FROM_IP"],
    );
    let mut farthest = Best::new(Extreme::Highest);
    for (i, item) in f.items.iter().enumerate() {
        farthest.offer(item.ip_to_id_document_km(), || {
            f.at(i, distance_field(item))
        });
    }
    if let Some((km, path)) = farthest.found {
        out.set("ip.distance_from_document_km", SignalValue::Float(km), path);
    }
}

/// Which side reported the IP-to-document distance, for the path: the IP block is read first,
/// as [`IpAnalysis::ip_to_id_document_km`] does.
fn distance_field(item: &IpAnalysis) -> &'static str {
    let on_ip_side = item
        .ip
        .as_ref()
        .and_then(|ip| ip.get("distance_from_id_document"))
        .is_some_and(|d| !d.is_null());
    if on_ip_side {
        "ip.distance_from_id_document"
    } else {
        "id_document.distance_from_ip"
    }
}

fn poa(out: &mut Out<'_>, decision: &Decision) {
    let Some(f) = ran("poa_verifications", &decision.poa_verifications) else {
        return;
    };
    f.worst_status(out, "poa.status");
    f.all_approved(out, "poa.verified");
    f.flag(
        out,
        "poa.name_mismatch",
        &[],
        &[
            "NAME_MISMATCH_WITH_PROVIDED",
            "NAME_MISMATCH_ID_VERIFICATION",
        ],
    );
    f.flag(
        out,
        "poa.address_mismatch",
        &[],
        &[
            "ADDRESS_MISMATCH_WITH_PROVIDED",
            "POA_COUNTRY_MISMATCH_WITH_PROVIDED",
        ],
    );
    let tampered = |p: &PoaVerification| p.document_metadata.as_ref()?.is_tampered;
    let overlay = |p: &PoaVerification| {
        let overlay = p
            .document_metadata
            .as_ref()?
            .overlay_manipulation
            .as_ref()?;
        overlay.get("detected")?.as_bool()
    };
    f.flag(
        out,
        "poa.manipulated",
        &[
            ("document_metadata.is_tampered", &tampered),
            ("document_metadata.overlay_manipulation.detected", &overlay),
        ],
        &[
            "SUSPECTED_DOCUMENT_MANIPULATION",
            "DOCUMENT_METADATA_MISMATCH",
        ],
    );
    // `EXPIRED_DOCUMENT` is the older name of the same risk.
    f.flag(
        out,
        "poa.expired",
        &[],
        &["POA_DOCUMENT_EXPIRED", "EXPIRED_DOCUMENT"],
    );
}

/// One `matches[]` list, with the warnings of the item it belongs to.
struct MatchList<'a> {
    key: &'static str,
    index: usize,
    matches: &'a [Match],
    warnings: &'a [Warning],
}

/// The features that look for other sessions sharing the person's document, face, phone,
/// email, IP or device: one entry per item, in decision order.
fn match_lists(decision: &Decision) -> Vec<MatchList<'_>> {
    fn push<'a, T: Item>(
        lists: &mut Vec<MatchList<'a>>,
        key: &'static str,
        items: &'a Option<Vec<T>>,
        matches: impl Fn(&'a T) -> &'a Option<Vec<Match>>,
    ) {
        for (index, item) in items.iter().flatten().enumerate() {
            lists.push(MatchList {
                key,
                index,
                matches: matches(item).as_deref().unwrap_or_default(),
                warnings: item.warnings(),
            });
        }
    }
    let mut lists = Vec::new();
    push(
        &mut lists,
        "id_verifications",
        &decision.id_verifications,
        |i| &i.matches,
    );
    push(
        &mut lists,
        "liveness_checks",
        &decision.liveness_checks,
        |i| &i.matches,
    );
    push(
        &mut lists,
        "phone_verifications",
        &decision.phone_verifications,
        |i| &i.matches,
    );
    push(
        &mut lists,
        "email_verifications",
        &decision.email_verifications,
        |i| &i.matches,
    );
    push(&mut lists, "ip_analyses", &decision.ip_analyses, |i| {
        &i.matches
    });
    lists
}

fn duplicates(out: &mut Out<'_>, decision: &Decision, own_ids: &[Option<&str>]) {
    let lists = match_lists(decision);
    if lists.is_empty() {
        return;
    }
    let others: BTreeSet<&str> = lists
        .iter()
        .flat_map(|list| list.matches)
        .filter_map(|m| non_blank(m.session_id.as_deref()))
        .filter(|id| !own_ids.contains(&Some(*id)))
        .collect();
    let count = i64::try_from(others.len()).unwrap_or(i64::MAX);
    out.set(
        "duplicates.count",
        SignalValue::Int(count),
        "decision.*[*].matches",
    );

    let blocklisted = lists.iter().find_map(|list| {
        let at = |field: String| format!("decision.{}[{}].{field}", list.key, list.index);
        if let Some(j) = list
            .matches
            .iter()
            .position(|m| m.is_blocklisted == Some(true))
        {
            return Some(at(format!("matches[{j}].is_blocklisted")));
        }
        list.warnings
            .iter()
            .any(blocklist_warning)
            .then(|| at("warnings".to_owned()))
    });
    // Features without matches[] (NFC, face match, ...) may still raise a blocklist code.
    let blocklisted = blocklisted.or_else(|| {
        decision
            .warnings()
            .into_iter()
            .any(blocklist_warning)
            .then(|| "decision.*[*].warnings".to_owned())
    });
    match blocklisted {
        Some(path) => out.set("duplicates.blocklisted", SignalValue::Bool(true), path),
        None => out.set(
            "duplicates.blocklisted",
            SignalValue::Bool(false),
            "decision.*[*]",
        ),
    }
}

/// `ID_DOCUMENT_IN_BLOCKLIST`, `FACE_IN_BLOCKLIST`, `PHONE_NUMBER_IN_BLOCKLIST`, ... and the
/// softer `POSSIBLE_FACE_IN_BLOCKLIST`: a possible blocklist hit is still worth a look.
fn blocklist_warning(warning: &Warning) -> bool {
    warning
        .risk
        .as_deref()
        .is_some_and(|risk| risk.ends_with("_IN_BLOCKLIST"))
}

fn risk(out: &mut Out<'_>, decision: &Decision) {
    let warnings = decision.warnings();
    let codes = |keep: &dyn Fn(Option<&LogType>) -> bool| {
        let codes: BTreeSet<&str> = warnings
            .iter()
            .filter(|w| keep(w.log_type.as_ref()))
            .filter_map(|w| non_blank(w.risk.as_deref()))
            .collect();
        SignalValue::StringList(codes.into_iter().map(str::to_owned).collect())
    };
    let path = "decision.*[*].warnings";
    out.set("risk.codes", codes(&|_| true), path);
    out.set(
        "risk.decline_codes",
        codes(&|t| t == Some(&LogType::Error)),
        path,
    );
    out.set(
        "risk.review_codes",
        codes(&|t| t == Some(&LogType::Warning)),
        path,
    );
}

/// The signals being built, and the event they come from.
struct Out<'a> {
    signals: Signals,
    event_id: &'a str,
}

impl Out<'_> {
    fn set(&mut self, name: &str, value: SignalValue, path: impl Into<String>) {
        self.signals.set(name, value, self.event_id, path);
    }
}

/// What every feature item has: a status and warnings.
trait Item {
    fn status(&self) -> Option<&FeatureStatus>;
    fn warnings(&self) -> &[Warning];
}

macro_rules! items {
    ($($item:ty),* $(,)?) => {$(
        impl Item for $item {
            fn status(&self) -> Option<&FeatureStatus> {
                self.status.as_ref()
            }
            fn warnings(&self) -> &[Warning] {
                self.warnings.as_deref().unwrap_or_default()
            }
        }
    )*};
}

items!(
    IdVerification,
    LivenessCheck,
    FaceMatch,
    AmlScreening,
    PhoneVerification,
    EmailVerification,
    IpAnalysis,
    PoaVerification,
);

/// A decision array that ran: present and non-empty. `key` is its JSON key, for paths.
struct Feature<'a, T> {
    key: &'static str,
    items: &'a [T],
}

fn ran<'a, T>(key: &'static str, items: &'a Option<Vec<T>>) -> Option<Feature<'a, T>> {
    let items = items.as_deref().filter(|items| !items.is_empty())?;
    Some(Feature { key, items })
}

/// A boolean field of an item that can evidence a flag, with its path relative to the item.
/// `None` (not reported) is no evidence either way.
type Evidence<'f, T> = (&'static str, &'f dyn Fn(&T) -> Option<bool>);

impl<T: Item> Feature<'_, T> {
    /// `decision.<key>[<index>].<field>`.
    fn at(&self, index: usize, field: &str) -> String {
        format!("decision.{}[{index}].{field}", self.key)
    }

    /// `decision.<key>[*].<field>`, or `decision.<key>[*]` for whole items.
    fn every(&self, field: &str) -> String {
        if field.is_empty() {
            format!("decision.{}[*]", self.key)
        } else {
            format!("decision.{}[*].{field}", self.key)
        }
    }

    fn worst_status(&self, out: &mut Out<'_>, name: &str) {
        let mut worst: Option<(usize, &FeatureStatus)> = None;
        for (i, item) in self.items.iter().enumerate() {
            if let Some(status) = item.status()
                && worst.is_none_or(|(_, w)| severity(status) > severity(w))
            {
                worst = Some((i, status));
            }
        }
        if let Some((i, status)) = worst {
            out.set(name, string(status.as_str()), self.at(i, "status"));
        }
    }

    fn all_approved(&self, out: &mut Out<'_>, name: &str) {
        let approved = self
            .items
            .iter()
            .all(|item| item.status() == Some(&FeatureStatus::Approved));
        out.set(name, SignalValue::Bool(approved), self.every("status"));
    }

    /// A risk flag: true at the first item where one of `fields` is true or a warning carries
    /// one of `codes`; false, pointing at every item, when none does.
    fn flag(&self, out: &mut Out<'_>, name: &str, fields: &[Evidence<'_, T>], codes: &[&str]) {
        for (i, item) in self.items.iter().enumerate() {
            if let Some((field, _)) = fields.iter().find(|(_, read)| read(item) == Some(true)) {
                out.set(name, SignalValue::Bool(true), self.at(i, field));
                return;
            }
            let raised = item
                .warnings()
                .iter()
                .any(|w| w.risk.as_deref().is_some_and(|risk| codes.contains(&risk)));
            if raised {
                out.set(name, SignalValue::Bool(true), self.at(i, "warnings"));
                return;
            }
        }
        let path = if fields.is_empty() {
            self.every("warnings")
        } else {
            self.every("")
        };
        out.set(name, SignalValue::Bool(false), path);
    }

    /// The value of the first item that has one.
    fn first<'a>(
        &'a self,
        out: &mut Out<'_>,
        name: &str,
        field: &str,
        read: impl Fn(&'a T) -> Option<SignalValue>,
    ) {
        if let Some((i, value)) = self
            .items
            .iter()
            .enumerate()
            .find_map(|(i, item)| Some((i, read(item)?)))
        {
            out.set(name, value, self.at(i, field));
        }
    }

    /// The lowest or highest score across items.
    fn extreme(
        &self,
        out: &mut Out<'_>,
        name: &str,
        field: &str,
        extreme: Extreme,
        read: impl Fn(&T) -> Option<f64>,
    ) {
        let mut best = Best::new(extreme);
        for (i, item) in self.items.iter().enumerate() {
            best.offer(read(item), || self.at(i, field));
        }
        if let Some((score, path)) = best.found {
            out.set(name, SignalValue::Float(score), path);
        }
    }
}

/// How bad a feature status is. Unknown values rank with In Review: a status we cannot read
/// needs a human, and must not pass as Approved.
fn severity(status: &FeatureStatus) -> u8 {
    match status {
        FeatureStatus::Approved => 0,
        FeatureStatus::NotFinished => 1,
        FeatureStatus::ResubRequested | FeatureStatus::Expired => 2,
        FeatureStatus::InReview | FeatureStatus::Other(_) => 3,
        FeatureStatus::Declined => 4,
    }
}

#[derive(Clone, Copy)]
enum Extreme {
    Lowest,
    Highest,
}

/// The most extreme score seen so far and where it came from. Ties keep the earlier one.
struct Best {
    extreme: Extreme,
    found: Option<(f64, String)>,
}

impl Best {
    fn new(extreme: Extreme) -> Self {
        Self {
            extreme,
            found: None,
        }
    }

    fn offer(&mut self, score: Option<f64>, path: impl FnOnce() -> String) {
        let Some(score) = score.filter(|s| s.is_finite()) else {
            return;
        };
        let better = self
            .found
            .as_ref()
            .is_none_or(|(best, _)| match self.extreme {
                Extreme::Lowest => score < *best,
                Extreme::Highest => score > *best,
            });
        if better {
            self.found = Some((score, path()));
        }
    }
}

/// The first candidate that is present, with its path.
fn first_some<V>(
    candidates: impl IntoIterator<Item = (Option<V>, &'static str)>,
) -> Option<(V, &'static str)> {
    candidates
        .into_iter()
        .find_map(|(value, path)| Some((value?, path)))
}

fn string(s: &str) -> SignalValue {
    SignalValue::String(s.to_owned())
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn text(s: Option<&str>) -> Option<SignalValue> {
    non_blank(s).map(string)
}

/// Didit computes the age and may send it as a float; anything outside a human lifespan is a
/// misread, not an age.
fn whole_years(age: f64) -> Option<i64> {
    (0.0..=150.0).contains(&age).then(|| age.trunc() as i64)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date (a time part after `T` or a space is ignored).
fn civil_day(date: &str) -> Option<i64> {
    let date = date.trim();
    let (ymd, rest) = (date.get(..10)?, date.get(10..)?);
    if !(rest.is_empty() || rest.starts_with(['T', ' '])) {
        return None;
    }
    let bytes = ymd.as_bytes();
    let digits_at = |range: std::ops::Range<usize>| {
        let part = ymd.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then_some(part)
    };
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let year: i64 = digits_at(0..4)?.parse().ok()?;
    let month: i64 = digits_at(5..7)?.parse().ok()?;
    let day: i64 = digits_at(8..10)?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(riskhook_didit::payload::days_from_civil(year, month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(civil_day("1970-01-01"), Some(0));
        assert_eq!(civil_day("2000-03-01"), Some(11_017));
        assert_eq!(civil_day("1600-02-29"), Some(-135_081));
        assert_eq!(
            civil_day("2026-05-29"),
            Some(1_780_045_046 / SECONDS_PER_DAY)
        );
        assert_eq!(civil_day("2026-05-29T23:59:59Z"), civil_day("2026-05-29"));
    }

    #[test]
    fn malformed_dates_are_not_read() {
        for bad in [
            "",
            "2026",
            "2026-5-29",
            "29-05-2026",
            "2026-13-01",
            "2026-00-10",
            "2026-05-32",
            "2026-05-290",
            "+026-05-29",
            "2026/05/29",
            "20é6-05-29",
            "2026-05-2é",
        ] {
            assert_eq!(civil_day(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unknown_statuses_rank_with_in_review() {
        let order = [
            FeatureStatus::Approved,
            FeatureStatus::NotFinished,
            FeatureStatus::Expired,
            FeatureStatus::InReview,
            FeatureStatus::Declined,
        ];
        assert!(order.windows(2).all(|w| severity(&w[0]) < severity(&w[1])));
        assert_eq!(
            severity(&FeatureStatus::ResubRequested),
            severity(&FeatureStatus::Expired)
        );
        assert_eq!(
            severity(&FeatureStatus::Other("Pending Something".to_owned())),
            severity(&FeatureStatus::InReview)
        );
    }

    #[test]
    fn ages_outside_a_lifespan_are_misreads() {
        assert_eq!(whole_years(38.9), Some(38));
        assert_eq!(whole_years(-1.0), None);
        assert_eq!(whole_years(f64::NAN), None);
        assert_eq!(whole_years(1e300), None);
    }
}
