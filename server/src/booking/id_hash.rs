//! The keyed hash under which ID numbers are stored.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::person::IdNumber;

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

    pub fn hash(&self, id: &IdNumber) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.key.expose_secret().as_bytes())
            .expect("HMAC takes keys of any length");
        mac.update(id.as_str().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
