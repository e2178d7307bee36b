//! Item types of the decision's feature arrays, except AML (in `aml`): what each feature
//! reports that risk scoring can use. Everything else an item carries (image URLs, raw
//! geocoder output, lifecycle logs...) stays in its `extra` map.

use serde_json::Value;

use super::decision::{FeatureStatus, Match, Warning};
use super::lenient::{Lenient, lenient_struct};

lenient_struct! {
    /// One `id_verifications[]` item: an identity document read by OCR/MRZ/barcode.
    pub struct IdVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// `document`, `id_lookup` or `wallet`.
        pub verification_method: Option<String>,
        /// Human-readable type, e.g. `"Identity Card"`, `"Passport"`.
        pub document_type: Option<String>,
        /// e.g. `ID_CARD_GENERIC`.
        pub document_subtype: Option<String>,
        /// Document number (numbers are accepted and turned into text).
        pub document_number: Option<String>,
        /// National personal number, where the document has one.
        pub personal_number: Option<String>,
        /// `YYYY-MM-DD`.
        pub date_of_birth: Option<String>,
        /// Age in years, computed by Didit. A float is accepted, hence `f64`.
        pub age: Option<f64>,
        /// `YYYY-MM-DD`.
        pub expiration_date: Option<String>,
        /// `YYYY-MM-DD`.
        pub date_of_issue: Option<String>,
        /// ISO 3166 alpha-3 issuing country.
        pub issuing_state: Option<String>,
        /// Issuing country name.
        pub issuing_state_name: Option<String>,
        /// Given names.
        pub first_name: Option<String>,
        /// Surnames.
        pub last_name: Option<String>,
        /// Full name as printed.
        pub full_name: Option<String>,
        /// `M`, `F` or as printed.
        pub gender: Option<String>,
        /// ISO 3166 alpha-3 nationality.
        pub nationality: Option<String>,
        /// Place of birth as printed.
        pub place_of_birth: Option<String>,
        /// Address as printed.
        pub address: Option<String>,
        /// Address as normalised by Didit.
        pub formatted_address: Option<String>,
        /// Machine-readable zone, `None` when the document has none.
        pub mrz: Option<Value>,
        /// Geocoded address.
        pub parsed_address: Option<Value>,
        /// Document-specific extras (licence categories, non-Latin names...).
        pub extra_fields: Option<Value>,
        /// Capture quality of the front image.
        pub front_image_quality_score: Option<ImageQuality>,
        /// Capture quality of the back image.
        pub back_image_quality_score: Option<ImageQuality>,
        /// Face similarity between the front image and the front-camera capture.
        pub front_image_camera_front_face_match_score: Option<f64>,
        /// Face similarity between the back image and the front-camera capture.
        pub back_image_camera_front_face_match_score: Option<f64>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
        /// Earlier sessions with the same document (at most five).
        pub matches: Option<Vec<Match>>,
    }
}

lenient_struct! {
    /// Capture quality of one document image. Scores are 0-100.
    pub struct ImageQuality {
        /// Sharpness.
        pub focus_score: Option<f64>,
        /// Exposure.
        pub brightness_score: Option<f64>,
        /// `ok`, `too_dark` or `too_bright`.
        pub brightness_issue: Option<String>,
        /// Whether all four corners are in frame.
        pub is_document_fully_visible: Option<bool>,
        /// Resolution.
        pub resolution_score: Option<f64>,
        /// Combined score.
        pub overall_score: Option<f64>,
    }
}

lenient_struct! {
    /// One `nfc_verifications[]` item: the document's chip, read and checked.
    pub struct NfcVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Data groups read from the chip (names, dates, MRZ, hashes...).
        pub chip_data: Option<Value>,
        /// Passive-authentication results.
        pub authenticity: Option<NfcAuthenticity>,
        /// The document signer certificate.
        pub certificate_summary: Option<CertificateSummary>,
        /// Whether the user skipped the chip read.
        pub is_nfc_skipped: Option<bool>,
        /// Why it was skipped, e.g. `DOCUMENT_WITHOUT_CHIP`.
        pub skip_reason: Option<String>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// Chip passive-authentication results.
    pub struct NfcAuthenticity {
        /// The security object (SOD) signature verifies.
        pub sod_integrity: Option<bool>,
        /// The data-group hashes match the SOD.
        pub dg_integrity: Option<bool>,
    }
}

lenient_struct! {
    /// The chip's document signer certificate.
    pub struct CertificateSummary {
        /// Issuer distinguished name.
        pub issuer: Option<String>,
        /// Subject distinguished name.
        pub subject: Option<String>,
        /// Didit sends this as a JSON number that can exceed 2^64 (e.g.
        /// `1.1812083616449413e+38`), so it can only be held as a float.
        pub serial_number: Option<f64>,
        /// Validity end.
        pub not_valid_after: Option<String>,
        /// Validity start.
        pub not_valid_before: Option<String>,
    }
}

lenient_struct! {
    /// One `liveness_checks[]` item.
    pub struct LivenessCheck {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// `ACTIVE_3D`, `FLASHING`, `PASSIVE`; some sources show lowercase, so compare
        /// case-insensitively.
        pub method: Option<String>,
        /// Liveness score 0-100.
        pub score: Option<f64>,
        /// Estimated age in years.
        pub age_estimation: Option<f64>,
        /// Face quality 0-100 (passive only).
        pub face_quality: Option<f64>,
        /// Face luminance 0-100 (passive only).
        pub face_luminance: Option<f64>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
        /// Other sessions or list entries with the same face.
        pub matches: Option<Vec<Match>>,
    }
}

lenient_struct! {
    /// One `face_matches[]` item: selfie against document portrait.
    pub struct FaceMatch {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Similarity 0-100.
        pub score: Option<f64>,
        /// Session the reference image came from, when reused.
        pub source_image_session_id: Option<String>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// One `phone_verifications[]` item.
    pub struct PhoneVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// E.164 number.
        pub full_number: Option<String>,
        /// Dialling prefix, e.g. `+34`.
        pub phone_number_prefix: Option<String>,
        /// National number.
        pub phone_number: Option<String>,
        /// ISO 3166 alpha-2.
        pub country_code: Option<String>,
        /// Country name.
        pub country_name: Option<String>,
        /// Carrier and line type.
        pub carrier: Option<Carrier>,
        /// Disposable (temporary) number.
        pub is_disposable: Option<bool>,
        /// Virtual (VoIP) number.
        pub is_virtual: Option<bool>,
        /// e.g. `sms`, `whatsapp`.
        pub verification_method: Option<String>,
        /// Codes tried.
        pub verification_attempts: Option<i64>,
        /// ISO-8601 time of verification.
        pub verified_at: Option<String>,
        /// Delivery and verification events.
        pub lifecycle: Option<Vec<Value>>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
        /// Other sessions or list entries with the same number.
        pub matches: Option<Vec<Match>>,
    }
}

lenient_struct! {
    /// Phone carrier.
    pub struct Carrier {
        /// Carrier name.
        pub name: Option<String>,
        /// Line type: `mobile`, `landline`, `voip`, ... (`type` on the wire).
        pub line_type: Option<String> = "type",
    }
}

lenient_struct! {
    /// One `email_verifications[]` item.
    pub struct EmailVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// The address.
        pub email: Option<String>,
        /// Found in known data breaches.
        pub is_breached: Option<bool>,
        /// The breaches it was found in.
        pub breaches: Option<Vec<Breach>>,
        /// Disposable-address provider.
        pub is_disposable: Option<bool>,
        /// Mail to it bounces.
        pub is_undeliverable: Option<bool>,
        /// Codes tried.
        pub verification_attempts: Option<i64>,
        /// ISO-8601 time of verification.
        pub verified_at: Option<String>,
        /// Delivery and verification events.
        pub lifecycle: Option<Vec<Value>>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
        /// Other sessions or list entries with the same address.
        pub matches: Option<Vec<Match>>,
    }
}

lenient_struct! {
    /// A data breach an email address appeared in.
    pub struct Breach {
        /// Breach name.
        pub name: Option<String>,
        /// Breached site.
        pub domain: Option<String>,
        /// `YYYY-MM-DD`.
        pub breach_date: Option<String>,
        /// Whether the breach is confirmed.
        pub is_verified: Option<bool>,
        /// What leaked (`Passwords`, `Email addresses`, ...).
        pub data_classes: Option<Vec<String>>,
        /// How many addresses leaked.
        pub breach_emails_count: Option<i64>,
    }
}

lenient_struct! {
    /// One `poa_verifications[]` item: a proof-of-address document.
    pub struct PoaVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// ISO 3166 alpha-3 issuing country.
        pub issuing_state: Option<String>,
        /// `UTILITY_BILL`, `BANK_STATEMENT`, `GOVERNMENT_ISSUED_DOCUMENT`, ...
        pub document_type: Option<String>,
        /// Finer type.
        pub document_subtype: Option<String>,
        /// Document language.
        pub document_language: Option<String>,
        /// Issuing organisation.
        pub issuer: Option<String>,
        /// `YYYY-MM-DD`.
        pub issue_date: Option<String>,
        /// `YYYY-MM-DD`.
        pub expiration_date: Option<String>,
        /// Name printed on the document.
        pub name_on_document: Option<String>,
        /// Address as printed.
        pub poa_address: Option<String>,
        /// Address as normalised.
        pub poa_formatted_address: Option<String>,
        /// Geocoded address.
        pub poa_parsed_address: Option<Value>,
        /// Name similarity 0-100 against the expected details.
        pub name_match_score_expected_details: Option<f64>,
        /// Name similarity 0-100 against the identity document.
        pub name_match_score_id_verification: Option<f64>,
        /// File metadata and tampering signals.
        pub document_metadata: Option<PoaDocumentMetadata>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// File-level signals of a proof-of-address upload.
    pub struct PoaDocumentMetadata {
        /// Bytes.
        pub file_size: Option<i64>,
        /// MIME type.
        pub content_type: Option<String>,
        /// Authoring tool.
        pub creator: Option<String>,
        /// PDF producer.
        pub producer: Option<String>,
        /// Editing software.
        pub software: Option<String>,
        /// Digitally signed.
        pub is_signed: Option<bool>,
        /// Tampering detected.
        pub is_tampered: Option<bool>,
        /// Passed through a known editor (e.g. a PDF editor).
        pub processed_by_known_editor: Option<bool>,
        /// Creation and modification dates differ.
        pub has_different_creation_mod_date: Option<bool>,
        /// Visual overlay analysis, `None` when not run.
        pub overlay_manipulation: Option<Value>,
    }
}

lenient_struct! {
    /// One `document_ai_documents[]` item.
    pub struct DocumentAiDocument {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// The uploaded files and what was extracted from them.
        pub items: Option<Vec<DocumentAiItem>>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// One file processed by Document AI.
    pub struct DocumentAiItem {
        /// File id.
        pub uuid: Option<String>,
        /// Which requested document this is.
        pub document_key: Option<String>,
        /// Per-file status.
        pub status: Option<FeatureStatus>,
        /// Extracted values by field key.
        pub extracted_data: Option<Value>,
        /// Consistency check against the rest of the session.
        pub cross_check_result: Option<Value>,
    }
}

lenient_struct! {
    /// One `questionnaire_responses[]` item.
    pub struct QuestionnaireResponse {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Questionnaire id.
        pub questionnaire_id: Option<String>,
        /// Title.
        pub title: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Questionnaire version.
        pub version: Option<i64>,
        /// Sections with their questions and answers.
        pub sections: Option<Vec<Value>>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// One `ip_analyses[]` item: device and network of the user.
    pub struct IpAnalysis {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Client IP.
        pub ip_address: Option<String>,
        /// Country name of the IP.
        pub ip_country: Option<String>,
        /// ISO 3166 alpha-2 of the IP.
        pub ip_country_code: Option<String>,
        /// Region of the IP.
        pub ip_state: Option<String>,
        /// City of the IP.
        pub ip_city: Option<String>,
        /// Latitude of the IP.
        pub latitude: Option<f64>,
        /// Longitude of the IP.
        pub longitude: Option<f64>,
        /// Internet service provider.
        pub isp: Option<String>,
        /// Organisation owning the IP.
        pub organization: Option<String>,
        /// IANA time zone of the IP.
        pub time_zone: Option<String>,
        /// Sent as an integer hour offset (`-8`) or a string (`"+0100"`), so kept raw.
        pub time_zone_offset: Option<Value>,
        /// VPN, proxy or Tor: one flag covers all three.
        pub is_vpn_or_tor: Option<bool>,
        /// Hosting-provider address.
        pub is_data_center: Option<bool>,
        /// Device fingerprint.
        pub device_fingerprint: Option<String>,
        /// Device brand.
        pub device_brand: Option<String>,
        /// Device model.
        pub device_model: Option<String>,
        /// Browser family.
        pub browser_family: Option<String>,
        /// OS family.
        pub os_family: Option<String>,
        /// `mobile`, `desktop`, ...
        pub platform: Option<String>,
        /// Location of the IP and its distances to the documents. Distances are numbers in
        /// the OpenAPI but `{direction, distance}` objects in real samples, so kept raw; see
        /// [`IpAnalysis::ip_to_id_document_km`].
        pub ip: Option<Value>,
        /// Location of the identity document's address and its distances.
        pub id_document: Option<Value>,
        /// Location of the proof-of-address and its distances.
        pub poa_document: Option<Value>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
        /// Other sessions from the same IP or device.
        pub matches: Option<Vec<Match>>,
    }
}

impl IpAnalysis {
    /// Kilometres between the IP location and the identity document's address, whichever
    /// side reports it and in whichever shape.
    pub fn ip_to_id_document_km(&self) -> Option<f64> {
        distance_km(self.ip.as_ref(), "distance_from_id_document")
            .or_else(|| distance_km(self.id_document.as_ref(), "distance_from_ip"))
    }

    /// Kilometres between the IP location and the proof-of-address.
    pub fn ip_to_poa_document_km(&self) -> Option<f64> {
        distance_km(self.ip.as_ref(), "distance_from_poa_document")
            .or_else(|| distance_km(self.poa_document.as_ref(), "distance_from_ip"))
    }
}

fn distance_km(block: Option<&Value>, key: &str) -> Option<f64> {
    let value = block?.get(key)?;
    let distance = match value {
        Value::Object(object) => object.get("distance")?,
        other => other,
    };
    f64::from_json(distance.clone())
}

lenient_struct! {
    /// One `database_validations[]` item: identity data checked against government sources.
    pub struct DatabaseValidation {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// ISO 3166 alpha-3 country whose databases were queried.
        pub issuing_state: Option<String>,
        /// `one_by_one`, `two_by_two`, `not_enabled`.
        pub validation_type: Option<String>,
        /// `full_match`, `partial_match`, `no_match`.
        pub match_type: Option<String>,
        /// The data that was sent.
        pub screened_data: Option<Value>,
        /// Per-source results.
        pub validations: Option<Vec<Value>>,
        /// Source errors, omitted when there are none.
        pub errors: Option<Value>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// KYB: one `registry_checks[]` item, a company registry lookup.
    pub struct RegistryCheck {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Whether the registry returned the company.
        pub data_resolved: Option<bool>,
        /// The company record (name, numbers, `risk_level`, officers, owners...).
        pub company: Option<Value>,
        /// Ownership tree.
        pub ownership_structure: Option<Value>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// KYB: one `key_people_checks[]` item, officers and beneficial owners.
    pub struct KeyPeopleCheck {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// Officers and owners according to the registry.
        pub registry: Option<Value>,
        /// Parties declared by the business.
        pub submitted: Option<Value>,
        /// Outcome of the owners' own KYC sessions.
        pub ubo_kyc_summary: Option<UboKycSummary>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}

lenient_struct! {
    /// Counts of beneficial owners' KYC outcomes.
    pub struct UboKycSummary {
        /// Owners who need KYC.
        pub total: Option<i64>,
        /// Approved.
        pub approved: Option<i64>,
        /// Declined or in review.
        pub flagged: Option<i64>,
        /// Not finished.
        pub pending: Option<i64>,
    }
}

lenient_struct! {
    /// KYB: one `document_verifications[]` item, corporate documents.
    pub struct DocumentVerification {
        /// Workflow node.
        pub node_id: Option<String>,
        /// Feature status.
        pub status: Option<FeatureStatus>,
        /// The uploaded documents.
        pub items: Option<Vec<Value>>,
        /// Documents grouped by requirement.
        pub groups: Option<Value>,
        /// Requirement groups that must be satisfied.
        pub required_groups: Option<Vec<Value>>,
        /// Risks raised.
        pub warnings: Option<Vec<Warning>>,
    }
}
