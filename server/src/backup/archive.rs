//! A backup file: `BZBACKUP1\n`, a 12-byte nonce, then ChaCha20-Poly1305 (RFC 8439, `ring`)
//! over the entries, each a name (u32 length, big-endian) and its bytes (u64 length), with
//! the header as associated data. Tampering, truncation or the wrong key fail as one error.

use anyhow::{anyhow, bail};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"BZBACKUP1\n";

/// The sealing key, derived from the configured secret (any length) by SHA-256.
pub struct Key(LessSafeKey);

impl Key {
    pub fn new(secret: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"banzheng backup key\0");
        hasher.update(secret);
        let bytes = hasher.finalize();
        Key(LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("a 32-byte key"),
        ))
    }
}

#[derive(Default)]
pub struct Archive {
    entries: Vec<(String, Vec<u8>)>,
}

impl Archive {
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) {
        self.entries.push((name.to_owned(), bytes));
    }

    /// Removes and returns the entry `name`.
    pub fn take(&mut self, name: &str) -> Option<Vec<u8>> {
        let at = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(at).1)
    }

    pub fn into_entries(self) -> Vec<(String, Vec<u8>)> {
        self.entries
    }

    pub fn seal(&self, key: &Key) -> anyhow::Result<Vec<u8>> {
        let mut plain = Vec::new();
        for (name, bytes) in &self.entries {
            plain.extend((name.len() as u32).to_be_bytes());
            plain.extend(name.as_bytes());
            plain.extend((bytes.len() as u64).to_be_bytes());
            plain.extend(bytes);
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut nonce);
        key.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(MAGIC),
                &mut plain,
            )
            .map_err(|_| anyhow!("cannot encrypt the backup"))?;
        Ok([MAGIC, &nonce, &plain].concat())
    }

    pub fn open(sealed: &[u8], key: &Key) -> anyhow::Result<Self> {
        let Some(rest) = sealed.strip_prefix(MAGIC) else {
            bail!("not a Banzheng backup file");
        };
        if rest.len() < NONCE_LEN {
            bail!("the backup file is truncated");
        }
        let (nonce, cipher) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut cipher = cipher.to_vec();
        let plain = key
            .0
            .open_in_place(nonce, Aad::from(MAGIC), &mut cipher)
            .map_err(|_| {
                anyhow!("the backup cannot be decrypted: another key (BANZHENG_BACKUP__KEY), or the file was changed")
            })?;
        let mut entries = Vec::new();
        let mut rest: &[u8] = plain;
        while !rest.is_empty() {
            let name = take(&mut rest, 4)?;
            let name = take(&mut rest, u32::from_be_bytes(name.try_into()?) as usize)?;
            let len = take(&mut rest, 8)?;
            let bytes = take(&mut rest, u64::from_be_bytes(len.try_into()?) as usize)?;
            entries.push((String::from_utf8(name.to_vec())?, bytes.to_vec()));
        }
        Ok(Archive { entries })
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> anyhow::Result<&'a [u8]> {
    if rest.len() < n {
        bail!("the backup's contents are cut short");
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_archives_open_with_their_key_only() {
        let mut archive = Archive::default();
        archive.add("meta.json", b"{}".to_vec());
        archive.add("blobs/a/b", vec![7; 1000]);
        let key = Key::new(b"secret");
        let sealed = archive.seal(&key).unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"meta.json"));
        let mut opened = Archive::open(&sealed, &key).unwrap();
        assert_eq!(opened.take("blobs/a/b"), Some(vec![7; 1000]));
        assert_eq!(opened.take("meta.json"), Some(b"{}".to_vec()));
        assert!(Archive::open(&sealed, &Key::new(b"other")).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(Archive::open(&tampered, &key).is_err());
        assert!(Archive::open(&sealed[..sealed.len() - 1], &key).is_err());
    }
}
