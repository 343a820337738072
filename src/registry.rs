//! The data plane's live view: token digest → server. Fed by the cluster watch or by local
//! manifests; read on every request without locks.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use jiff::Timestamp;

use crate::catalog::ToolSet;
use crate::secret::TokenHash;
use crate::upstream::Target;

/// Namespace and name of the resource a server comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId {
    pub namespace: String,
    pub name: String,
}

impl ServerId {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ServerId {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// How tools are presented to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exposure {
    #[default]
    All,
    /// Only the three discovery meta-tools are listed.
    Discovery,
}

/// Sustained rate and burst of a server's token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_minute: u32,
    pub burst: u32,
}

/// Everything the data plane needs to answer one server's requests.
#[derive(Debug)]
pub struct ServerView {
    pub id: ServerId,
    /// `id` as `namespace/name`, written once for metric labels and logs.
    pub id_label: Arc<str>,
    pub display_name: String,
    pub tools: Arc<ToolSet>,
    pub exposure: Exposure,
    pub target: Target,
    pub expires_at: Option<Timestamp>,
    pub suspended: bool,
    /// Digests of accepted client bearer tokens; `Some` means a bearer token is required.
    pub client_tokens: Option<Arc<[TokenHash]>>,
    pub rate_limit: Option<RateLimitSettings>,
    /// Kept across updates of the same server with the same settings.
    pub limiter: Option<Arc<TokenBucket>>,
}

/// Why a request to a known server is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Expired,
    Suspended,
    BearerMissing,
    BearerInvalid,
}

impl ServerView {
    /// An expired server's entry: it keeps the URL known so every request learns why it
    /// is refused (403, "expired at `at`"), and carries no tools and no credentials, so
    /// nothing could be reached through it even if the clock went back.
    pub fn expired(id: ServerId, display_name: String, at: Timestamp) -> ServerView {
        ServerView {
            id_label: id.to_string().into(),
            id,
            display_name,
            tools: Arc::new(ToolSet::new(Vec::new())),
            exposure: Exposure::All,
            target: Target::new(String::new(), crate::secret::Secret::new("")),
            expires_at: Some(at),
            suspended: false,
            client_tokens: None,
            rate_limit: None,
            limiter: None,
        }
    }

    /// Checks expiry (by the clock, now), suspension and the bearer token.
    pub fn admit(&self, now: Timestamp, bearer: Option<&str>) -> Result<(), Refusal> {
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(Refusal::Expired);
        }
        if self.suspended {
            return Err(Refusal::Suspended);
        }
        if let Some(accepted) = &self.client_tokens {
            let presented = bearer.ok_or(Refusal::BearerMissing)?;
            let digest = TokenHash::of(presented);
            // Compare against every accepted digest so the time taken says nothing about
            // which (if any) matched.
            let matched = accepted
                .iter()
                .fold(false, |found, d| d.ct_eq(&digest) | found);
            if !matched {
                return Err(Refusal::BearerInvalid);
            }
        }
        Ok(())
    }
}

/// A token bucket refilled continuously.
#[derive(Debug)]
pub struct TokenBucket {
    settings: RateLimitSettings,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(settings: RateLimitSettings) -> Self {
        TokenBucket {
            settings,
            state: Mutex::new((f64::from(settings.burst), Instant::now())),
        }
    }

    /// Takes one token, or says in how many seconds one will be available.
    pub fn try_acquire(&self) -> Result<(), u64> {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> Result<(), u64> {
        let rate = f64::from(self.settings.per_minute.max(1)) / 60.0;
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (tokens, last) = &mut *guard;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(f64::from(self.settings.burst.max(1)));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[derive(Default)]
struct Snapshot {
    by_token: HashMap<TokenHash, Arc<ServerView>>,
    by_id: HashMap<ServerId, TokenHash>,
}

/// The registry. Reads are a lock-free pointer load; each update swaps in a whole new map,
/// so a request sees either the old or the new state of a server, never a mix.
#[derive(Default)]
pub struct Registry {
    snapshot: ArcSwap<Snapshot>,
    writer: Mutex<()>,
    ready: AtomicBool,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("servers", &self.len())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The server a presented URL token belongs to.
    pub fn lookup(&self, token: &str) -> Option<Arc<ServerView>> {
        let hash = TokenHash::of(token);
        self.snapshot.load().by_token.get(&hash).cloned()
    }

    pub fn len(&self) -> usize {
        self.snapshot.load().by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once the first full load has been applied.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Every server currently served, by id.
    pub fn servers(&self) -> Vec<Arc<ServerView>> {
        let snap = self.snapshot.load();
        let mut out: Vec<_> = snap.by_token.values().cloned().collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// Sets (or, with `None`, removes) one server; a new token replaces the old at once.
    pub fn upsert(&self, id: &ServerId, entry: Option<(TokenHash, ServerView)>) {
        let _guard = self.lock_writer();
        let current = self.snapshot.load_full();
        let mut next = Snapshot {
            by_token: current.by_token.clone(),
            by_id: current.by_id.clone(),
        };
        let previous = next.by_id.remove(id).and_then(|h| next.by_token.remove(&h));
        if let Some((hash, mut view)) = entry {
            keep_limiter(&mut view, previous.as_deref());
            next.by_id.insert(id.clone(), hash);
            next.by_token.insert(hash, Arc::new(view));
        }
        self.snapshot.store(Arc::new(next));
    }

    /// Replaces every server at once (a full resync).
    pub fn replace_all(&self, entries: impl IntoIterator<Item = (TokenHash, ServerView)>) {
        let _guard = self.lock_writer();
        let current = self.snapshot.load_full();
        let mut next = Snapshot::default();
        for (hash, mut view) in entries {
            let previous = current
                .by_id
                .get(&view.id)
                .and_then(|h| current.by_token.get(h));
            keep_limiter(&mut view, previous.map(Arc::as_ref));
            if let Some(old) = next.by_id.insert(view.id.clone(), hash) {
                next.by_token.remove(&old);
            }
            next.by_token.insert(hash, Arc::new(view));
        }
        self.snapshot.store(Arc::new(next));
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.writer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A server's rate-limit state survives updates that leave its limit unchanged.
fn keep_limiter(view: &mut ServerView, previous: Option<&ServerView>) {
    view.limiter = match (view.rate_limit, previous) {
        (None, _) => None,
        (Some(s), Some(old)) if old.rate_limit == Some(s) && old.limiter.is_some() => {
            old.limiter.clone()
        }
        (Some(s), _) => Some(Arc::new(TokenBucket::new(s))),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_expired_entry_refuses_as_expired_and_has_nothing_to_call() {
        let at = Timestamp::from_second(1_800_000_000).expect("instant");
        let view = ServerView::expired(ServerId::new("ns", "a"), "A".into(), at);
        assert_eq!(view.admit(at, None), Err(Refusal::Expired));
        assert!(view.tools.is_empty());
        assert_eq!(view.target.api_key.expose(), "");
    }

    #[test]
    fn bucket_allows_burst_then_refuses_with_wait() {
        let b = TokenBucket::new(RateLimitSettings {
            per_minute: 60,
            burst: 2,
        });
        let t0 = Instant::now();
        assert!(b.try_acquire_at(t0).is_ok());
        assert!(b.try_acquire_at(t0).is_ok());
        assert_eq!(b.try_acquire_at(t0), Err(1));
        assert!(b.try_acquire_at(t0 + Duration::from_millis(1100)).is_ok());
    }
}
