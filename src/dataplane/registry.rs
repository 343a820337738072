//! The data plane's live view: token digest → server. Fed by the cluster watch or by local
//! manifests; read on every request without locks.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::core::secret::TokenHash;
use crate::core::server::{
    MAX_TRACKED_USERS, Replicas, ServerId, ServerView, TokenBucket, UserBuckets,
};

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
    /// Replicas sharing every rate limit.
    replicas: Arc<Replicas>,
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
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// How many replicas share every rate limit (one unless told otherwise).
    pub(crate) fn replicas(&self) -> &Arc<Replicas> {
        &self.replicas
    }

    /// Sets (or, with `None`, removes) one server; a new token replaces the old at once.
    pub fn upsert(&self, id: &ServerId, entry: Option<(TokenHash, ServerView)>) {
        self.apply([(id.clone(), entry)]);
    }

    /// Sets or removes several servers at once, in order: one copy of the map for all of
    /// them, and a request sees all of them or none.
    pub fn apply(
        &self,
        changes: impl IntoIterator<Item = (ServerId, Option<(TokenHash, ServerView)>)>,
    ) {
        let _guard = self.lock_writer();
        let current = self.snapshot.load_full();
        let mut next = Snapshot {
            by_token: current.by_token.clone(),
            by_id: current.by_id.clone(),
        };
        for (id, entry) in changes {
            let previous = next
                .by_id
                .remove(&id)
                .and_then(|h| next.by_token.remove(&h));
            if let Some((hash, mut view)) = entry {
                keep_limiter(&mut view, previous.as_deref(), &self.replicas);
                // A token another server had is that server's no longer.
                if let Some(other) = next.by_token.get(&hash).map(|v| v.id.clone()) {
                    next.by_id.remove(&other);
                }
                next.by_id.insert(id, hash);
                next.by_token.insert(hash, Arc::new(view));
            }
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
            keep_limiter(&mut view, previous.map(Arc::as_ref), &self.replicas);
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

/// A server's rate-limit state (its bucket and its users' buckets) survives updates that
/// leave the limit unchanged. Each bucket enforces this replica's share of the limit.
fn keep_limiter(view: &mut ServerView, previous: Option<&ServerView>, replicas: &Arc<Replicas>) {
    view.limiter = match (view.rate_limit, previous) {
        (None, _) => None,
        (Some(s), Some(old)) if old.rate_limit == Some(s) && old.limiter.is_some() => {
            old.limiter.clone()
        }
        (Some(s), _) => Some(Arc::new(TokenBucket::shared(s, replicas.clone()))),
    };
    let per_user = view.oauth.as_ref().and_then(|o| o.per_user);
    view.user_limiter = match (per_user, previous.and_then(|p| p.user_limiter.as_ref())) {
        (None, _) => None,
        (Some(s), Some(old)) if old.settings() == s => Some(old.clone()),
        (Some(s), _) => Some(Arc::new(UserBuckets::new(
            s,
            replicas.clone(),
            MAX_TRACKED_USERS,
        ))),
    };
}
