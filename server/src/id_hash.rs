//! The keyed hash under which ID numbers are stored, and the keyed digest of request bodies
//! that contain them.

use std::path::Path;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::person::IdNumber;

/// Starts every keyed body digest; a stored digest without it is an old unkeyed SHA-256.
pub const DIGEST_TAG: &str = "hmac:";

/// HMAC-SHA256 of ID numbers under a server key: equal numbers match (one active appointment
/// per person, no-shows, bans; a receipt's owner) while a dump of the store reveals none, and
/// without the key nobody can hash the ~10^9 plausible numbers to reverse them.
#[derive(Clone)]
pub struct IdHasher {
    key: SecretString,
}

impl IdHasher {
    pub fn new(key: SecretString) -> Self {
        IdHasher { key }
    }

    /// The configured key, or (development) the one kept in a file of `data_dir`.
    pub fn configured(key: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<Self> {
        Ok(IdHasher::new(match key {
            Some(key) => key.clone(),
            None => crate::auth::token::development_secret(data_dir, "id-hash-key")?,
        }))
    }

    fn mac(&self, domain: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(domain);
        mac
    }

    pub fn hash(&self, id: &IdNumber) -> String {
        let mut mac = self.mac(b"");
        mac.update(id.as_str().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// The digest an `Idempotency-Key` record keeps of its request's body: keyed like the ID
    /// hash (in its own domain, so it never equals an ID hash), since the body holds an ID
    /// number whose few unknown digits an unkeyed digest would give away offline.
    pub fn body_digest(&self, body: &[u8]) -> String {
        let mut mac = self.mac(b"banzheng idempotency body\0");
        mac.update(body);
        format!("{DIGEST_TAG}{}", hex::encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn hash_is_keyed_and_stable() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let a = IdHasher::new(SecretString::from("key-a"));
        let b = IdHasher::new(SecretString::from("key-b"));
        assert_eq!(a.hash(&id), a.hash(&id));
        assert_ne!(a.hash(&id), b.hash(&id));
        assert_eq!(a.hash(&id).len(), 64);
        assert!(!a.hash(&id).contains("110105"));
    }

    #[test]
    fn body_digest_is_keyed_and_apart_from_id_hashes() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let a = IdHasher::new(SecretString::from("key-a"));
        let b = IdHasher::new(SecretString::from("key-b"));
        let body = id.as_str().as_bytes();
        assert_eq!(a.body_digest(body), a.body_digest(body));
        assert_ne!(a.body_digest(body), b.body_digest(body));
        assert!(a.body_digest(body).starts_with(DIGEST_TAG));
        assert!(!a.body_digest(body).contains(&a.hash(&id)));
        let unkeyed = hex::encode(Sha256::digest(body));
        assert!(!unkeyed.starts_with(DIGEST_TAG));
        assert!(!a.body_digest(body).contains(&unkeyed));
    }
}
