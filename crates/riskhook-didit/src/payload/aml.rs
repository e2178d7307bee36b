//! AML screening results: the `aml_screenings[]` items, their hits and the hit enums
//! (datasets, review status). Separate from `features` because a hit is the richest and most
//! risk-relevant object Didit sends.

use serde_json::Value;

use super::decision::{FeatureStatus, Warning};
use super::lenient::{lenient_struct, open_enum};

lenient_struct! {
    /// One `aml_screenings[]` item.
    pub struct AmlScreening {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Number of hits returned.
        pub total_hits: Option<i64>,
        /// `person` or `company`.
        pub entity_type: Option<String>,
        /// Highest hit risk score, 0-100; compared against the workflow's thresholds.
        pub score: Option<f64>,
        /// The data that was screened (name, nationality, date of birth...).
        pub screened_data: Option<Value>,
        /// Whether periodic re-screening is on.
        pub is_ongoing_monitoring_enabled: Option<bool>,
        /// The hits.
        pub hits: Option<Vec<AmlHit>>,
        /// Risks raised (`POSSIBLE_MATCH_FOUND`, `COULD_NOT_PERFORM_AML_SCREENING`).
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// One screening hit: a listed entity that resembles the screened person or company.
    pub struct AmlHit {
        /// Provider id of the listed entity.
        pub id: Option<String>,
        /// Provider URL.
        pub url: Option<String>,
        /// Display name of the listed entity.
        pub caption: Option<String>,
        /// Whether Didit considers it the same entity (`match` on the wire).
        pub is_match: Option<bool> = "match",
        /// Identity confidence 0-100; hits below the workflow's threshold (default 93) are
        /// treated as false positives.
        pub match_score: Option<f64>,
        /// Risk of the listed entity, 0-100.
        pub risk_score: Option<f64>,
        /// Deprecated 0-1 similarity; prefer `match_score`.
        pub score: Option<f64>,
        /// Whether the entity is itself a sanctions target.
        pub target: Option<bool>,
        /// Lists the entity appears on.
        pub datasets: Option<Vec<AmlDataset>>,
        /// Analyst verdict on this hit.
        pub review_status: Option<AmlReviewStatus>,
        /// Relative or close associate name, for RCA hits.
        pub rca_name: Option<String>,
        /// First seen on a list.
        pub first_seen: Option<String>,
        /// Last seen on a list.
        pub last_seen: Option<String>,
        /// Entity attributes with camelCase keys (`birthDate`, `position`...).
        pub properties: Option<Value>,
        /// Risk by crime, country and category.
        pub risk_view: Option<Value>,
        /// How `match_score` was built (name, date of birth, country, document number).
        pub score_breakdown: Option<Value>,
        /// Sanctions list entries.
        pub sanction_matches: Option<Vec<Value>>,
        /// PEP list entries.
        pub pep_matches: Option<Vec<Value>>,
        /// Warning and regulatory-enforcement list entries.
        pub warning_matches: Option<Vec<Value>>,
        /// Adverse-media articles.
        pub adverse_media_matches: Option<Vec<Value>>,
        /// Adverse-media summary.
        pub adverse_media_details: Option<Value>,
        /// Related entities.
        pub linked_entities: Option<Vec<Value>>,
    }
}

impl AmlHit {
    /// Whether an analyst has dismissed this hit.
    pub fn is_false_positive(&self) -> bool {
        self.review_status == Some(AmlReviewStatus::FalsePositive)
    }

    /// Whether any of the hit's datasets is a sanctions list.
    pub fn is_sanctions(&self) -> bool {
        self.datasets
            .iter()
            .flatten()
            .any(|d| *d == AmlDataset::Sanctions)
    }

    /// Whether any of the hit's datasets is a PEP list, at any level.
    pub fn is_pep(&self) -> bool {
        self.datasets.iter().flatten().any(AmlDataset::is_pep)
    }
}

open_enum! {
    /// A list family an AML hit comes from.
    pub enum AmlDataset {
        /// Politically exposed person, level not given.
        Pep => "PEP",
        /// PEP level 1 (heads of state, ministers...).
        PepLevel1 => "PEP Level 1",
        /// PEP level 2.
        PepLevel2 => "PEP Level 2",
        /// PEP level 3.
        PepLevel3 => "PEP Level 3",
        /// PEP level 4.
        PepLevel4 => "PEP Level 4",
        /// Sanctions lists.
        Sanctions => "Sanctions",
        /// Adverse media.
        AdverseMedia => "Adverse Media",
        /// Warnings and regulatory enforcement.
        WarningsAndRegulatoryEnforcement => "Warnings and Regulatory Enforcement",
        /// Fitness and probity.
        FitnessAndProbity => "Fitness and Probity",
        /// Special interest person.
        Sip => "SIP",
        /// Special interest entity.
        Sie => "SIE",
        /// Insolvency registers.
        Insolvency => "Insolvency",
    }
}

impl AmlDataset {
    /// Whether this is a PEP dataset of any level.
    pub fn is_pep(&self) -> bool {
        matches!(
            self,
            Self::Pep | Self::PepLevel1 | Self::PepLevel2 | Self::PepLevel3 | Self::PepLevel4
        )
    }
}

open_enum! {
    /// Analyst verdict on an AML hit.
    pub enum AmlReviewStatus {
        /// Not looked at yet.
        Unreviewed => "Unreviewed",
        /// The same entity.
        ConfirmedMatch => "Confirmed Match",
        /// A different entity.
        FalsePositive => "False Positive",
        /// Could not be decided.
        Inconclusive => "Inconclusive",
    }
}
