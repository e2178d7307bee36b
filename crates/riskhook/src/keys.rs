//! API keys made by riskhook itself (`riskhook keys create`, `POST /v1/keys`): a random secret
//! shown once, stored only as its SHA-256.

use riskhook_store::{NewApiKey, Role};
use sha2::Digest;

/// A freshly made key: what to store, and the secret to hand over once.
pub struct GeneratedKey {
    /// What the store keeps.
    pub record: NewApiKey,
    /// The bearer token: `rhk_` and 64 hex characters (256 random bits).
    pub secret: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Makes a key for `principal` with a random id and secret (from the operating system's
/// generator).
pub fn generate(name: &str, principal: &str, role: Role) -> GeneratedKey {
    let secret = format!("rhk_{}", random_hex());
    let id = format!("key_{}", &random_hex()[..16]);
    GeneratedKey {
        record: NewApiKey {
            id,
            name: name.to_owned(),
            principal: principal.to_owned(),
            role,
            hash: secret_hash(&secret),
        },
        secret,
    }
}

/// 256 bits from the operating system's generator, as 64 lowercase hex characters: secrets,
/// session tokens and CSRF tokens.
pub fn random_hex() -> String {
    // A v4 UUID carries 122 random bits; three of them, hashed, comfortably exceed 256.
    let mut bytes = [0u8; 48];
    for chunk in bytes.chunks_exact_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    hex::encode(sha2::Sha256::digest(bytes))
}

/// SHA-256 of a presented secret, lowercase hex: how stored keys are looked up.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_stored_only_as_their_hash() {
        let a = generate("a", "a", Role::Read);
        let b = generate("b", "b", Role::Read);
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.record.id, b.record.id);
        assert!(a.secret.starts_with("rhk_") && a.secret.len() == 68);
        assert_eq!(a.record.hash, secret_hash(&a.secret));
        assert!(!format!("{a:?}").contains(&a.secret));
    }
}
