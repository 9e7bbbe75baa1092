//! Content hashes: SHA-256 over a canonical, length-prefixed encoding, printed as hex.

use sha2::{Digest, Sha256};

/// Feeds named parts into SHA-256 unambiguously: every part is length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` hash differently.
#[derive(Default)]
pub struct ContentHasher(Sha256);

impl ContentHasher {
    pub fn new(domain: &str) -> Self {
        let mut hasher = Self(Sha256::new());
        hasher.part(domain.as_bytes());
        hasher
    }

    pub fn part(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// SHA-256 of a byte string, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_unambiguous() {
        let mut a = ContentHasher::new("t");
        a.part(b"ab").part(b"c");
        let mut b = ContentHasher::new("t");
        b.part(b"a").part(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
