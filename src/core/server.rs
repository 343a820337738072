//! A server as the data plane serves it: its identity, its filtered tools, how it is
//! reached upstream and who may use it. Built from a resource by `k8s::resolve` (in the
//! controller and local mode alike; the cluster's data plane gets it from the runtime
//! record), kept by the data plane's registry and read on every request.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::core::base_url::BaseUrl;
use crate::core::catalog::ToolSet;
use crate::core::confirm::ConfirmPolicy;
use crate::core::oauth::{Classes, OAuthSettings};
use crate::core::secret::{Secret, TokenHash};

/// Default cap on the characters of one tool result.
pub(crate) const DEFAULT_MAX_RESULT_CHARS: usize = 150_000;

/// Namespace and name of the resource a server comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId {
    pub(crate) namespace: String,
    pub(crate) name: String,
}

impl ServerId {
    pub(crate) fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
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
pub(crate) enum Exposure {
    #[default]
    All,
    /// Only the three discovery meta-tools are listed.
    Discovery,
}

/// Sustained rate and burst of a server's token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitSettings {
    pub(crate) per_minute: u32,
    pub(crate) burst: u32,
}

/// Everything the data plane needs to answer one server's requests.
#[derive(Debug)]
pub struct ServerView {
    pub id: ServerId,
    /// `id` as `namespace/name`, written once for metric labels and logs.
    pub(crate) id_label: Arc<str>,
    pub(crate) display_name: String,
    pub(crate) tools: Arc<ToolSet>,
    pub(crate) exposure: Exposure,
    pub(crate) target: Target,
    pub expires_at: Option<Timestamp>,
    pub(crate) suspended: bool,
    /// Digests of accepted client bearer tokens; `Some` means a bearer token is required.
    pub(crate) client_tokens: Option<Arc<[TokenHash]>>,
    pub(crate) rate_limit: Option<RateLimitSettings>,
    /// Kept across updates of the same server with the same settings.
    pub(crate) limiter: Option<Arc<TokenBucket>>,
    /// Which calls need a person's approval, with the key approval requests are sealed
    /// with; `None` when none does.
    pub(crate) confirm: Option<Arc<ConfirmPolicy>>,
    /// `Some` when every request needs an OAuth access token.
    pub(crate) oauth: Option<Arc<OAuthSettings>>,
    /// Each user's bucket, when the OAuth settings have a per-user limit; kept across
    /// updates with the same limit, like `limiter`.
    pub(crate) user_limiter: Option<Arc<UserBuckets>>,
}

/// Who sent a request to an OAuth server, as its verified access token says.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// The tool classes the token's scopes allow.
    pub(crate) classes: Classes,
    /// The value of the server's user claim, when the token has it.
    pub(crate) user: Option<Arc<str>>,
    /// The URL token the request came in on, from which a challenge's metadata URL is
    /// made when one is needed.
    pub(crate) url_token: &'a str,
}

/// Why a request to a known server is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Expired,
    Suspended,
    BearerMissing,
    BearerInvalid,
}

impl ServerView {
    /// An expired server's entry: it keeps the URL known so every request learns why it
    /// is refused (403, "expired at `at`"), and carries no tools and no credentials, so
    /// nothing could be reached through it even if the clock went back.
    pub(crate) fn expired(id: ServerId, display_name: String, at: Timestamp) -> ServerView {
        ServerView {
            id_label: id.to_string().into(),
            id,
            display_name,
            tools: Arc::new(ToolSet::new(Vec::new())),
            exposure: Exposure::All,
            target: Target::new(BaseUrl::unreachable(), Secret::new("")),
            expires_at: Some(at),
            suspended: false,
            client_tokens: None,
            rate_limit: None,
            limiter: None,
            confirm: None,
            oauth: None,
            user_limiter: None,
        }
    }

    /// The tools a caller may see and call: all of them without OAuth, else those of the
    /// classes the caller's token allows (a set computed once per class combination).
    pub(crate) fn tools_for(&self, caller: Option<&Caller<'_>>) -> &Arc<ToolSet> {
        match caller {
            Some(c) if !c.classes.covers(self.tools.classes()) => self.tools.only(c.classes),
            _ => &self.tools,
        }
    }

    /// Checks expiry (by the clock, now), suspension and the bearer token.
    pub(crate) fn admit(&self, now: Timestamp, bearer: Option<&str>) -> Result<(), Refusal> {
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

/// How many replicas share every server's rate limit. Each replica enforces its share
/// ([`share`]), so N replicas together allow the configured rate, not N times it. One
/// until known.
#[derive(Debug)]
pub(crate) struct Replicas(AtomicU32);

impl Default for Replicas {
    fn default() -> Self {
        Replicas(AtomicU32::new(1))
    }
}

impl Replicas {
    /// Sets the count; zero (none known) counts as one.
    pub(crate) fn set(&self, replicas: usize) {
        let n = u32::try_from(replicas).unwrap_or(u32::MAX).max(1);
        self.0.store(n, Ordering::Relaxed);
    }

    /// The count, at least one.
    pub(crate) fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed).max(1)
    }
}

/// One replica's share of a rate limit shared by `replicas`: tokens added per second and
/// the bucket's capacity. The rate is divided exactly; the burst too, but never below
/// one call, so every replica can serve at least one call at a time.
pub(crate) fn share(settings: RateLimitSettings, replicas: u32) -> (f64, f64) {
    let n = f64::from(replicas.max(1));
    let per_second = f64::from(settings.per_minute.max(1)) / 60.0 / n;
    let capacity = (f64::from(settings.burst.max(1)) / n).max(1.0);
    (per_second, capacity)
}

/// A token bucket refilled continuously, at this replica's share of the server's limit.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    settings: RateLimitSettings,
    /// Replicas sharing the limit; `None` for a bucket of its own.
    replicas: Option<Arc<Replicas>>,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// A bucket enforcing the whole limit.
    pub(crate) fn new(settings: RateLimitSettings) -> Self {
        TokenBucket {
            settings,
            replicas: None,
            state: Mutex::new((f64::from(settings.burst), Instant::now())),
        }
    }

    /// A bucket enforcing its share of the limit among `replicas`, read on every call.
    pub(crate) fn shared(settings: RateLimitSettings, replicas: Arc<Replicas>) -> Self {
        TokenBucket {
            replicas: Some(replicas),
            ..TokenBucket::new(settings)
        }
    }

    /// Takes one token, or says in how many seconds one will be available.
    pub(crate) fn try_acquire(&self) -> Result<(), u64> {
        self.try_acquire_at(Instant::now())
    }

    fn try_acquire_at(&self, now: Instant) -> Result<(), u64> {
        let replicas = self.replicas.as_ref().map_or(1, |r| r.get());
        let (rate, capacity) = share(self.settings, replicas);
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        take(&mut guard, rate, capacity, now)
    }
}

/// Refills a bucket's `(tokens, last refill)` at `rate` per second up to `capacity`, then
/// takes one token or says in how many seconds one will be there.
fn take(state: &mut (f64, Instant), rate: f64, capacity: f64, now: Instant) -> Result<(), u64> {
    let (tokens, last) = state;
    let elapsed = now.saturating_duration_since(*last).as_secs_f64();
    *tokens = (*tokens + elapsed * rate).min(capacity);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        Ok(())
    } else {
        Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
    }
}

/// Most users whose buckets are kept per server. A user forgotten when the map is full
/// starts again with a full bucket.
pub(crate) const MAX_TRACKED_USERS: usize = 10_000;

/// A token bucket per user, each at this replica's share of the per-user limit. The map
/// is bounded: a bucket that has refilled completely is the same as a new one and is
/// dropped first; past that, the users seen longest ago are forgotten.
#[derive(Debug)]
pub(crate) struct UserBuckets {
    settings: RateLimitSettings,
    replicas: Arc<Replicas>,
    capacity: usize,
    users: Mutex<std::collections::HashMap<Box<str>, (f64, Instant)>>,
}

impl UserBuckets {
    /// Buckets of `settings`, shared among `replicas`, for at most `capacity` users.
    pub(crate) fn new(
        settings: RateLimitSettings,
        replicas: Arc<Replicas>,
        capacity: usize,
    ) -> Self {
        UserBuckets {
            settings,
            replicas,
            capacity: capacity.max(1),
            users: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The limit every user's bucket enforces.
    pub(crate) fn settings(&self) -> RateLimitSettings {
        self.settings
    }

    /// Takes one token from `user`'s bucket, or says in how many seconds one will be there.
    pub(crate) fn try_acquire(&self, user: &str) -> Result<(), u64> {
        self.try_acquire_at(user, Instant::now())
    }

    /// [`UserBuckets::try_acquire`] at `now`.
    fn try_acquire_at(&self, user: &str, now: Instant) -> Result<(), u64> {
        let (rate, capacity) = share(self.settings, self.replicas.get());
        let mut users = match self.users.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(state) = users.get_mut(user) {
            return take(state, rate, capacity, now);
        }
        if users.len() >= self.capacity {
            // Full buckets carry nothing a new one would not.
            users.retain(|_, (tokens, last)| {
                *tokens + now.saturating_duration_since(*last).as_secs_f64() * rate < capacity
            });
        }
        if users.len() >= self.capacity {
            let mut seen: Vec<Instant> = users.values().map(|(_, last)| *last).collect();
            let keep = self.capacity / 2;
            seen.sort_unstable();
            let cutoff = seen[seen.len() - keep.min(seen.len())..]
                .first()
                .copied()
                .unwrap_or(now);
            users.retain(|_, (_, last)| *last >= cutoff);
        }
        let mut state = (capacity, now);
        let result = take(&mut state, rate, capacity, now);
        users.insert(user.into(), state);
        result
    }

    /// How many users have a bucket now.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        match self.users.lock() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }
}

/// How a server reaches Atomicwork: its upstream settings, resolved from the resource spec.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Tenant base URL, e.g. `https://acme.atomicwork.com` (catalog paths add `/api/v1`).
    pub(crate) base_url: BaseUrl,
    pub(crate) api_key: Secret,
    /// Default workspace, for `X-Workspace-Id` and `{workspace_id}` in paths.
    pub(crate) workspace_id: Option<String>,
    /// Write tools return the request they would send instead of sending it.
    pub(crate) dry_run: bool,
    /// Opt-in retries; applied to read tools only.
    pub(crate) retry: Option<RetryPolicy>,
    /// Per-call timeout; `None` uses [`UpstreamOptions::default_timeout`].
    pub(crate) timeout: Option<Duration>,
    /// Longest result text, in characters.
    pub(crate) max_result_chars: usize,
    /// Added as the first text block of every result (e.g. a sandbox notice).
    pub(crate) notice: Option<Arc<str>>,
}

impl Target {
    /// A target with the defaults: no workspace, no dry run, no retries, default timeout
    /// and result cap, no notice.
    pub(crate) fn new(base_url: BaseUrl, api_key: Secret) -> Self {
        Target {
            base_url,
            api_key,
            workspace_id: None,
            dry_run: false,
            retry: None,
            timeout: None,
            max_result_chars: DEFAULT_MAX_RESULT_CHARS,
            notice: None,
        }
    }
}

/// Bounded retries with full-jitter exponential backoff.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    /// Total attempts, including the first.
    pub(crate) max_attempts: u32,
    /// Longest wait between attempts; a longer `Retry-After` ends the retries.
    pub(crate) max_backoff: Duration,
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

    #[test]
    fn each_replica_enforces_its_share() {
        let limit = RateLimitSettings {
            per_minute: 120,
            burst: 12,
        };
        assert_eq!(share(limit, 1), (2.0, 12.0));
        assert_eq!(share(limit, 3), (2.0 / 3.0, 4.0));
        assert_eq!(share(limit, 0), share(limit, 1), "none known counts as one");
        // A burst smaller than the replica count still lets each replica serve a call.
        assert_eq!(share(limit, 24), (2.0 / 24.0, 1.0));
        // Rates that do not divide evenly are divided exactly, not rounded.
        let odd = RateLimitSettings {
            per_minute: 10,
            burst: 1,
        };
        let (rate, _) = share(odd, 3);
        assert!((rate * 60.0 * 3.0 - 10.0).abs() < 1e-9);
    }

    #[test]
    fn each_user_has_a_bucket_of_their_own() {
        let limit = RateLimitSettings {
            per_minute: 60,
            burst: 2,
        };
        let b = UserBuckets::new(limit, Arc::new(Replicas::default()), 100);
        let t0 = Instant::now();
        assert!(b.try_acquire_at("alice", t0).is_ok());
        assert!(b.try_acquire_at("alice", t0).is_ok());
        assert_eq!(b.try_acquire_at("alice", t0), Err(1));
        // Another user is not affected.
        assert!(b.try_acquire_at("bob", t0).is_ok());
        assert!(
            b.try_acquire_at("alice", t0 + Duration::from_millis(1100))
                .is_ok()
        );
        assert_eq!(b.tracked(), 2);
    }

    #[test]
    fn user_buckets_stay_bounded_and_forget_idle_users_first() {
        let limit = RateLimitSettings {
            per_minute: 60,
            burst: 1,
        };
        let replicas = Arc::new(Replicas::default());
        let b = UserBuckets::new(limit, replicas, 4);
        let t0 = Instant::now();
        for u in ["a", "b", "c", "d"] {
            assert!(b.try_acquire_at(u, t0).is_ok());
        }
        assert_eq!(b.tracked(), 4);
        // Two seconds on, every bucket has refilled: they are dropped, not counted.
        let t1 = t0 + Duration::from_secs(2);
        assert!(b.try_acquire_at("e", t1).is_ok());
        assert_eq!(b.tracked(), 1);
        // All busy: the users seen longest ago are forgotten, the recent ones kept.
        for (i, u) in ["f", "g", "h"].into_iter().enumerate() {
            assert!(
                b.try_acquire_at(u, t1 + Duration::from_millis(10 * i as u64))
                    .is_ok()
            );
        }
        let t2 = t1 + Duration::from_millis(100);
        assert!(b.try_acquire_at("i", t2).is_ok());
        assert!(b.tracked() <= 4, "{}", b.tracked());
        assert_eq!(
            b.try_acquire_at("h", t2),
            Err(1),
            "the most recent user keeps their empty bucket"
        );
    }

    #[test]
    fn a_shared_bucket_follows_the_replica_count() {
        let limit = RateLimitSettings {
            per_minute: 60,
            burst: 4,
        };
        let replicas = Arc::new(Replicas::default());
        replicas.set(2);
        let b = TokenBucket::shared(limit, replicas.clone());
        let t0 = Instant::now();
        // Half the burst, then a token every two seconds.
        assert!(b.try_acquire_at(t0).is_ok());
        assert!(b.try_acquire_at(t0).is_ok());
        assert_eq!(b.try_acquire_at(t0), Err(2));
        assert!(b.try_acquire_at(t0 + Duration::from_millis(2100)).is_ok());
        // Alone again: the whole limit.
        replicas.set(1);
        let t1 = t0 + Duration::from_secs(60);
        for _ in 0..4 {
            assert!(b.try_acquire_at(t1).is_ok());
        }
        assert_eq!(b.try_acquire_at(t1), Err(1));
        replicas.set(0);
        assert_eq!(replicas.get(), 1);
    }
}
