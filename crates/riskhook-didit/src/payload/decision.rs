//! The v3 `decision` object (§5.2 of the Didit notes): its top-level fields, the pieces shared
//! by every feature array (warnings, duplicate matches, feature status) and the legacy v2/v1
//! keys. The per-feature item types live in `features` and `aml`.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::aml::AmlScreening;
use super::features::{
    DatabaseValidation, DocumentAiDocument, DocumentVerification, EmailVerification, FaceMatch,
    IdVerification, IpAnalysis, KeyPeopleCheck, LivenessCheck, NfcVerification, PhoneVerification,
    PoaVerification, QuestionnaireResponse, RegistryCheck,
};
use super::lenient::{
    FromMap, Id, Lenient, from_object, lenient, lenient_struct, open_enum, take_field,
};
use super::session::SessionStatus;

/// The decision Didit attaches to session events: the same shape as
/// `GET /v3/session/{id}/decision/`. Every feature array is `None` until that feature has run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Decision {
    /// The session this decision belongs to.
    #[serde(deserialize_with = "lenient")]
    pub session_id: Option<Id>,
    /// `user` (KYC) or `business` (KYB).
    #[serde(deserialize_with = "lenient")]
    pub session_kind: Option<String>,
    /// Didit's per-application running number.
    #[serde(deserialize_with = "lenient")]
    pub session_number: Option<i64>,
    /// Hosted verification URL.
    #[serde(deserialize_with = "lenient")]
    pub session_url: Option<String>,
    /// Overall session status.
    #[serde(deserialize_with = "lenient")]
    pub status: Option<SessionStatus>,
    /// Workflow the session ran.
    #[serde(deserialize_with = "lenient")]
    pub workflow_id: Option<String>,
    /// Display names of the features the workflow ran (`ID_VERIFICATION`, `AML`, ...).
    #[serde(deserialize_with = "lenient")]
    pub features: Option<Vec<String>>,
    /// The integrator's own identifier for the user, as set on the session.
    #[serde(deserialize_with = "lenient")]
    pub vendor_data: Option<Id>,
    /// Integrator metadata set on the session.
    #[serde(deserialize_with = "lenient")]
    pub metadata: Option<Value>,
    /// Redirect URL set on the session.
    #[serde(deserialize_with = "lenient")]
    pub callback: Option<String>,
    /// Details the integrator expected (name, date of birth, country...), to compare against.
    #[serde(deserialize_with = "lenient")]
    pub expected_details: Option<Value>,
    /// Email and phone supplied when the session was created.
    #[serde(deserialize_with = "lenient")]
    pub contact_details: Option<Value>,
    /// Manual review history.
    #[serde(deserialize_with = "lenient")]
    pub reviews: Option<Vec<Review>>,
    /// ISO-8601 creation time (unlike the envelope's integer `created_at`).
    #[serde(deserialize_with = "lenient")]
    pub created_at: Option<String>,
    /// ISO-8601 expiry time.
    #[serde(deserialize_with = "lenient")]
    pub expires_at: Option<String>,
    /// `live` or `sandbox`.
    #[serde(deserialize_with = "lenient")]
    pub environment: Option<String>,

    /// Identity document checks.
    #[serde(deserialize_with = "lenient")]
    pub id_verifications: Option<Vec<IdVerification>>,
    /// Chip (NFC) reads of the identity document.
    #[serde(deserialize_with = "lenient")]
    pub nfc_verifications: Option<Vec<NfcVerification>>,
    /// Liveness checks.
    #[serde(deserialize_with = "lenient")]
    pub liveness_checks: Option<Vec<LivenessCheck>>,
    /// Selfie-to-document face comparisons.
    #[serde(deserialize_with = "lenient")]
    pub face_matches: Option<Vec<FaceMatch>>,
    /// Phone number verifications.
    #[serde(deserialize_with = "lenient")]
    pub phone_verifications: Option<Vec<PhoneVerification>>,
    /// Email verifications.
    #[serde(deserialize_with = "lenient")]
    pub email_verifications: Option<Vec<EmailVerification>>,
    /// Proof-of-address document checks.
    #[serde(deserialize_with = "lenient")]
    pub poa_verifications: Option<Vec<PoaVerification>>,
    /// Documents processed by Document AI.
    #[serde(deserialize_with = "lenient")]
    pub document_ai_documents: Option<Vec<DocumentAiDocument>>,
    /// Questionnaire answers.
    #[serde(deserialize_with = "lenient")]
    pub questionnaire_responses: Option<Vec<QuestionnaireResponse>>,
    /// Sanctions, PEP and adverse-media screenings.
    #[serde(deserialize_with = "lenient")]
    pub aml_screenings: Option<Vec<AmlScreening>>,
    /// Device and IP analyses.
    #[serde(deserialize_with = "lenient")]
    pub ip_analyses: Option<Vec<IpAnalysis>>,
    /// Government database validations.
    #[serde(deserialize_with = "lenient")]
    pub database_validations: Option<Vec<DatabaseValidation>>,
    /// KYB: company registry lookups.
    #[serde(deserialize_with = "lenient")]
    pub registry_checks: Option<Vec<RegistryCheck>>,
    /// KYB: officers and beneficial owners.
    #[serde(deserialize_with = "lenient")]
    pub key_people_checks: Option<Vec<KeyPeopleCheck>>,
    /// KYB: corporate document checks.
    #[serde(deserialize_with = "lenient")]
    pub document_verifications: Option<Vec<DocumentVerification>>,

    /// Singular feature keys sent to `v2`/`v1` destinations, kept unparsed.
    #[serde(flatten)]
    pub legacy: LegacyDecision,
    /// Every other field, exactly as received.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Lenient for Decision {
    fn from_json(value: Value) -> Option<Self> {
        from_object(value)
    }
}

/// Every field the struct has, each read from its own name (a missing or unknown one does not
/// compile), as serde's derive reads them: the named fields first, then the legacy keys, and
/// what is left is `extra`.
impl FromMap for Decision {
    fn from_map(mut map: Map<String, Value>) -> Self {
        macro_rules! named {
            ($($field:ident),* $(,)?) => {
                Decision {
                    $($field: take_field(&mut map, stringify!($field)),)*
                    legacy: LegacyDecision::default(),
                    extra: Map::new(),
                }
            };
        }
        let mut decision = named!(
            session_id,
            session_kind,
            session_number,
            session_url,
            status,
            workflow_id,
            features,
            vendor_data,
            metadata,
            callback,
            expected_details,
            contact_details,
            reviews,
            created_at,
            expires_at,
            environment,
            id_verifications,
            nfc_verifications,
            liveness_checks,
            face_matches,
            phone_verifications,
            email_verifications,
            poa_verifications,
            document_ai_documents,
            questionnaire_responses,
            aml_screenings,
            ip_analyses,
            database_validations,
            registry_checks,
            key_people_checks,
            document_verifications,
        );
        decision.legacy = LegacyDecision::take_from(&mut map);
        decision.extra = map;
        decision
    }
}

impl Decision {
    /// Every warning of every feature item, in feature order. Risk codes are what scoring
    /// mostly keys on, and they are spread over fifteen arrays.
    pub fn warnings(&self) -> Vec<&Warning> {
        let mut all = Vec::new();
        collect(&mut all, &self.id_verifications, |i| &i.warnings);
        collect(&mut all, &self.nfc_verifications, |i| &i.warnings);
        collect(&mut all, &self.liveness_checks, |i| &i.warnings);
        collect(&mut all, &self.face_matches, |i| &i.warnings);
        collect(&mut all, &self.phone_verifications, |i| &i.warnings);
        collect(&mut all, &self.email_verifications, |i| &i.warnings);
        collect(&mut all, &self.poa_verifications, |i| &i.warnings);
        collect(&mut all, &self.document_ai_documents, |i| &i.warnings);
        collect(&mut all, &self.questionnaire_responses, |i| &i.warnings);
        collect(&mut all, &self.aml_screenings, |i| &i.warnings);
        collect(&mut all, &self.ip_analyses, |i| &i.warnings);
        collect(&mut all, &self.database_validations, |i| &i.warnings);
        collect(&mut all, &self.registry_checks, |i| &i.warnings);
        collect(&mut all, &self.key_people_checks, |i| &i.warnings);
        collect(&mut all, &self.document_verifications, |i| &i.warnings);
        all
    }

    /// Whether no v3 feature array is present but some legacy singular key is: the destination
    /// is probably configured for an older `webhook_version`.
    pub fn is_legacy(&self) -> bool {
        let v3_present = self.id_verifications.is_some()
            || self.nfc_verifications.is_some()
            || self.liveness_checks.is_some()
            || self.face_matches.is_some()
            || self.phone_verifications.is_some()
            || self.email_verifications.is_some()
            || self.poa_verifications.is_some()
            || self.aml_screenings.is_some()
            || self.ip_analyses.is_some()
            || self.database_validations.is_some();
        !v3_present && !self.legacy.is_empty()
    }
}

fn collect<'a, T>(
    out: &mut Vec<&'a Warning>,
    items: &'a Option<Vec<T>>,
    warnings: impl Fn(&'a T) -> &'a Option<Vec<Warning>>,
) {
    for item in items.iter().flatten() {
        out.extend(warnings(item).iter().flatten());
    }
}

/// The singular decision keys of `v2` destinations (and `kyc` from `v1`). They are kept as raw
/// JSON: riskhook expects `v3` and only needs to notice and keep the older shape.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct LegacyDecision {
    /// v2 `id_verification`.
    #[serde(deserialize_with = "lenient")]
    pub id_verification: Option<Value>,
    /// v2 `nfc`.
    #[serde(deserialize_with = "lenient")]
    pub nfc: Option<Value>,
    /// v2 `liveness`.
    #[serde(deserialize_with = "lenient")]
    pub liveness: Option<Value>,
    /// v2 `face_match`.
    #[serde(deserialize_with = "lenient")]
    pub face_match: Option<Value>,
    /// v2 `phone`.
    #[serde(deserialize_with = "lenient")]
    pub phone: Option<Value>,
    /// v2 `email`.
    #[serde(deserialize_with = "lenient")]
    pub email: Option<Value>,
    /// v2 `poa`.
    #[serde(deserialize_with = "lenient")]
    pub poa: Option<Value>,
    /// v2 `aml`.
    #[serde(deserialize_with = "lenient")]
    pub aml: Option<Value>,
    /// v2 `ip_analysis` (presumed by analogy; not confirmed by Didit).
    #[serde(deserialize_with = "lenient")]
    pub ip_analysis: Option<Value>,
    /// v2 `database_validation` (presumed by analogy; not confirmed by Didit).
    #[serde(deserialize_with = "lenient")]
    pub database_validation: Option<Value>,
    /// v1 `kyc`.
    #[serde(deserialize_with = "lenient")]
    pub kyc: Option<Value>,
}

impl LegacyDecision {
    /// Moves the legacy keys out of a decision's map, leaving the rest.
    fn take_from(map: &mut Map<String, Value>) -> Self {
        macro_rules! named {
            ($($field:ident),* $(,)?) => {
                LegacyDecision { $($field: take_field(map, stringify!($field)),)* }
            };
        }
        named!(
            id_verification,
            nfc,
            liveness,
            face_match,
            phone,
            email,
            poa,
            aml,
            ip_analysis,
            database_validation,
            kyc,
        )
    }

    /// Whether none of the legacy keys was present (or all were `null`).
    pub fn is_empty(&self) -> bool {
        [
            &self.id_verification,
            &self.nfc,
            &self.liveness,
            &self.face_match,
            &self.phone,
            &self.email,
            &self.poa,
            &self.aml,
            &self.ip_analysis,
            &self.database_validation,
            &self.kyc,
        ]
        .iter()
        .all(|v| v.is_none())
    }
}

open_enum! {
    /// Status of one feature item (`id_verifications[].status`, ...).
    pub enum FeatureStatus {
        /// The user has not finished this step.
        NotFinished => "Not Finished",
        /// Passed.
        Approved => "Approved",
        /// Failed.
        Declined => "Declined",
        /// Needs a human.
        InReview => "In Review",
        /// The step must be redone.
        ResubRequested => "Resub Requested",
        /// Used by id, phone and email verifications instead of `Resub Requested`.
        Expired => "Expired",
    }
}

open_enum! {
    /// Severity of a [`Warning`], set by the workflow's configured action for that risk.
    pub enum LogType {
        /// Configured to decline.
        Error => "error",
        /// Configured to send to review.
        Warning => "warning",
        /// Informational only.
        Information => "information",
    }
}

lenient_struct! {
    /// One entry of any feature's `warnings[]`.
    pub struct Warning {
        /// Feature code: `ID_VERIFICATION`, `LIVENESS`, `LOCATION` (IP analysis), `AML`, ...
        pub feature: Option<String>,
        /// Risk code, e.g. `POSSIBLE_DUPLICATED_USER`. An open set: new codes keep appearing.
        pub risk: Option<String>,
        /// Risk-specific details, e.g. `duplicated_session_id`.
        pub additional_data: Option<Value>,
        /// How the workflow treats this risk.
        pub log_type: Option<LogType>,
        /// One-line description.
        pub short_description: Option<String>,
        /// Full description.
        pub long_description: Option<String>,
        /// The workflow node that raised it.
        pub node_id: Option<String>,
    }
}

lenient_struct! {
    /// A previous session (or list entry) that shares something with this one: a document,
    /// face, phone, email, IP or device. Used by several feature arrays; each fills the subset
    /// of fields that applies to it.
    pub struct Match {
        /// The matching session, if it came from a session.
        pub session_id: Option<Id>,
        /// Its running number.
        pub session_number: Option<i64>,
        /// Its `vendor_data`: another account of ours with the same attribute.
        pub vendor_data: Option<Id>,
        /// When that session was verified.
        pub verification_date: Option<String>,
        /// Its session status.
        pub status: Option<SessionStatus>,
        /// Whether the matched item is on a blocklist.
        pub is_blocklisted: Option<bool>,
        /// Whether the matched item is on an allowlist.
        pub is_allowlisted: Option<bool>,
        /// Which Didit product produced the matched record.
        pub api_service: Option<String>,
        /// `session`, `imported`, `list_entry`, ...
        pub source: Option<String>,
        /// Liveness face matches: similarity 0-100.
        pub similarity_percentage: Option<f64>,
        /// IP matches: `ip_address` or `device_fingerprint`.
        pub match_type: Option<String>,
        /// IP matches: `ip_address`, `persistent_id`, `legacy_fp`, `recovered_high`.
        pub match_source: Option<String>,
        /// IP matches: the shared value.
        pub matched_value: Option<String>,
        /// IP matches: match confidence.
        pub confidence: Option<f64>,
        /// IP matches: `deterministic`, `probabilistic`, `co_occurrence`.
        pub match_mode: Option<String>,
        /// Phone matches: the shared number.
        pub phone_number: Option<String>,
        /// Email matches: the shared address.
        pub email: Option<String>,
        /// Name and document of the matched user.
        pub user_details: Option<Value>,
        /// IP matches: location of the matched session (`is_vpn_or_tor`, ...).
        pub location_info: Option<Value>,
        /// IP matches: device of the matched session.
        pub device_info: Option<Value>,
    }
}

lenient_struct! {
    /// One manual review action.
    pub struct Review {
        /// Reviewer email, `"API Client"` or `"Unknown"`.
        pub user: Option<String>,
        /// The status the reviewer set.
        pub new_status: Option<SessionStatus>,
        /// Reviewer comment.
        pub comment: Option<String>,
        /// ISO-8601 time of the review.
        pub created_at: Option<String>,
    }
}
