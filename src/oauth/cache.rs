//! Tokens that passed verification, remembered until their `exp` under a digest of the
//! token and what it was checked against (issuer, resource, user claim), so the same
//! token sent again skips the signature check. Bounded: expired entries go first, then
//! arbitrary ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::Verified;

/// The digest a verified token is remembered under: of the issuer, the resource (given
/// in pieces that, joined, make it), the user claim and the token. Each is
/// length-prefixed, so no two different inputs run together into the same bytes.
pub(crate) fn key(issuer: &str, resource: [&str; 3], user_claim: &str, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    let field = |h: &mut Sha256, len: usize| h.update((len as u64).to_be_bytes());
    field(&mut h, issuer.len());
    h.update(issuer.as_bytes());
    field(&mut h, resource.iter().map(|p| p.len()).sum());
    for part in resource {
        h.update(part.as_bytes());
    }
    for part in [user_claim, token] {
        field(&mut h, part.len());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The verified tokens.
#[derive(Debug)]
pub(crate) struct VerifiedCache {
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Arc<Verified>>>,
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The entries, even after a panic elsewhere held the lock.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Verified>>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The token remembered under `key`, unless it has expired by `now` (Unix seconds).
    pub(crate) fn get(&self, key: &[u8; 32], now: u64) -> Option<Arc<Verified>> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(v) if v.expires_at > now => Some(v.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers a verified token until its `exp`.
    pub(crate) fn insert(&self, key: [u8; 32], verified: Arc<Verified>, now: u64) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, v| v.expires_at > now);
            if entries.len() >= self.capacity {
                // Still full of live tokens: forget a quarter of them (the map's order is
                // arbitrary), to be verified again when next seen.
                let drop: Vec<[u8; 32]> = entries
                    .keys()
                    .take((self.capacity / 4).max(1))
                    .copied()
                    .collect();
                for k in drop {
                    entries.remove(&k);
                }
            }
        }
        entries.insert(key, verified);
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(expires_at: u64) -> Arc<Verified> {
        Arc::new(Verified {
            scopes: vec!["a".into()],
            user: None,
            expires_at,
        })
    }

    #[test]
    fn keys_differ_by_every_part() {
        let base = key("i", ["r", "", ""], "sub", "t");
        assert_ne!(base, key("i", ["r", "", ""], "sub", "u"));
        assert_ne!(base, key("i", ["r2", "", ""], "sub", "t"));
        assert_ne!(base, key("j", ["r", "", ""], "sub", "t"));
        assert_ne!(base, key("i", ["r", "", ""], "email", "t"));
        // Moving a character across a boundary gives another key.
        assert_ne!(
            key("ab", ["c", "", ""], "sub", "t"),
            key("a", ["bc", "", ""], "sub", "t")
        );
        // The same resource in other pieces is the same key.
        assert_eq!(
            key("i", ["https://a/mcp/t", "", ""], "sub", "x"),
            key("i", ["https://a", "/mcp/", "t"], "sub", "x")
        );
        assert_eq!(base, key("i", ["r", "", ""], "sub", "t"));
    }

    #[test]
    fn entries_last_until_exp() {
        let c = VerifiedCache::new(10);
        let k = key("i", ["r", "", ""], "sub", "t");
        c.insert(k, verified(100), 50);
        assert!(c.get(&k, 99).is_some());
        assert!(c.get(&k, 100).is_none());
        assert_eq!(c.len(), 0, "an expired entry is dropped when found");
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c = VerifiedCache::new(8);
        for i in 0..8u64 {
            c.insert(
                key("i", ["r", "", ""], "sub", &i.to_string()),
                verified(10 + i),
                0,
            );
        }
        assert_eq!(c.len(), 8);
        // Expired ones go first.
        c.insert(key("i", ["r", "", ""], "sub", "new"), verified(100), 13);
        assert_eq!(c.len(), 5);
        for i in 100..200u64 {
            c.insert(
                key("i", ["r", "", ""], "sub", &i.to_string()),
                verified(1000),
                13,
            );
            assert!(c.len() <= 8);
        }
        assert!(c.get(&key("i", ["r", "", ""], "sub", "199"), 13).is_some());
    }
}
